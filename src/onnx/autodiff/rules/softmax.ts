// Gradients of Softmax and LogSoftmax. Before opset 13 both coerce the input to 2-D at `axis`
// (default 1), so they normalise over all axes >= axis together; from opset 13 over one axis
// (default -1). The backward sums over exactly those axes.
import { attrInt } from '../../attributes.js';
import { registerRule } from '../registry.js';
import { normAxis } from '../util.js';
import type { GradContext } from '../types.js';

/** The axes a Softmax/LogSoftmax/Hardmax node normalises over (normalized, ascending). */
export function softmaxAxes(node: GradContext['node'], opset: number, rank: number): number[] {
  if (opset >= 13) return [normAxis(attrInt(node, 'axis', -1), rank)];
  const axis = normAxis(attrInt(node, 'axis', 1), rank);
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

// y = softmax(x): dx = y (g - sum(g y))
registerRule('Softmax', (ctx) => {
  const x = ctx.node.input[0]!;
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  const axes = softmaxAxes(ctx.node, ctx.opset, ctx.facts(x).dims.length);
  const dot = ctx.b.reduceSum(ctx.b.op('Mul', [g, y]), axes, true);
  return [ctx.b.op('Mul', [y, ctx.b.op('Sub', [g, dot])])];
});

// y = log softmax(x): dx = g - exp(y) sum(g)
registerRule('LogSoftmax', (ctx) => {
  const x = ctx.node.input[0]!;
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  const axes = softmaxAxes(ctx.node, ctx.opset, ctx.facts(x).dims.length);
  const sum = ctx.b.reduceSum(g, axes, true);
  return [ctx.b.op('Sub', [g, ctx.b.op('Mul', [ctx.b.op('Exp', [y]), sum])])];
});
