// Reverse-mode automatic differentiation over an ONNX graph: emits gradient nodes with the
// per-op rules in rules/ and returns a model whose extra outputs are the requested gradients.
import { DataType, type ModelProto, type NodeProto } from '../proto.js';
import { Graph } from '../graph.js';
import { namedValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';
import { unsupported } from '../../errors.js';
import { ruleFor, supportedOps } from './registry.js';
import type { GradContext, TensorFacts } from './types.js';
import './rules/index.js';

export interface GradientSpec {
  /** Name of the tensor to differentiate; its gradient seed is 1 everywhere (a scalar loss in practice). */
  loss: string;
  /** Tensors to differentiate with respect to: graph inputs, intermediate tensors, or initializers. */
  wrt: string[];
  /** Probe facts (dtype + dims, null for batch-dependent axes) for every tensor in the graph. */
  facts: ReadonlyMap<string, TensorFacts>;
  /** Output name for each gradient; default `grad/<name>`. */
  gradName?: (name: string) => string;
  /** Keep the model's original outputs (default true). */
  keepOutputs?: boolean;
}

export interface GradientGraph {
  model: ModelProto;
  /** wrt tensor -> gradient output name. */
  gradOutputs: Record<string, string>;
  /** Number of nodes the backward pass added. */
  addedNodes: number;
}

/** Shape/logic ops registered with a zero gradient; left out of the list in error messages. */
const NON_DIFFERENTIABLE_HINT = new Set(['Shape', 'Size', 'ConstantOfShape', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'ArgMax', 'ArgMin', 'NonZero', 'IsNaN', 'IsInf']);

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);

