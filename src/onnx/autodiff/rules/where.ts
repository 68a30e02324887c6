// Gradient of Where(cond, x, y): the output gradient goes to x where cond holds and to y
// elsewhere, each summed back over the axes broadcasting added. cond gets none.
import { registerRule } from '../registry.js';
import { scalarLike, unbroadcast } from '../util.js';

registerRule('Where', (ctx) => {
  const [cond, x, y] = ctx.node.input as [string, string, string];
  const out = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  const zero = ctx.needs[1] || ctx.needs[2] ? scalarLike(ctx, out, 0) : '';
  return [
    undefined,
    ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Where', [cond, g, zero]), x, out) : undefined,
    ctx.needs[2] ? unbroadcast(ctx, ctx.b.op('Where', [cond, zero, g]), y, out) : undefined,
  ];
});
