// Gradient of MatMul with numpy semantics: batched operands broadcast, 1-D operands promoted.
import { registerRule } from '../registry.js';
import { broadcastDims, unbroadcastDims } from '../util.js';
import type { GradContext } from '../types.js';

/** Transpose the last two axes of a tensor of the given rank. */
function swapLast(ctx: GradContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return ctx.b.op('Transpose', [x], { perm });
}

registerRule('MatMul', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  let g = ctx.gy[0]!;
  const aDims = ctx.facts(a).dims;
  const bDims = ctx.facts(b).dims;
  // Promote 1-D operands as MatMul does: a [K] -> [1,K]; b [K] -> [K,1]. The output lacks that axis.
  let A = a;
  let B = b;
  let aD = aDims;
  let bD = bDims;
  // The output lacks the promoted axes; put them back into the incoming gradient.
  let gRank = ctx.facts(ctx.node.output[0]!).dims.length;
  if (aDims.length === 1) {
    A = ctx.b.unsqueeze(a, [0]);
    aD = [1, aDims[0]!];
    g = ctx.b.unsqueeze(g, [Math.max(gRank - 1, 0)]);
    gRank++;
  }
  if (bDims.length === 1) {
    B = ctx.b.unsqueeze(b, [1]);
    bD = [bDims[0]!, 1];
    g = ctx.b.unsqueeze(g, [gRank]);
  }
  const batch = broadcastDims(aD.slice(0, -2), bD.slice(0, -2));
  const out: (string | undefined)[] = [undefined, undefined];
  if (ctx.needs[0]) {
    let ga = ctx.b.op('MatMul', [g, swapLast(ctx, B, bD.length)]);
    ga = unbroadcastDims(ctx, ga, aD, [...batch, aD[aD.length - 2]!, aD[aD.length - 1]!]);
    if (aDims.length === 1) ga = ctx.b.squeeze(ga, [0]);
    out[0] = ga;
  }
  if (ctx.needs[1]) {
    let gb = ctx.b.op('MatMul', [swapLast(ctx, A, aD.length), g]);
    gb = unbroadcastDims(ctx, gb, bD, [...batch, bD[bD.length - 2]!, bD[bD.length - 1]!]);
    if (bDims.length === 1) gb = ctx.b.squeeze(gb, [1]);
    out[1] = gb;
  }
  return out;
});
