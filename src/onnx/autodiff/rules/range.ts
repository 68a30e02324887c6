// Gradient of Range (opset 11) with float start/delta: y[i] = start + i delta for i < n, so
// dstart = sum(g) and ddelta = sum(g i). n = ceil((limit - start) / delta) is piecewise constant,
// so limit gets no gradient (nor do start/delta through n: a size jump has no derivative).
import { registerRule } from '../registry.js';
import { reshapeLike, scalarLike } from '../util.js';

registerRule('Range', (ctx) => {
  const { b, node } = ctx;
  const y = node.output[0]!;
  const g = ctx.gy[0]!;
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  // start/delta are scalars; a [1]-shaped one (tolerated by runtimes) gets its gradient re-viewed.
  const like = (t: string, k: number) => (ctx.facts(node.input[k]!).dims.length === 0 ? t : reshapeLike(ctx, t, node.input[k]!));
  if (ctx.needs[0]) out[0] = like(b.reduceSum(g, [0], false), 0);
  if (ctx.needs[2]) {
    // i = 0, 1, ..., n-1 in y's type, n read from y at run time.
    const n = b.op('Cast', [b.op('Size', [y])], { to: ctx.facts(y).dataType });
    const i = b.op('Range', [scalarLike(ctx, y, 0), n, scalarLike(ctx, y, 1)]);
    out[2] = like(b.reduceSum(b.op('Mul', [g, i]), [0], false), 2);
  }
  return out;
});
