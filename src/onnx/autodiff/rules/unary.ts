// Gradients of pointwise unary math: Sqrt, Reciprocal, Exp, Log, Tanh, Sigmoid, Relu, Erf, Abs.
// Each rule reuses the forward output where that is cheaper (Exp, Tanh, Sigmoid, Sqrt, Reciprocal).
import { DataType } from '../../proto.js';
import { registerRule } from '../registry.js';
import { scalarLike } from '../util.js';
import type { GradContext } from '../types.js';

const x0 = (ctx: GradContext) => ctx.node.input[0]!;
const y0 = (ctx: GradContext) => ctx.node.output[0]!;
const g0 = (ctx: GradContext) => ctx.gy[0]!;

/** A 0/1 mask of `cond` (a bool tensor) in the element type of `like`. */
export function maskLike(ctx: GradContext, cond: string, like: string): string {
  return ctx.b.op('Cast', [cond], { to: ctx.facts(like).dataType as DataType });
}

// y = sqrt(x): dx = g / (2 y)
registerRule('Sqrt', (ctx) => [ctx.b.op('Div', [ctx.b.op('Mul', [g0(ctx), scalarLike(ctx, y0(ctx), 0.5)]), y0(ctx)])]);

// y = 1/x: dx = -g y^2
registerRule('Reciprocal', (ctx) => {
  const y = y0(ctx);
  return [ctx.b.op('Neg', [ctx.b.op('Mul', [g0(ctx), ctx.b.op('Mul', [y, y])])])];
});

// y = exp(x): dx = g y
registerRule('Exp', (ctx) => [ctx.b.op('Mul', [g0(ctx), y0(ctx)])]);

// y = log(x): dx = g / x
registerRule('Log', (ctx) => [ctx.b.op('Div', [g0(ctx), x0(ctx)])]);

// y = tanh(x): dx = g (1 - y^2)
registerRule('Tanh', (ctx) => {
  const y = y0(ctx);
  const oneMinus = ctx.b.op('Sub', [scalarLike(ctx, y, 1), ctx.b.op('Mul', [y, y])]);
  return [ctx.b.op('Mul', [g0(ctx), oneMinus])];
});

// y = sigmoid(x): dx = g y (1 - y)
registerRule('Sigmoid', (ctx) => {
  const y = y0(ctx);
  const d = ctx.b.op('Mul', [y, ctx.b.op('Sub', [scalarLike(ctx, y, 1), y])]);
  return [ctx.b.op('Mul', [g0(ctx), d])];
});

// y = max(x, 0): dx = g [x > 0] (the subgradient at 0 is taken as 0, as torch does).
registerRule('Relu', (ctx) => {
  const x = x0(ctx);
  const mask = maskLike(ctx, ctx.b.op('Greater', [x, scalarLike(ctx, x, 0)]), x);
  return [ctx.b.op('Mul', [g0(ctx), mask])];
});

// y = erf(x): dx = g (2 / sqrt(pi)) exp(-x^2)
registerRule('Erf', (ctx) => {
  const x = x0(ctx);
  const e = ctx.b.op('Exp', [ctx.b.op('Neg', [ctx.b.op('Mul', [x, x])])]);
  return [ctx.b.op('Mul', [g0(ctx), ctx.b.op('Mul', [e, scalarLike(ctx, x, 2 / Math.sqrt(Math.PI))])])];
});

// y = |x|: dx = g sign(x) (0 at 0, as torch does).
registerRule('Abs', (ctx) => [ctx.b.op('Mul', [g0(ctx), ctx.b.op('Sign', [x0(ctx)])])]);
