// Shape inference over a whole graph with the batch size symbolic: every tensor's element type,
// dims (numbers, or a*B + c on batch-dependent axes) and, for small tensors such as shape
// arithmetic, its value. Stored value_info is never read (exports often carry stale shapes).
// Reports conflicts (ops consistent at one batch size only: constants baked at the traced batch)
// and, in repair mode, lets the caller pick a fix for each (see batch.ts).
import type { ModelProto, NodeProto } from '../proto.js';
import { DataType } from '../proto.js';
import { Graph, valueInfoShape } from '../graph.js';
import { tensorToHost, numel } from '../tensor.js';
import { BATCH, type Dim } from './sym.js';
import { fromHost, isFloatType } from './value.js';
import { shapeRuleFor, type Repair, type RuleContext, type TInfo } from './rule.js';
import './rules/index.js';

export interface Conflict {
  node: NodeProto;
  message: string;
}

export interface InferOptions {
  /**
   * Dims of graph inputs by name. Default: the declared dims, a symbolic (or missing, or
   * non-positive) leading dim read as the batch size B; other symbolic dims leave the input unknown.
   */
  inputDims?: Record<string, Dim[] | undefined>;
  /** Largest tensor (elements) whose value is computed (default 65536). */
  valueLimit?: number;
  /** Repair mode: pick one of the candidate fixes of a conflict (or none). */
  choose?: (candidates: Repair[], message: string, node: NodeProto) => Repair | undefined;
  /** Stop at the first conflict that is not repaired. */
  stopAtConflict?: boolean;
}

export interface ShapeInference {
  infos: Map<string, TInfo>;
  conflicts: Conflict[];
  /** Fixes chosen in repair mode, in graph order. */
  repairs: Repair[];
  /** Op types met that have no rule (their outputs are unknown), with a count. */
  unknownOps: Map<string, number>;
  /** Nodes in the order they were visited (topological). */
  order: NodeProto[];
  /** Index in `order` of the node of the first conflict (order.length when none). */
  firstConflict: number;
}

export const DEFAULT_VALUE_LIMIT = 65536;

/** The dims a graph input is read with (see InferOptions.inputDims). */
export function declaredInputDims(dims: (number | string | undefined)[] | undefined): Dim[] | undefined {
  if (!dims) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (typeof d === 'number' && d > 0) out.push(d);
    else if (i === 0) out.push(BATCH);
    else if (d === 0) out.push(0);
    else return undefined;
  }
  return out;
}

/** Values kept for initializers and Constant nodes: integers (shape arithmetic) and float scalars, never weights. */
function keepsValue(dataType: DataType, n: number, limit: number): boolean {
  if (isFloatType(dataType)) return n <= 1;
  return n <= limit;
}

/** A map that reads through to a parent: forks of a pass share what was inferred before them. */
class Layered<V> {
  private readonly own = new Map<string, V>();
  constructor(private readonly parent?: Layered<V>) {}
  get(k: string): V | undefined {
    return this.own.has(k) ? this.own.get(k) : this.parent?.get(k);
  }
  set(k: string, v: V): void {
    this.own.set(k, v);
  }
  /** Everything visible, as one flat map. */
  flatten(): Map<string, V> {
    const out = this.parent ? this.parent.flatten() : new Map<string, V>();
    for (const [k, v] of this.own) out.set(k, v);
    return out;
  }
}

/** Chooses a fix in repair mode; `pass` stands just before `node` and can be forked to look ahead. */
export type RepairChooser = (candidates: Repair[], message: string, node: NodeProto, pass: ShapePass) => Repair | undefined;

/** One inference pass over the graph in topological order, resumable and forkable (for look-ahead). */
export class ShapePass {
  readonly order: NodeProto[];
  readonly opset: number;
  conflicts: Conflict[] = [];
  repairs: Repair[] = [];
  unknownOps = new Map<string, number>();
  /** Index in `order` of the next node to visit. */
  pos = 0;
  firstConflict: number;
  private infos: Layered<TInfo>;

  private constructor(
    order: NodeProto[],
    opset: number,
    infos: Layered<TInfo>,
    private readonly limit: number,
    public choose: RepairChooser | undefined,
  ) {
    this.order = order;
    this.opset = opset;
    this.infos = infos;
    this.firstConflict = order.length;
  }

