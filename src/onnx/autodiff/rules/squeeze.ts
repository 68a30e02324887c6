// Gradients of Squeeze and Unsqueeze (axes as attribute before opset 13, as input from 13):
// both only insert or drop size-1 axes, so the gradient is re-viewed with the input's runtime
// shape. This needs neither the axes nor any static dim, so it is valid at every opset.
import { registerRule } from '../registry.js';
import { reshapeLike } from '../util.js';

registerRule(['Squeeze', 'Unsqueeze'], (ctx) => [reshapeLike(ctx, ctx.gy[0]!, ctx.node.input[0]!), undefined]);
