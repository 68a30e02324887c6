// Per-op slicers for structured pruning: keep chosen output features (columns) or input features
// (rows) of a located linear layer — MatMul (+ bias Add) with weight [in, out], Gemm with weight
// [out, in] (transB) or [in, out] — in place in a GraphEditor. A weight or bias that other nodes
// read too is forked for this layer, so only it changes.
import type { NodeProto } from '../onnx/proto.js';
import type { GraphEditor } from '../onnx/edit.js';
import { sliceAlong } from '../onnx/edit.js';
import type { LinearRef } from '../vit/types.js';
import { unsupported } from '../errors.js';

/** The MatMul/Gemm node of a located linear (its output, or the node feeding the bias Add). */
export function linearNode(ed: GraphEditor, lin: LinearRef): NodeProto {
  const g = ed.graph;
  const p = g.producerOf(lin.output);
  if (p && (p.opType === 'MatMul' || p.opType === 'Gemm') && p.input[1] === lin.weight) return p;
  for (const i of p?.input ?? []) {
    const q = g.producerOf(i);
    if (q && (q.opType === 'MatMul' || q.opType === 'Gemm') && q.input[1] === lin.weight) return q;
  }
  throw unsupported(`the linear layer writing "${lin.output}" has no MatMul/Gemm reading weight "${lin.weight}"`);
}

/** The Add node that adds a MatMul's bias. */
function biasAdd(ed: GraphEditor, lin: LinearRef): NodeProto {
  const p = ed.graph.producerOf(lin.output);
  if (!p || !lin.bias || !p.input.includes(lin.bias)) throw unsupported(`the bias "${lin.bias}" of the linear writing "${lin.output}" is not read by the node writing it`);
  return p;
}

/**
 * Keep `indices` along `axis` of the constant that input `index` of `node` reads: sliced in place
 * when no other node reads it, else forked for this node.
 */
export function sliceConstantInput(ed: GraphEditor, node: NodeProto, index: number, axis: number, indices: readonly number[]): void {
  const name = ed.current(node).input[index]!;
  const value = ed.constantValue(name);
  if (!value) throw unsupported(`input ${index} ("${name}") of node "${node.name || node.output[0]}" is not a constant; vitpath prunes constant weights only`);
  const rank = value.dims.length;
  const ax = axis < 0 ? axis + rank : axis;
  const sliced = sliceAlong(value, ax, indices);
  const readers = ed.graph.consumersOf(name).filter((c) => c !== node);
  const isInit = Boolean(ed.initializer(name));
  const isConstNode = ed.graph.producerOf(name)?.opType === 'Constant';
  if (readers.length === 0 && !ed.graph.outputNames.includes(name) && (isInit || isConstNode)) ed.setConstant(name, sliced);
  else ed.forkConstant(node, index, sliced);
}

/** Axis of the weight that holds output features (out) or input features (in). */
function weightAxis(lin: LinearRef, which: 'out' | 'in'): number {
  const outerIsOut = lin.kind === 'gemm' && lin.transB === true; // [out, in]
  if (which === 'out') return outerIsOut ? 0 : 1;
  return outerIsOut ? 1 : 0;
}

/** Keep output features `keep` of `lin`: weight columns (rows when transposed) and bias entries. */
export function keepOutputs(ed: GraphEditor, lin: LinearRef, keep: readonly number[]): void {
  const node = linearNode(ed, lin);
  sliceConstantInput(ed, node, 1, weightAxis(lin, 'out'), keep);
  if (!lin.bias) return;
  if (lin.kind === 'gemm') {
    const c = ed.constantValue(lin.bias);
    // A scalar (or [1]) C broadcasts; only a per-feature C is sliced.
    if (c && c.dims.length > 0 && c.dims[c.dims.length - 1] === lin.outFeatures && lin.outFeatures !== 1) sliceConstantInput(ed, node, 2, -1, keep);
    return;
  }
  const add = biasAdd(ed, lin);
  sliceConstantInput(ed, add, add.input.indexOf(lin.bias), -1, keep);
}

/** Keep input features `keep` of `lin`: weight rows (columns when transposed). */
export function keepInputs(ed: GraphEditor, lin: LinearRef, keep: readonly number[]): void {
  sliceConstantInput(ed, linearNode(ed, lin), 1, weightAxis(lin, 'in'), keep);
}
