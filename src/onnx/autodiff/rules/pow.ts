// Gradient of Pow(X, Y) with broadcasting, for base and exponent (exponent type may differ from
// the base's from opset 12). A constant scalar exponent c gets the short form c X^(c-1) (2X for 2).
// d/dY = Z log X is taken only where X > 0 and set to 0 elsewhere (X <= 0: log undefined).
import { DataType } from '../../proto.js';
import { numel, toNumbers } from '../../tensor.js';
import { registerRule } from '../registry.js';
import { scalarLike, unbroadcast } from '../util.js';

registerRule('Pow', (ctx) => {
  const { b, node } = ctx;
  const [x, e] = node.input as [string, string];
  const z = node.output[0]!;
  const g = ctx.gy[0]!;
  const xType = ctx.facts(x).dataType as DataType;
  const out: (string | undefined)[] = [undefined, undefined];
  if (ctx.needs[0]) {
    const c = ctx.graph.constantValue(e);
    let dzdx: string | undefined;
    if (c && numel(c.dims) === 1 && !ctx.needs[1]) {
      const p = toNumbers(c)[0]!;
      if (p === 1) dzdx = undefined; // dz/dx = 1
      else if (p === 2) dzdx = b.op('Mul', [x, scalarLike(ctx, x, 2)]);
      else if (p === 0) dzdx = scalarLike(ctx, x, 0);
      else dzdx = b.op('Mul', [b.op('Pow', [x, scalarLike(ctx, x, p - 1)]), scalarLike(ctx, x, p)]);
    } else {
      const eX = ctx.facts(e).dataType === xType ? e : b.op('Cast', [e], { to: xType });
      dzdx = b.op('Mul', [eX, b.op('Pow', [x, b.op('Sub', [eX, scalarLike(ctx, x, 1)])])]);
    }
    out[0] = unbroadcast(ctx, dzdx ? b.op('Mul', [g, dzdx]) : g, x, z);
  }
  if (ctx.needs[1]) {
    // log of X where X > 0, else log(1) = 0, so the product is 0 where the base is not positive.
    const positive = b.op('Greater', [x, scalarLike(ctx, x, 0)]);
    const logX = b.op('Log', [b.op('Where', [positive, x, scalarLike(ctx, x, 1)])]);
    let de = unbroadcast(ctx, b.op('Mul', [b.op('Mul', [g, z]), logX]), e, z);
    const eType = ctx.facts(e).dataType as DataType;
    if (eType !== xType) de = b.op('Cast', [de], { to: eType });
    out[1] = de;
  }
  return out;
});
