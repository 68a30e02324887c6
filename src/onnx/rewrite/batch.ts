// Batch generalization of exports whose input batch is symbolic but whose graph is not:
// stored shapes (value_info, output dims) that contradict the symbolic batch are dropped or
// corrected (ONNX Runtime trusts them when it optimizes), and shape constants baked at the traced
// batch 1 (Reshape targets, a batch-1 token joined to the stream) are rewritten to batch-agnostic
// forms (-1 on the batch axis, Expand to the batch), chosen by looking ahead for the fix that keeps
// the rest of the graph consistent. The caller still has to verify the result numerically.
import { create, TensorShapeProto_DimensionSchema, TensorShapeProtoSchema, TypeProto_TensorSchema, TypeProtoSchema, ValueInfoProtoSchema, type ModelProto, type NodeProto, type ValueInfoProto } from '../proto.js';
import { Graph, valueInfoShape } from '../graph.js';
import { copyMessage, GraphEditor } from '../edit.js';
import { makeAttr } from '../attributes.js';
import { ShapePass, declaredInputDims, type Conflict, type InferOptions, type ShapeInference } from '../shapes/infer.js';
import type { Repair } from '../shapes/rule.js';
import { BATCH, type Dim, dimsText, isLin, symEq } from '../shapes/sym.js';
import { BatchSource } from './batchSource.js';

/**
 * What the batch of a model is:
 * - fixed: the input declares a fixed batch size;
 * - dynamic: the graph is consistent at every batch size (proven by inference);
 * - rewritten: shape constants baked at batch 1 were rewritten and the graph is then consistent;
 * - unknown: no conflict found, but some shapes are not known (ops without a shape rule);
 * - unproven: conflicts remain that no rewrite fixes.
 */
export type BatchStatus = 'fixed' | 'dynamic' | 'rewritten' | 'unknown' | 'unproven';

export interface BatchGeneralization {
  model: ModelProto;
  status: BatchStatus;
  repairs: Repair[];
  /** Conflicts left (status unproven), or found before repairing (status rewritten). */
  conflicts: Conflict[];
  /** value_info entries dropped and graph outputs whose dims were corrected. */
  stale: { dropped: string[]; outputs: string[] };
  /** Inference of the returned model. */
  inference: ShapeInference;
}

/** Nodes looked at past a conflict when choosing between fixes. */
const LOOKAHEAD = 400;

/**
 * The fix after which the graph stays consistent longest (later fixes taken greedily), looking
 * LOOKAHEAD nodes ahead; preference order on ties. A wrong fix shows as a conflict soon after
 * (a product whose inner size now depends on the batch), a right one only at the next baked constant.
 */
function lookahead(cands: Repair[], _message: string, node: NodeProto, pass: ShapePass): Repair | undefined {
  if (cands.length <= 1) return cands[0];
  let best: Repair | undefined;
  let bestReach = -1;
  const end = pass.pos + LOOKAHEAD;
  for (const c of cands) {
    const f = pass.fork((cs, _m, n) => (n === node ? c : cs[0]));
    const before = f.conflicts.length;
    let reach = pass.pos;
    while (f.pos < Math.min(end, f.order.length) && f.conflicts.length === before) {
      reach = f.pos;
      f.run(f.pos + 1);
    }
    if (f.conflicts.length === before) return c; // consistent through the whole window
    if (reach > bestReach) {
      best = c;
      bestReach = reach;
    }
  }
  return best;
}

function batchInputOf(g: Graph, inf: ShapeInference): string | undefined {
  return g.inputNames.find((i) => {
    const d = inf.infos.get(i)?.dims;
    return d && d.length > 0 && symEq(d[0]!, BATCH);
  });
}

