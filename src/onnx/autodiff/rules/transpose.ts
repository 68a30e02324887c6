// Gradient of Transpose: the output gradient transposed back by the inverse permutation.
import { attrInts } from '../../attributes.js';
import { registerRule } from '../registry.js';

registerRule('Transpose', (ctx) => {
  const rank = ctx.facts(ctx.node.input[0]!).dims.length;
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p < 0 ? p + rank : p] = i));
  return [ctx.b.op('Transpose', [ctx.gy[0]!], { perm: inv })];
});
