// Gradients of ReduceSum and ReduceMean (axes as attribute or as input, keepdims, empty axes).
import { attrInt, attrInts } from '../../attributes.js';
import { toNumbers } from '../../tensor.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis } from '../util.js';
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
