// Gradients of ReduceSum, ReduceMean, ReduceSumSquare, ReduceL2 and ReduceLogSumExp (axes as
// attribute or as input, keepdims, empty axes).
import { attrInt, attrInts } from '../../attributes.js';
import { toNumbers } from '../../tensor.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis, scalarLike } from '../util.js';
import type { GradContext } from '../types.js';

/** The reduced axes (normalized) of a Reduce* node, or all axes. */
export function reducedAxes(ctx: GradContext): number[] {
  const { node } = ctx;
  const rank = ctx.facts(node.input[0]!).dims.length;
  let axes: number[] | undefined = attrInts(node, 'axes');
  if (node.input[1]) {
    const c = ctx.graph.constantValue(node.input[1]);
    if (!c) throw unsupported(`${node.opType} node "${node.name}" takes its axes from a computed tensor; vitpath needs constant axes to differentiate it.`);
    axes = toNumbers(c);
  }
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
}

/** Bring the output gradient back to the input's shape: re-insert dropped axes, then Expand. */
export function expandReduced(ctx: GradContext, g: string, axes: number[]): string {
  const { node } = ctx;
  const x = node.input[0]!;
  let out = g;
  if (attrInt(node, 'keepdims', 1) === 0 && axes.length) out = ctx.b.unsqueeze(out, axes);
  return ctx.b.op('Expand', [out, ctx.b.op('Shape', [x])]);
}

registerRule('ReduceSum', (ctx) => {
  const axes = reducedAxes(ctx);
  return [expandReduced(ctx, ctx.gy[0]!, axes)];
});

registerRule('ReduceMean', (ctx) => {
  const axes = reducedAxes(ctx);
  const x = ctx.node.input[0]!;
  const y = ctx.node.output[0]!;
  const dt = ctx.facts(x).dataType;
  // count = size(x) / size(y), computed at run time so any batch size works.
  const count = ctx.b.op('Div', [ctx.b.op('Cast', [ctx.b.op('Size', [x])], { to: dt }), ctx.b.op('Cast', [ctx.b.op('Size', [y])], { to: dt })]);
  return [expandReduced(ctx, ctx.b.op('Div', [ctx.gy[0]!, count]), axes)];
});

/** The forward output with reduced axes kept (size 1), so it broadcasts against the input. */
function keptOutput(ctx: GradContext, axes: number[]): string {
  const y = ctx.node.output[0]!;
  return attrInt(ctx.node, 'keepdims', 1) === 0 && axes.length ? ctx.b.unsqueeze(y, axes) : y;
}

// y = sum x^2: dx = 2 x g
registerRule('ReduceSumSquare', (ctx) => {
  const axes = reducedAxes(ctx);
  const x = ctx.node.input[0]!;
  if (axes.length === 0) return [ctx.b.op('Mul', [ctx.gy[0]!, ctx.b.op('Mul', [x, scalarLike(ctx, x, 2)])])];
  return [ctx.b.op('Mul', [expandReduced(ctx, ctx.gy[0]!, axes), ctx.b.op('Mul', [x, scalarLike(ctx, x, 2)])])];
});

// y = sqrt(sum x^2): dx = g x / y (undefined where y = 0, as in torch.norm's backward)
registerRule('ReduceL2', (ctx) => {
  const axes = reducedAxes(ctx);
  const x = ctx.node.input[0]!;
  if (axes.length === 0) return [ctx.b.op('Mul', [ctx.gy[0]!, ctx.b.op('Sign', [x])])];
  return [ctx.b.op('Mul', [expandReduced(ctx, ctx.gy[0]!, axes), ctx.b.op('Div', [x, keptOutput(ctx, axes)])])];
});

// y = log sum exp x: dx = g exp(x - y) (the softmax over the reduced axes)
registerRule('ReduceLogSumExp', (ctx) => {
  const axes = reducedAxes(ctx);
  const x = ctx.node.input[0]!;
  if (axes.length === 0) return [ctx.gy[0]];
  return [ctx.b.op('Mul', [expandReduced(ctx, ctx.gy[0]!, axes), ctx.b.op('Exp', [ctx.b.op('Sub', [x, keptOutput(ctx, axes)])])])];
});
