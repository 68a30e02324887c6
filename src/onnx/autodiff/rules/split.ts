// Gradient of Split: the output gradients concatenated back along the axis, with runtime-shaped
// zeros for outputs that get no gradient (split sizes as attribute <13, input >=13, or
// num_outputs >=18 all give the same pieces, so the rule only needs the outputs' shapes).
import { attrInt } from '../../attributes.js';
import { registerRule } from '../registry.js';
import { normAxis, scalarLike } from '../util.js';

registerRule('Split', (ctx) => {
  const { node, b } = ctx;
  const x = node.input[0]!;
  const axis = normAxis(attrInt(node, 'axis', 0), ctx.facts(x).dims.length);
  const parts = node.output.map((o, i) => {
    const g = ctx.gy[i];
    if (g) return g;
    return b.op('Expand', [scalarLike(ctx, x, 0), b.op('Shape', [o])]);
  });
  return [parts.length === 1 ? b.op('Identity', [parts[0]!]) : b.op('Concat', parts, { axis }), undefined];
});
