// Static shape facts the locator needs without running the model: tensor ranks (from value_info,
// constants and op semantics) and the number of attention heads (from reshape targets, head-count
// constants in shape arithmetic, or the 1/sqrt(head_dim) score scale).
import type { NodeProto } from '../onnx/proto.js';
import { DataType } from '../onnx/proto.js';
import type { Graph } from '../onnx/graph.js';
import { attrInt, attrInts } from '../onnx/attributes.js';
import { toNumbers } from '../onnx/tensor.js';

const SAME_RANK = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Erf', 'Tanh', 'Relu', 'Gelu', 'Sigmoid', 'Sqrt', 'Cast', 'Identity', 'Softmax',
  'LayerNormalization', 'BatchNormalization', 'Dropout', 'Where', 'Neg', 'Exp', 'Log', 'Abs', 'Clip', 'Conv', 'Slice', 'Concat',
]);

/** Integer values of a constant, or undefined. */
export function constInts(g: Graph, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const v = g.constantValue(name);
  if (!v) return undefined;
  return toNumbers(v);
}

/** The rank of a tensor, or undefined when the graph does not tell. */
export function rankOf(g: Graph, name: string, memo = new Map<string, number | undefined>(), depth = 0): number | undefined {
  if (memo.has(name)) return memo.get(name);
  memo.set(name, undefined);
  const r = computeRank(g, name, memo, depth);
  memo.set(name, r);
  return r;
}

function computeRank(g: Graph, name: string, memo: Map<string, number | undefined>, depth: number): number | undefined {
  const s = g.shapeOf(name);
  if (s?.dims) return s.dims.length;
  const cv = g.isConstant(name) ? g.constantValue(name) : undefined;
  if (cv) return cv.dims.length;
  if (depth > 200) return undefined;
  const p = g.producerOf(name);
  if (!p) return undefined;
  const rk = (t: string | undefined) => (t ? rankOf(g, t, memo, depth + 1) : undefined);
  switch (p.opType) {
    case 'Gemm':
    case 'Flatten':
      return 2;
    case 'Transpose': {
      const perm = attrInts(p, 'perm');
      return perm ? perm.length : rk(p.input[0]);
    }
    case 'Reshape': {
      const shape = constInts(g, p.input[1]);
      if (shape) return shape.length;
      const shapeDims = g.shapeOf(p.input[1]!)?.dims;
      if (shapeDims && typeof shapeDims[0] === 'number') return shapeDims[0];
      const cat = g.producerOf(p.input[1]!);
      if (cat?.opType === 'Concat') {
        let n = 0;
        for (const i of cat.input) {
          const c = constInts(g, i);
          if (c) n += c.length;
          else if (g.producerOf(i)?.opType === 'Unsqueeze') n += 1;
          else return undefined;
        }
        return n;
      }
      return undefined;
    }
    case 'MatMul': {
      const a = rk(p.input[0]);
      const b = rk(p.input[1]);
      return a !== undefined && b !== undefined ? Math.max(a, b) : undefined;
    }
    case 'Gather': {
      const a = rk(p.input[0]);
      const q = rk(p.input[1]);
      return a !== undefined && q !== undefined ? a + q - 1 : undefined;
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax': {
      const a = rk(p.input[0]);
      if (a === undefined) return undefined;
      if (attrInt(p, 'keepdims', 1)) return a;
      const axes = attrInts(p, 'axes') ?? constInts(g, p.input[1]);
      return axes ? a - axes.length : a === 0 ? 0 : undefined;
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const a = rk(p.input[0]);
      const axes = attrInts(p, 'axes') ?? constInts(g, p.input[1]);
      if (a === undefined || !axes) return undefined;
      return p.opType === 'Squeeze' ? a - axes.length : a + axes.length;
    }
    default:
      if (SAME_RANK.has(p.opType)) {
        let best: number | undefined;
        for (const i of p.opType === 'Concat' || p.opType === 'Slice' || p.opType === 'Conv' || p.opType === 'LayerNormalization' || p.opType === 'BatchNormalization' ? [p.input[0]] : p.input) {
          if (!i) continue;
          const r = rk(i);
          if (r === undefined) {
            if (!g.isConstant(i)) return undefined;
            continue;
          }
          best = best === undefined ? r : Math.max(best, r);
        }
        return best;
      }
      return undefined;
  }
}

