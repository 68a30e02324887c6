// Gradient of Gemm: Y = alpha op(A) op(B) + beta C, op = optional transpose, C unidirectionally
// broadcast to [M, N]. The input gradients are themselves Gemms with swapped transposes.
import { attrFloat, attrInt } from '../../attributes.js';
import { registerRule } from '../registry.js';
import { scalarLike, unbroadcastDims } from '../util.js';
import type { GradContext } from '../types.js';

/** alpha op(P) op(Q) as one Gemm node (C is optional from opset 11; a zero scalar before). */
function gemm(ctx: GradContext, p: string, q: string, transA: number, transB: number, alpha: number, like: string): string {
  const ins = [p, q];
  if (ctx.opset < 11) ins.push(ctx.b.constFloat(ctx.facts(like).dataType, [0], [1], 'gemm_zero'));
  return ctx.b.op('Gemm', ins, { transA: transA || undefined, transB: transB || undefined, alpha: alpha === 1 ? undefined : { float: alpha } });
}

registerRule('Gemm', (ctx) => {
  const { node } = ctx;
  const [a, b, c] = [node.input[0]!, node.input[1]!, node.input[2]];
  const y = node.output[0]!;
  const g = ctx.gy[0]!;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const out: (string | undefined)[] = node.input.map(() => undefined);
  // op(A) [M,K], op(B) [K,N], G [M,N]:  d op(A) = G op(B)^T,  d op(B) = op(A)^T G.
  if (ctx.needs[0]) out[0] = tA ? gemm(ctx, b, g, tB, 1, alpha, y) : gemm(ctx, g, b, 0, tB ? 0 : 1, alpha, y);
  if (ctx.needs[1]) out[1] = tB ? gemm(ctx, g, a, 1, tA, alpha, y) : gemm(ctx, a, g, tA ? 0 : 1, 0, alpha, y);
  if (c && ctx.needs[2]) {
    let gc = unbroadcastDims(ctx, g, ctx.facts(c).dims, ctx.facts(y).dims);
    if (beta !== 1) gc = ctx.b.op('Mul', [gc, scalarLike(ctx, c, beta)]);
    out[2] = gc;
  }
  return out;
});
