// Gradient of Expand: the output gradient summed back over the broadcast axes.
import { registerRule } from '../registry.js';
import { unbroadcast } from '../util.js';

registerRule('Expand', (ctx) => [unbroadcast(ctx, ctx.gy[0]!, ctx.node.input[0]!, ctx.node.output[0]!), undefined]);
