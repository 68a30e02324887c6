// Gradients of ReduceMax and ReduceMin (axes as attribute or, from opset 18, as input).
// The gradient goes to the positions equal to the extremum; ties share it evenly, as
// torch.amax/amin do (torch.max(dim) instead picks one index). Equality is tested as
// not(x < max) / not(x > min), which is valid at every opset (float Equal needs opset 11).
import { attrInt } from '../../attributes.js';
import { registerRule } from '../registry.js';
import { scalarLike } from '../util.js';
import type { GradContext } from '../types.js';
import { reducedAxes } from './reduce.js';
import { maskLike } from './unary.js';

function extremumRule(strictlyInside: 'Less' | 'Greater') {
  return (ctx: GradContext) => {
    const { b, node } = ctx;
    const x = node.input[0]!;
    const axes = reducedAxes(ctx);
    if (axes.length === 0) return [ctx.gy[0]]; // noop_with_empty_axes: identity
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const y = keep ? node.output[0]! : b.unsqueeze(node.output[0]!, axes);
    const g = keep ? ctx.gy[0]! : b.unsqueeze(ctx.gy[0]!, axes);
    const mask = b.op('Sub', [scalarLike(ctx, x, 1), maskLike(ctx, b.op(strictlyInside, [x, y]), x)]);
    const count = b.reduceSum(mask, axes, true);
    return [b.op('Mul', [mask, b.op('Div', [g, count])])];
  };
}

registerRule('ReduceMax', extremumRule('Less'));
registerRule('ReduceMin', extremumRule('Greater'));