function isIntType(t: DataType): boolean {
  return t === DataType.INT64 || t === DataType.INT32;
}

/** A candidate count is plausible if it divides the width into heads of at least 1 channel. */
const fits = (width: number, h: number) => Number.isInteger(h) && h >= 1 && h <= width && width % h === 0;

/**
 * The number of attention heads of one block's attention, from the nodes of its attention region
 * (everything between the block input and the attention branch). Returns null when the graph
 * does not say.
 */
export function inferHeads(g: Graph, regionNodes: NodeProto[], softmax: NodeProto | undefined, width: number): number | null {
  // 1. Declared shape of the softmax output: [B, H, T, T].
  if (softmax) {
    const d = g.shapeOf(softmax.output[0]!)?.dims;
    if (d && d.length === 4 && typeof d[1] === 'number' && fits(width, d[1])) return d[1];
  }
  // 2. Reshape targets known element by element (constants or Concat of constants and unknowns):
  //    the last adjacent pair (h, dh) with h*dh = width, h >= 2 and dh >= 2.
  const votes = new Map<number, number>();
  const vote = (h: number) => votes.set(h, (votes.get(h) ?? 0) + 1);
  for (const n of regionNodes) {
    if (n.opType !== 'Reshape') continue;
    const dims = reshapeTarget(g, n.input[1]);
    if (!dims) continue;
    for (let i = dims.length - 2; i >= 0; i--) {
      const a = dims[i];
      const b = dims[i + 1];
      if (a !== undefined && b !== undefined && a >= 2 && b >= 2 && a * b === width) {
        vote(a);
        break;
      }
    }
  }
  if (votes.size) return best(votes);
  // 3. Shape arithmetic: integer Mul/Div by a constant c that divides the width
  //    (torch MultiheadAttention computes bsz*num_heads and embed_dim // num_heads).
  for (const n of regionNodes) {
    if (n.opType !== 'Mul' && n.opType !== 'Div') continue;
    for (const [k, i] of n.input.entries()) {
      if (n.opType === 'Div' && k !== 1) continue;
      const v = g.constantValue(i);
      if (!v || !isIntType(v.dataType) || v.data.length !== 1) continue;
      const c = toNumbers(v)[0]!;
      if (c >= 2 && fits(width, c)) vote(c);
    }
  }
  if (votes.size) return best(votes);
  // 4. The score scale 1/sqrt(dh) applied on the way to the softmax: once on the scores or on q
  //    (Mul by 1/sqrt(dh) or Div by sqrt(dh)), or split as dh^-1/4 on both q and k (SDPA exports).
  if (softmax) {
    const before = g.ancestors([softmax.input[0]!]);
    const factors: number[] = [];
    for (const n of regionNodes) {
      if ((n.opType !== 'Mul' && n.opType !== 'Div') || !before.has(n.output[0]!)) continue;
      const c = n.input.find((i, k) => (n.opType === 'Mul' || k === 1) && g.isConstant(i));
      if (!c) continue;
      const v = g.constantValue(c)!;
      if (isIntType(v.dataType) || v.data.length !== 1) continue;
      const s = toNumbers(v)[0]!;
      if (!(s > 0) || s === 1) continue;
      factors.push(n.opType === 'Mul' ? s : 1 / s);
    }
    if (factors.length === 1 || factors.length === 2) {
      const total = factors.reduce((a, b) => a * b, 1); // 1/sqrt(dh)
      const dh = 1 / (total * total);
      const r = Math.round(dh);
      if (Math.abs(dh - r) < 1e-3 * r && r >= 1 && fits(width, width / r)) return width / r;
    }
  }
  return null;
}

function best(votes: Map<number, number>): number {
  return [...votes.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]![0];
}

/** A reshape target element by element: numbers where constant, undefined where computed. */
function reshapeTarget(g: Graph, shape: string | undefined): (number | undefined)[] | undefined {
  if (!shape) return undefined;
  const c = constInts(g, shape);
  if (c) return c;
  const cat = g.producerOf(shape);
  if (cat?.opType !== 'Concat') return undefined;
  const out: (number | undefined)[] = [];
  for (const i of cat.input) {
    const v = constInts(g, i);
    if (v) out.push(...v);
    else out.push(undefined); // one computed element (Unsqueeze of a scalar) in every export we know
  }
  return out;
}
