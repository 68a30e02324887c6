// Gradients of broadcasting arithmetic: Add, Sub, Mul, Div, Neg, and the variadic Sum, Mean,
// Max, Min, plus Clip.
import { registerRule } from '../registry.js';
import { attrFloat } from '../../attributes.js';
import { scalarLike, unbroadcast } from '../util.js';
import type { GradContext } from '../types.js';

registerRule('Add', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [ctx.needs[0] ? unbroadcast(ctx, g, a, y) : undefined, ctx.needs[1] ? unbroadcast(ctx, g, b, y) : undefined];
});

registerRule('Sub', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [ctx.needs[0] ? unbroadcast(ctx, g, a, y) : undefined, ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [g]), b, y) : undefined];
});

registerRule('Mul', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [
    ctx.needs[0] ? unbroadcast(ctx, ctx.b.op('Mul', [g, b]), a, y) : undefined,
    ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Mul', [g, a]), b, y) : undefined,
  ];
});

// y = a / b: da = g / b, db = -g * y / b
registerRule('Div', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  const gOverB = ctx.needs[0] || ctx.needs[1] ? ctx.b.op('Div', [g, b]) : undefined;
  return [
    ctx.needs[0] ? unbroadcast(ctx, gOverB!, a, y) : undefined,
    ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [ctx.b.op('Mul', [gOverB!, y])]), b, y) : undefined,
  ];
});

registerRule('Neg', (ctx) => [ctx.b.op('Neg', [ctx.gy[0]!])]);

// y = x_0 + ... + x_{n-1} (broadcasting): dx_i = unbroadcast(g)
registerRule('Sum', (ctx) => ctx.node.input.map((x, i) => (ctx.needs[i] ? unbroadcast(ctx, ctx.gy[0]!, x, ctx.node.output[0]!) : undefined)));

// y = (x_0 + ... + x_{n-1}) / n: dx_i = unbroadcast(g / n)
registerRule('Mean', (ctx) => {
  const y = ctx.node.output[0]!;
  const gn = ctx.b.op('Div', [ctx.gy[0]!, scalarLike(ctx, y, ctx.node.input.length)]);
  return ctx.node.input.map((x, i) => (ctx.needs[i] ? unbroadcast(ctx, gn, x, y) : undefined));
});

/**
 * Max/Min of n broadcast inputs: the gradient goes to the inputs equal to y at each position,
 * split evenly among ties (torch.maximum gives each of two tied inputs half). x_i == y is tested
 * as not(x_i < y) for Max (not(x_i > y) for Min), valid at every opset.
 */
function extremumRule(notEqual: 'Less' | 'Greater') {
  return (ctx: GradContext) => {
    const { b, node } = ctx;
    const y = node.output[0]!;
    const g = ctx.gy[0]!;
    if (node.input.length === 1) return [g];
    const one = scalarLike(ctx, y, 1);
    const dt = ctx.facts(y).dataType;
    const masks = node.input.map((x) => b.op('Sub', [one, b.op('Cast', [b.op(notEqual, [x, y])], { to: dt })]));
    const share = b.op('Div', [g, b.op('Sum', masks)]);
    return node.input.map((x, i) => (ctx.needs[i] ? unbroadcast(ctx, b.op('Mul', [share, masks[i]!]), x, y) : undefined));
  };
}
registerRule('Max', extremumRule('Less'));
registerRule('Min', extremumRule('Greater'));

/**
 * Clip(x, min, max) (bounds as attributes before opset 11, optional inputs after): the gradient
 * passes where min <= x <= max (torch.clamp's convention at the bounds); a tensor bound gets the
 * gradient of the positions it clipped.
 */
registerRule('Clip', (ctx) => {
  const { b, node } = ctx;
  const x = node.input[0]!;
  const y = node.output[0]!;
  const g = ctx.gy[0]!;
  const dt = ctx.facts(x).dataType;
  const bound = (k: 1 | 2, attr: 'min' | 'max'): string | undefined => {
    if (ctx.opset < 11) {
      const v = attrFloat(node, attr);
      return v === undefined ? undefined : scalarLike(ctx, x, v);
    }
    return node.input[k] || undefined;
  };
  const lo = bound(1, 'min');
  const hi = bound(2, 'max');
  const mask = (cond: string) => b.op('Cast', [cond], { to: dt });
  const below = lo ? mask(b.op('Less', [x, lo])) : undefined;
  const above = hi ? mask(b.op('Greater', [x, hi])) : undefined;
  const outside = below && above ? b.op('Add', [below, above]) : (below ?? above);
  const out: (string | undefined)[] = node.input.map(() => undefined);
  if (ctx.needs[0]) out[0] = outside ? b.op('Mul', [g, b.op('Sub', [scalarLike(ctx, x, 1), outside])]) : g;
  if (ctx.opset >= 11) {
    if (ctx.needs[1] && below) out[1] = unbroadcast(ctx, b.op('Mul', [g, below]), node.input[1]!, y);
    if (ctx.needs[2] && above) out[2] = unbroadcast(ctx, b.op('Mul', [g, above]), node.input[2]!, y);
  }
  return out;
});
