// Gradient of Gather: the output gradient scattered back into the gathered axis without any
// Scatter op. A scalar constant index (class token x[:, 0], q/k/v picks) is a zero-pad; any
// other index set is a one-hot [K, N] matrix (constant, or built at run time by Equal when the
// indices are computed) applied by MatMul, which also sums the gradients of repeated indices.
import { attrInt } from '../../attributes.js';
import { DataType } from '../../proto.js';
import { toNumbers } from '../../tensor.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis } from '../util.js';
import type { GradContext } from '../types.js';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/** The constant one-hot matrix [rows.length, n] with a 1 at (k, rows[k]), in the element type of `like`. */
export function oneHotConst(ctx: GradContext, rows: number[], n: number, dataType: DataType): string {
  const v = new Array<number>(rows.length * n).fill(0);
  rows.forEach((r, k) => (v[k * n + r] = 1));
  return ctx.b.constFloat(dataType, v, [rows.length, n], 'onehot');
}

/**
 * Map a gradient whose `axis` has size K onto size N: moves the axis last, multiplies by the
 * [K, N] matrix `m`, and moves it back. `rank` is the rank of `g`.
 */
export function mapAxis(ctx: GradContext, g: string, axis: number, rank: number, m: string): string {
  const { b } = ctx;
  let t = g;
  if (axis !== rank - 1) t = b.op('Transpose', [t], { perm: [...range(0, axis), ...range(axis + 1, rank), axis] });
  t = b.op('MatMul', [t, m]);
  if (axis !== rank - 1) t = b.op('Transpose', [t], { perm: [...range(0, axis), rank - 1, ...range(axis, rank - 1)] });
  return t;
}

registerRule('Gather', (ctx) => {
  const { node, b } = ctx;
  if (!ctx.needs[0]) return [undefined, undefined];
  const [data, indices] = node.input as [string, string];
  const dDims = ctx.facts(data).dims;
  const rank = dDims.length;
  const axis = normAxis(attrInt(node, 'axis', 0), rank);
  const n = dDims[axis];
  if (n === null || n === undefined) {
    throw unsupported(
      `Gather node "${node.name || node.output[0]}" gathers along axis ${axis}, whose size depends on the batch size; vitpath can only differentiate gathers along fixed-size axes.`,
    );
  }
  const dataType = ctx.facts(node.output[0]!).dataType;
  const idxConst = ctx.graph.constantValue(indices);
  const r = idxConst ? idxConst.dims.length : ctx.facts(indices).dims.length;
  let g = ctx.gy[0]!;

  if (idxConst && (r === 0 || (r === 1 && idxConst.dims[0] === 1))) {
    // One index (a scalar, or a single-element list such as the class-token row [0]): the gradient
    // is gy with the axis put back (a scalar index removed it), zero elsewhere along it.
    const raw = toNumbers(idxConst)[0]!;
    const idx = raw < 0 ? raw + n : raw;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[axis] = idx;
    pads[rank + axis] = n - 1 - idx;
    return [b.padZeros(r === 0 ? b.unsqueeze(g, [axis]) : g, pads), undefined];
  }

  // Bring the index axes of gy (axis .. axis+r-1) to the end, flattened into one of size K.
  const q = rank - axis - 1;
  if (r === 0) g = b.unsqueeze(g, [axis]);
  const ri = Math.max(r, 1);
  const gRank = axis + ri + q;
  if (q > 0) g = b.op('Transpose', [g], { perm: [...range(0, axis), ...range(axis + ri, gRank), ...range(axis, axis + ri)] });
  if (ri > 1) g = b.op('Reshape', [g, b.constI64([...new Array<number>(axis + q).fill(0), -1])]);

  let m: string;
  if (idxConst) {
    m = oneHotConst(ctx, toNumbers(idxConst).map((v) => (v < 0 ? v + n : v)), n, dataType);
  } else {
    // Runtime one-hot: (idx == j) or (idx == j - n) for j in 0..n-1 (negative indices count from the end).
    let idx = indices;
    if (ctx.facts(indices).dataType !== DataType.INT64) idx = b.op('Cast', [idx], { to: DataType.INT64 });
    const col = b.op('Reshape', [idx, b.constI64([-1, 1])]);
    const pos = b.op('Equal', [col, b.constI64(range(0, n))]);
    const neg = b.op('Equal', [col, b.constI64(range(-n, 0))]);
    m = b.op('Cast', [b.op('Or', [pos, neg])], { to: dataType });
  }
  g = b.op('MatMul', [g, m]);
  // g is now pre + post + [N]; move the last axis back to `axis`.
  if (q > 0) g = b.op('Transpose', [g], { perm: [...range(0, axis), axis + q, ...range(axis, axis + q)] });
  return [g, undefined];
});