/** Apply Reshape-target and Concat-expand repairs to a copy of `model`. */
export function applyBatchRepairs(model: ModelProto, repairs: readonly Repair[], batchInput: string): ModelProto {
  const ed = new GraphEditor(model);
  const b = ed.builder('vp_batch');
  const src = new BatchSource(b, batchInput);
  const placed = new Set<NodeProto>();
  for (const r of repairs) {
    if (r.kind === 'reshape') {
      if (ed.opset < 5) {
        ed.editNode(r.node, (cur) => ({ attribute: [...cur.attribute.filter((a) => a.name !== 'shape'), makeAttr('shape', r.target)] }));
      } else {
        const name = b.constI64(r.target, [r.target.length], 'batch_shape');
        ed.editNode(r.node, (cur) => ({ input: cur.input.map((i, j) => (j === 1 ? name : i)) }));
      }
    } else {
      const start = b.nodes.length;
      const shape = src.vector(r.dims.map((d) => (isLin(d) ? d : 1n)));
      const expanded = b.op('Expand', [ed.current(r.node).input[r.input]!, shape]);
      const nodes = b.nodes.slice(start);
      for (const n of nodes) placed.add(n);
      ed.insertBefore(r.node, nodes);
      ed.editNode(r.node, (cur) => ({ input: cur.input.map((i, j) => (j === r.input ? expanded : i)) }));
    }
  }
  ed.prepend(b.nodes.filter((n) => !placed.has(n))); // the batch size itself: read from the input first
  return ed.model();
}

function shapedValueInfo(v: ValueInfoProto, dims: (number | string | undefined)[]): ValueInfoProto {
  if (v.type?.value.case !== 'tensorType') return v;
  const tt = v.type.value.value;
  const shape = create(TensorShapeProtoSchema, {
    dim: dims.map((d) =>
      create(TensorShapeProto_DimensionSchema, {
        value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : typeof d === 'string' ? { case: 'dimParam', value: d } : { case: undefined },
      }),
    ),
  });
  return copyMessage(ValueInfoProtoSchema, v, {
    type: copyMessage(TypeProtoSchema, v.type, { value: { case: 'tensorType', value: copyMessage(TypeProto_TensorSchema, tt, { shape }) } }),
  });
}

/** Whether stored dims say something the inferred dims contradict (a fixed size where B is, or another size). */
function contradicts(stored: (number | string | undefined)[], inferred: Dim[]): boolean {
  if (stored.length !== inferred.length) return true;
  return stored.some((d, i) => typeof d === 'number' && d > 0 && (isLin(inferred[i]!) || inferred[i] !== d));
}

/**
 * Drop value_info entries that contradict the inferred shapes (and, once one does, those the
 * inference cannot check that fix every dim), and correct graph output dims the same way.
 */
export function dropStaleShapes(model: ModelProto, inf: ShapeInference, batchParam = 'batch'): { model: ModelProto; dropped: string[]; outputs: string[] } {
  const g = model.graph!;
  const verdict = g.valueInfo.map((v) => {
    const stored = valueInfoShape(v).dims;
    const inferred = inf.infos.get(v.name)?.dims;
    if (!stored) return 'keep';
    if (!inferred) return 'unchecked';
    return contradicts(stored, inferred) ? 'drop' : 'keep';
  });
  const outputs: string[] = [];
  const newOutputs = g.output.map((v) => {
    const stored = valueInfoShape(v).dims;
    const inferred = inf.infos.get(v.name)?.dims;
    if (!stored || !inferred || !contradicts(stored, inferred)) return v;
    outputs.push(v.name);
    return shapedValueInfo(v, inferred.map((d) => (isLin(d) ? (symEq(d, BATCH) ? batchParam : undefined) : d)));
  });
  const any = verdict.includes('drop') || outputs.length > 0;
  const dropped: string[] = [];
  const kept = g.valueInfo.filter((v, i) => {
    const d = verdict[i] === 'drop' || (any && verdict[i] === 'unchecked' && (valueInfoShape(v).dims ?? []).every((x) => typeof x === 'number'));
    if (d) dropped.push(v.name);
    return !d;
  });
  if (!dropped.length && !outputs.length) return { model, dropped, outputs };
  const ed = new GraphEditor(model);
  const keep = new Set(kept);
  ed.filterValueInfo((v) => keep.has(v));
  ed.setOutputs(newOutputs);
  return { model: ed.model(), dropped, outputs };
}

