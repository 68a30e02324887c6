// Gradients of ops that pass values through unchanged: Identity, and Cast between float types.
import { registerRule } from '../registry.js';

registerRule('Identity', (ctx) => [ctx.gy[0]]);

// Cast: the gradient flows back cast to the input's float type.
registerRule('Cast', (ctx) => [ctx.b.op('Cast', [ctx.gy[0]!], { to: ctx.facts(ctx.node.input[0]!).dataType })]);