export function buildGradientGraph(model: ModelProto, spec: GradientSpec): GradientGraph {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  const factsOf = (name: string): TensorFacts => {
    const f = spec.facts.get(name);
    if (f) return f;
    const init = graph.initializers.get(name);
    if (init) return { dataType: init.dataType as DataType, dims: init.dims.map(Number) };
    throw new Error(`autodiff: no shape facts for tensor "${name}" (probe the model first)`);
  };
  const isFloat = (name: string) => {
    const f = spec.facts.get(name) ?? (graph.initializers.has(name) ? factsOf(name) : undefined);
    return f !== undefined && FLOAT_TYPES.has(f.dataType);
  };

  // Tensors on a float path from any wrt tensor to the loss.
  const order = graph.topologicalOrder();
  const fromWrt = new Set<string>(spec.wrt);
  for (const n of order) {
    if (n.input.some((i) => i && fromWrt.has(i))) for (const o of n.output) if (o && isFloat(o)) fromWrt.add(o);
  }
  if (!fromWrt.has(spec.loss)) {
    throw new Error(`autodiff: the loss "${spec.loss}" does not depend on any of ${spec.wrt.join(', ')}`);
  }
  const toLoss = graph.ancestors([spec.loss]);
  const active = new Set([...fromWrt].filter((t) => toLoss.has(t)));

  const b = ed.builder('grad');

  const contributions = new Map<string, string[]>();
  const addGrad = (name: string, g: string) => {
    let l = contributions.get(name);
    if (!l) contributions.set(name, (l = []));
    l.push(g);
  };
  const joinedPads = new Set<string>();
  /**
   * Contributions that are zero-pads of disjoint pieces tiling one axis of `name` (the gradients of
   * the q/k/v picks, or of slices, of one tensor): one Concat of the pieces instead of a Sum of
   * full-size pads. Undefined when they do not tile it.
   */
  const tiled = (name: string, l: string[]): string | undefined => {
    const ps = l.map((t) => b.zeroPads.get(t));
    if (ps.some((p) => !p)) return undefined;
    const rank = ps[0]!.pads.length / 2;
    const axes = new Set<number>();
    for (const p of ps) for (let a = 0; a < rank; a++) if (p!.pads[a] !== 0 || p!.pads[rank + a] !== 0) axes.add(a);
    if (axes.size !== 1 || ps.some((p) => p!.pads.length !== 2 * rank)) return undefined;
    const axis = [...axes][0]!;
    const n = factsOf(name).dims[axis];
    if (n === null || n === undefined || factsOf(name).dims.length !== rank) return undefined;
    const pieces = ps.map((p, i) => ({ x: p!.x, begin: p!.pads[axis]!, end: n - p!.pads[rank + axis]!, t: l[i]! })).sort((a, c) => a.begin - c.begin);
    let at = 0;
    for (const p of pieces) {
      if (p.begin !== at || p.end <= p.begin) return undefined;
      at = p.end;
    }
    if (at !== n) return undefined;
    for (const p of pieces) joinedPads.add(p.t);
    return b.op('Concat', pieces.map((p) => p.x), { axis });
  };
  const gradOf = (name: string): string | undefined => {
    const l = contributions.get(name);
    if (!l || l.length === 0) return undefined;
    if (l.length === 1) return l[0];
    const s = tiled(name, l) ?? b.op('Sum', l);
    contributions.set(name, [s]);
    return s;
  };

  // Seed: d loss / d loss = 1 with the loss's shape.
  const lossType = factsOf(spec.loss).dataType;
  const one = b.constFloat(lossType, [1], [], 'seed_one');
  addGrad(spec.loss, b.op('Expand', [one, b.op('Shape', [spec.loss])]));

  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!;
    if (!node.output.some((o) => active.has(o))) continue;
    const gy = node.output.map((o) => (active.has(o) ? gradOf(o) : undefined));
    if (gy.every((g) => g === undefined)) continue;
    const needs = node.input.map((i) => Boolean(i) && active.has(i));
    if (!needs.some(Boolean)) continue;
    const rule = ruleFor(node.opType);
    if (!rule || (node.domain && node.domain !== 'ai.onnx')) {
      throw unsupported(
        `operator ${node.domain ? node.domain + '.' : ''}${node.opType} (node "${node.name || node.output[0]}") lies on the gradient path and vitpath has no gradient rule for it. vitpath differentiates ${supportedOps().filter((o) => !NON_DIFFERENTIABLE_HINT.has(o)).join(', ')}; please report the model and its exporter.`,
      );
    }
    const ctx: GradContext = { b, node, graph, opset: graph.opset, facts: factsOf, gy, needs };
    const gx = rule(ctx);
    node.input.forEach((inp, i) => {
      const g = gx[i];
      if (g && needs[i]) addGrad(inp, g);
    });
  }

  const gradOutputs: Record<string, string> = {};
  const gradName = spec.gradName ?? ((n: string) => `grad/${n}`);
  for (const w of spec.wrt) {
    let g = gradOf(w);
    const out = b.reserve(gradName(w));
    if (!g) {
      // No path from w to the loss: its gradient is exactly zero.
      const zero = b.constFloat(factsOf(w).dataType, [0], [], 'zero');
      g = b.op('Expand', [zero, b.op('Shape', [w])]);
    }
    b.op('Identity', [g], {}, out);
    gradOutputs[w] = out;
  }

  // Pads replaced by a Concat are read by nothing now: leave them (and their pads constants) out.
  const read = new Set<string>([...b.nodes.flatMap((n) => n.input), ...Object.values(gradOutputs)]);
  const dropped = b.nodes.filter((n) => n.opType === 'Pad' && n.output.some((o) => joinedPads.has(o)) && !n.output.some((o) => read.has(o)));
  const dropNodes = new Set(dropped);
  const stillRead = new Set(b.nodes.filter((n) => !dropNodes.has(n)).flatMap((n) => n.input));
  const deadInits = new Set(dropped.flatMap((n) => n.input.slice(1)).filter((i) => i && !stillRead.has(i)));
  for (let i = b.nodes.length - 1; i >= 0; i--) if (dropNodes.has(b.nodes[i]!)) b.nodes.splice(i, 1);
  for (let i = b.initializers.length - 1; i >= 0; i--) if (deadInits.has(b.initializers[i]!.name)) b.initializers.splice(i, 1);
  ed.append(b.nodes);
  if (spec.keepOutputs === false) ed.setOutputs([]);
  ed.addOutputs(Object.values(gradOutputs).map((o) => namedValueInfo(o)));
  return { model: ed.model(), gradOutputs, addedNodes: b.nodes.length };
}

/** Nodes of `model` that lie between `wrt` and `loss` whose ops have no rule (for diagnostics). */
export function missingRules(model: ModelProto, loss: string, wrt: string[]): NodeProto[] {
  const graph = new Graph(model);
  const down = graph.descendants(wrt);
  const up = graph.ancestors([loss]);
  return graph.nodes.filter((n) => n.output.some((o) => down.has(o) && up.has(o)) && !ruleFor(n.opType));
}