/** Whether every graph output has known dims with the batch size on axis 0. */
function outputsFollowBatch(g: Graph, inf: ShapeInference): boolean | undefined {
  let unknown = false;
  for (const o of g.outputNames) {
    const d = inf.infos.get(o)?.dims;
    if (!d) unknown = true;
    else if (d.length === 0 || !symEq(d[0]!, BATCH)) return false;
  }
  return unknown ? undefined : true;
}

/** Generalize the batch of `model` (see the file comment). Returns the model unchanged when its batch is fixed. */
export function generalizeBatch(model: ModelProto, opts: Omit<InferOptions, 'choose' | 'stopAtConflict'> = {}): BatchGeneralization {
  const g = new Graph(model);
  const first = ShapePass.start(model, opts).run().result();
  const input = batchInputOf(g, first);
  const noStale = { dropped: [] as string[], outputs: [] as string[] };
  if (!input) return { model, status: 'fixed', repairs: [], conflicts: first.conflicts, stale: noStale, inference: first };
  const param = (() => {
    const v = model.graph!.input.find((i) => i.name === input);
    const d = v ? valueInfoShape(v).dims?.[0] : undefined;
    return typeof d === 'string' && d ? d : 'batch';
  })();
  let current = model;
  let inf = first;
  let repairs: Repair[] = [];
  let why: Conflict[] = [];
  const found = first.conflicts;
  if (found.length) {
    const plan = ShapePass.start(model, opts, lookahead).run().result();
    if (plan.conflicts.length) why = plan.conflicts;
    else if (plan.repairs.length) {
      const fixed = applyBatchRepairs(model, plan.repairs, input);
      const check = ShapePass.start(fixed, opts).run().result();
      if (check.conflicts.length === 0) {
        current = fixed;
        inf = check;
        repairs = plan.repairs;
      } else why = check.conflicts;
    }
  }
  const cg = new Graph(current);
  const follows = outputsFollowBatch(cg, inf);
  if (!why.length && follows === false) {
    const o = cg.outputNames.find((x) => {
      const d = inf.infos.get(x)?.dims;
      return d && (d.length === 0 || !symEq(d[0]!, BATCH));
    })!;
    const producer = cg.producerOf(o);
    if (producer) why = [{ node: producer, message: `graph output ${o} would be ${dimsText(inf.infos.get(o)!.dims)}: the batch size does not stay on axis 0` }];
  }
  let status: BatchStatus;
  if (why.length || inf.conflicts.length || follows === false) status = 'unproven';
  else if (repairs.length) status = follows ? 'rewritten' : 'unproven';
  else status = follows ? 'dynamic' : 'unknown';
  if (status === 'unproven') return { model, status, repairs: [], conflicts: why.length ? why : found, stale: noStale, inference: first };
  const stale = dropStaleShapes(current, inf, param);
  return { model: stale.model, status, repairs, conflicts: found, stale: { dropped: stale.dropped, outputs: stale.outputs }, inference: inf };
}

/** `model` with its batch input (and every graph output with the batch on axis 0) fixed at `n`. */
export function fixBatch(model: ModelProto, n: number, opts: Omit<InferOptions, 'choose' | 'stopAtConflict'> = {}): ModelProto {
  const first = ShapePass.start(model, opts).run().result();
  const g = model.graph!;
  const fix = (v: ValueInfoProto, batchAxis0: boolean) => {
    const dims = valueInfoShape(v).dims;
    if (!dims || !dims.length || !batchAxis0) return v;
    return shapedValueInfo(v, [n, ...dims.slice(1)]);
  };
  const inputs = g.input.map((v) => {
    const d = declaredInputDims(valueInfoShape(v).dims);
    return fix(v, !!d && d.length > 0 && isLin(d[0]!));
  });
  const outputs = g.output.map((v) => {
    const d = first.infos.get(v.name)?.dims;
    const stored = valueInfoShape(v).dims;
    return fix(v, (!!d && d.length > 0 && isLin(d[0]!)) || (!!stored && typeof stored[0] !== 'number'));
  });
  const ed = new GraphEditor(model);
  ed.setInputs(inputs);
  ed.setOutputs(outputs);
  return ed.model();
}

/** One line per conflict, for messages. */
export function conflictText(c: Conflict): string {
  return `${c.node.opType} "${c.node.name || c.node.output[0]}": ${c.message}`;
}

