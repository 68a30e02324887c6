// Last-block row slice: with class-token pooling, only the class token's row of the last block's
// MLP sub-block reaches the head. The rewrite gathers that row of the last block's attention
// residual ([B,T,D] -> [B,1,D]) before its MLP and lets the MLP, the residual add, the final norm
// and the pooling run on one row instead of T. Applies only when every op between the attention
// residual and the pooling Gather is row-wise (checked op by op, tracking where the token axis is);
// returns null otherwise, and the caller keeps the full graph.
import type { ModelProto, NodeProto } from '../proto.js';
import { GraphEditor } from '../edit.js';
import { attrInt, attrInts } from '../attributes.js';
import { toNumbers } from '../tensor.js';
import type { ViTLayout } from '../../vit/types.js';

export interface LastRowSlice {
  model: ModelProto;
  /** The sliced block (the last). Its neuron tensor now holds one token row: [B,1,F] or flat [B,F]. */
  block: number;
  /** The class-token row of the attention residual, [B,1,D]. */
  row: string;
  /** Tensors whose token axis now has length 1. */
  sliced: string[];
}

/** Where a tensor's token axis is: an index of a rank-`rank` tensor, or -1 when merged into axis 0 (flat [B*T, X]). */
interface AxisState {
  rank: number;
  tok: number;
}

const UNARY = new Set(['Erf', 'Tanh', 'Relu', 'Gelu', 'Sigmoid', 'Sqrt', 'Identity', 'Cast', 'Neg', 'Abs', 'Exp', 'Reciprocal', 'Softplus', 'Dropout']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum']);

/**
 * Slice the last block's residual stream to the class-token row before its MLP. Null when the model
 * does not pool by class token or some op on the way to the pooling Gather is not row-wise.
 */
export function sliceLastBlockRow(model: ModelProto, layout: ViTLayout): LastRowSlice | null {
  if (layout.facts.pooling !== 'cls' || !layout.classToken) return null;
  const ed = new GraphEditor(model);
  const g = ed.graph;
  const L = layout.blocks.length - 1;
  const blk = layout.blocks[L]!;
  const T = layout.facts.tokens;
  const r = layout.classToken.row;
  const start = blk.attnResidual;
  if (!g.producerOf(start)) return null;
  const shape = g.shapeOf(start);
  if (shape?.dims && shape.dims.length !== 3) return null;

  const states = new Map<string, AxisState>([[start, { rank: 3, tok: 1 }]]);
  const ints = (name: string | undefined) => {
    const v = name ? g.constantValue(name) : undefined;
    return v ? toNumbers(v) : undefined;
  };
  /** A constant operand broadcast against state s must be 1 (or absent) along the token axis. */
  const constOk = (name: string, s: AxisState) => {
    const v = g.constantValue(name);
    if (!v) return false;
    const k = v.dims.length;
    const idx = (s.tok < 0 ? 0 : s.tok) - (s.rank - k);
    return k <= s.rank && (idx < 0 || v.dims[idx] === 1);
  };
  const reshapes = new Map<NodeProto, number[]>();
  let pool: NodeProto | undefined;
  const region: NodeProto[] = [];

  for (const n of g.topologicalOrder()) {
    const ins = n.input.map((i) => (i ? states.get(i) : undefined));
    const s = ins.find((x) => x !== undefined);
    if (!s) continue;
    if (pool) return null; // something else reads the token axis after pooling was found elsewhere
    region.push(n);
    let out: AxisState | undefined;
    const others = n.input.filter((i, k) => i && !ins[k]);
    const op = n.opType;
    if (UNARY.has(op)) out = s;
    else if (BINARY.has(op)) {
      if (ins.some((x) => x && (x.rank !== s.rank || x.tok !== s.tok))) return null;
      if (!others.every((o) => constOk(o, s))) return null;
      out = s;
    } else if (op === 'LayerNormalization') {
      if (ins[0] !== s || !others.every((o) => g.isConstant(o))) return null;
      const ax = attrInt(n, 'axis', -1);
      const a = ax < 0 ? ax + s.rank : ax;
      if (s.tok >= a) return null;
      out = s;
    } else if (op === 'BatchNormalization') {
      if (ins[0] !== s || !others.every((o) => g.isConstant(o)) || s.tok === 1 || n.output.length > 1) return null;
      out = s;
    } else if (REDUCE.has(op)) {
      const axes = attrInts(n, 'axes') ?? ints(n.input[1]);
      if (!axes || attrInt(n, 'keepdims', 1) !== 1 || ins[0] !== s) return null;
      const norm = axes.map((a) => (a < 0 ? a + s.rank : a));
      if (norm.includes(s.tok < 0 ? 0 : s.tok)) return null;
      out = s;
    } else if (op === 'Transpose') {
      const perm = attrInts(n, 'perm');
      if (!perm || perm.length !== s.rank) return null;
      if (s.tok < 0) {
        if (perm[0] !== 0) return null;
        out = s;
      } else out = { rank: s.rank, tok: perm.indexOf(s.tok) };
    } else if (op === 'MatMul') {
      const w = g.constantValue(n.input[1] ?? '');
      if (ins[0] !== s || ins[1] || !w || w.dims.length !== 2 || s.tok === s.rank - 1) return null;
      out = s;
    } else if (op === 'Gemm') {
      if (ins[0] !== s || s.tok !== -1 || attrInt(n, 'transA', 0) !== 0 || !others.every((o) => g.isConstant(o))) return null;
      out = s;
    } else if (op === 'Reshape') {
      const target = ints(n.input[1]);
      if (!target || ins[1]) return null;
      if (s.rank === 3 && s.tok === 1 && target.length === 2 && target[0] === -1 && target[1]! > 0) out = { rank: 2, tok: -1 };
      else if (s.tok === -1 && target.length === 3 && target[0] === -1 && target[1] === T && target[2]! > 0) {
        reshapes.set(n, [-1, 1, target[2]!]);
        out = { rank: 3, tok: 1 };
      } else return null;
    } else if (op === 'Gather') {
      const idx = g.constantValue(n.input[1] ?? '');
      if (ins[0] !== s || s.rank !== 3 || s.tok !== 1 || attrInt(n, 'axis', 0) !== 1 || !idx || idx.dims.length !== 0) return null;
      const i = toNumbers(idx)[0]!;
      if ((i < 0 ? i + T : i) !== r) return null;
      pool = n;
      continue; // its output has no token axis
    } else return null;
    for (const o of n.output) if (o) states.set(o, out);
  }
  if (!pool) return null;
  for (const o of g.outputNames) if (states.has(o)) return null;

  const b = ed.builder(`lastrow/${L}`);
  const row = b.op('Gather', [start, b.constI64([r], [1], 'cls_row')], { axis: 1 });
  const zero = b.constI64([0], [], 'row0');
  const newShapes = new Map<NodeProto, string>();
  for (const [n, s] of reshapes) newShapes.set(n, b.constI64(s, [3], 'shape'));
  ed.insertAfter(start, b.nodes);
  for (const n of region) {
    ed.editNode(n, {
      input: n.input.map((i, k) => {
        if (i === start) return row;
        if (n === pool && k === 1) return zero;
        if (k === 1 && newShapes.has(n)) return newShapes.get(n)!;
        return i;
      }),
    });
  }
  const sliced = [...states.keys()].filter((t) => t !== start);
  const drop = new Set(sliced);
  ed.filterValueInfo((v) => !drop.has(v.name));
  return { model: ed.model(), block: L, row, sliced: [row, ...sliced] };
}