  static start(model: ModelProto, opts: InferOptions = {}, choose?: RepairChooser): ShapePass {
    const g = new Graph(model);
    const limit = opts.valueLimit ?? DEFAULT_VALUE_LIMIT;
    const infos = new Layered<TInfo>();
    for (const [name, t] of g.initializers) {
      const dims = t.dims.map(Number);
      const info: TInfo = { dataType: t.dataType as DataType, dims };
      if (keepsValue(t.dataType as DataType, numel(dims), limit)) {
        try {
          const v = fromHost(tensorToHost(t));
          if (v) info.value = v;
        } catch {
          // undecodable (external or odd type): dims only
        }
      }
      infos.set(name, info);
    }
    for (const v of model.graph!.input) {
      if (g.initializers.has(v.name)) continue;
      const s = valueInfoShape(v);
      const dims = opts.inputDims && v.name in opts.inputDims ? opts.inputDims[v.name] : declaredInputDims(s.dims);
      infos.set(v.name, { dataType: s.dataType, dims });
    }
    const chooser = choose ?? (opts.choose ? (c: Repair[], m: string, n: NodeProto) => opts.choose!(c, m, n) : undefined);
    return new ShapePass(g.topologicalOrder(), g.opset, infos, limit, chooser);
  }

  /** A copy positioned where this pass stands; what it infers does not touch this one. */
  fork(choose?: RepairChooser): ShapePass {
    const f = new ShapePass(this.order, this.opset, new Layered(this.infos), this.limit, choose ?? this.choose);
    f.pos = this.pos;
    f.conflicts = [...this.conflicts];
    f.repairs = [...this.repairs];
    f.unknownOps = new Map(this.unknownOps);
    f.firstConflict = this.firstConflict;
    return f;
  }

  info(name: string): TInfo | undefined {
    return this.infos.get(name);
  }

  /** Visit nodes up to (not including) index `until`; with stopAtConflict, stop after the first conflicted node. */
  run(until = this.order.length, stopAtConflict = false): this {
    while (this.pos < Math.min(until, this.order.length)) {
      const conflicted = this.visit(this.order[this.pos]!);
      this.pos++;
      if (conflicted && stopAtConflict) break;
    }
    return this;
  }

  private visit(node: NodeProto): boolean {
    const here = this.pos;
    const ins = node.input.map((i) => (i ? this.infos.get(i) : undefined));
    let outs: (TInfo | undefined)[] = [];
    const rule = !node.domain || node.domain === 'ai.onnx' ? shapeRuleFor(node.opType) : undefined;
    let conflicted = false;
    const ctx: RuleContext = {
      node,
      opset: this.opset,
      ins,
      valueLimit: this.limit,
      conflict: (message) => {
        this.conflicts.push({ node, message });
        conflicted = true;
      },
      offer: (candidates, message) => {
        const pick = this.choose && candidates.length ? this.choose(candidates, message, node, this) : undefined;
        if (pick) this.repairs.push(pick);
        else {
          this.conflicts.push({ node, message });
          conflicted = true;
        }
        return pick;
      },
    };
    if (!rule) this.unknownOps.set(node.opType, (this.unknownOps.get(node.opType) ?? 0) + 1);
    else {
      try {
        outs = rule(ctx);
      } catch {
        outs = [];
      }
    }
    node.output.forEach((o, i) => {
      if (!o) return;
      let info = outs[i] ?? {};
      if (info.value && node.opType === 'Constant' && !keepsValue(info.value.dataType, info.value.data.length, this.limit)) {
        info = { dataType: info.dataType, dims: info.dims };
      }
      this.infos.set(o, info);
    });
    if (conflicted && this.firstConflict === this.order.length) this.firstConflict = here;
    return conflicted;
  }

  result(): ShapeInference {
    return { infos: this.infos.flatten(), conflicts: this.conflicts, repairs: this.repairs, unknownOps: this.unknownOps, order: this.order, firstConflict: this.firstConflict };
  }
}

/** Infer every tensor's type, dims and (small) value; see InferOptions. */
export function inferShapes(model: ModelProto, opts: InferOptions = {}): ShapeInference {
  return ShapePass.start(model, opts).run(Infinity, opts.stopAtConflict).result();
}
