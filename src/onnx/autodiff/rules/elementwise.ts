// Gradients of broadcasting binary arithmetic: Add, Sub, Mul, Div (and Neg, unary).
import { registerRule } from '../registry.js';
import { unbroadcast } from '../util.js';

registerRule('Add', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [ctx.needs[0] ? unbroadcast(ctx, g, a, y) : undefined, ctx.needs[1] ? unbroadcast(ctx, g, b, y) : undefined];
});

registerRule('Sub', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [ctx.needs[0] ? unbroadcast(ctx, g, a, y) : undefined, ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [g]), b, y) : undefined];
});

registerRule('Mul', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  return [
    ctx.needs[0] ? unbroadcast(ctx, ctx.b.op('Mul', [g, b]), a, y) : undefined,
    ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Mul', [g, a]), b, y) : undefined,
  ];
});

// y = a / b: da = g / b, db = -g * y / b
registerRule('Div', (ctx) => {
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const g = ctx.gy[0]!;
  const gOverB = ctx.needs[0] || ctx.needs[1] ? ctx.b.op('Div', [g, b]) : undefined;
  return [
    ctx.needs[0] ? unbroadcast(ctx, gOverB!, a, y) : undefined,
    ctx.needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [ctx.b.op('Mul', [gOverB!, y])]), b, y) : undefined,
  ];
});

registerRule('Neg', (ctx) => [ctx.b.op('Neg', [ctx.gy[0]!])]);
