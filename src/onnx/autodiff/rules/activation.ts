// Gradients of activation ops with closed-form derivatives: Gelu (opset 20, approximate 'none'
// or 'tanh') and LeakyRelu. Decomposed GELU exports (Div/Erf/Add/Mul) need no rule of their own.
import { attrFloat, attrString } from '../../attributes.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { scalarLike } from '../util.js';
import type { GradContext } from '../types.js';
import { maskLike } from './unary.js';

/**
 * Gelu, approximate='none': y = x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2,
 *   dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
 * Gelu, approximate='tanh': y = x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3),
 *   dy/dx = (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2, t = tanh u.
 */
function geluDerivative(ctx: GradContext, x: string): string {
  const b = ctx.b;
  const c = (v: number) => scalarLike(ctx, x, v);
  const approximate = attrString(ctx.node, 'approximate', 'none');
  const x2 = b.op('Mul', [x, x]);
  if (approximate === 'none') {
    const cdf = b.op('Mul', [b.op('Add', [b.op('Erf', [b.op('Mul', [x, c(Math.SQRT1_2)])]), c(1)]), c(0.5)]);
    const pdf = b.op('Mul', [b.op('Exp', [b.op('Mul', [x2, c(-0.5)])]), c(1 / Math.sqrt(2 * Math.PI))]);
    return b.op('Add', [cdf, b.op('Mul', [x, pdf])]);
  }
  if (approximate === 'tanh') {
    const k = Math.sqrt(2 / Math.PI);
    const a = 0.044715;
    const u = b.op('Mul', [b.op('Add', [x, b.op('Mul', [b.op('Mul', [x2, x]), c(a)])]), c(k)]);
    const t = b.op('Tanh', [u]);
    const left = b.op('Mul', [b.op('Add', [t, c(1)]), c(0.5)]);
    const sech2 = b.op('Sub', [c(1), b.op('Mul', [t, t])]);
    const du = b.op('Add', [b.op('Mul', [x2, c(3 * a * k)]), c(k)]);
    const right = b.op('Mul', [b.op('Mul', [x, sech2]), b.op('Mul', [du, c(0.5)])]);
    return b.op('Add', [left, right]);
  }
  throw unsupported(`Gelu node "${ctx.node.name || ctx.node.output[0]}" has approximate="${approximate}"; ONNX defines only "none" and "tanh".`);
}

registerRule('Gelu', (ctx) => [ctx.b.op('Mul', [ctx.gy[0]!, geluDerivative(ctx, ctx.node.input[0]!)])]);

// y = x (x >= 0), alpha x (x < 0): dx = g (alpha + (1 - alpha) [x > 0]); the slope alpha at 0.
registerRule('LeakyRelu', (ctx) => {
  const x = ctx.node.input[0]!;
  const alpha = attrFloat(ctx.node, 'alpha', 0.01);
  const pos = maskLike(ctx, ctx.b.op('Greater', [x, scalarLike(ctx, x, 0)]), x);
  const slope = ctx.b.op('Add', [ctx.b.op('Mul', [pos, scalarLike(ctx, x, 1 - alpha)]), scalarLike(ctx, x, alpha)]);
  return [ctx.b.op('Mul', [ctx.gy[0]!, slope])];
});
