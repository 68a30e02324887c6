// Gradients of ops that only re-view their input's elements (Reshape, Flatten), and the
// shape computations (Shape, Size, ConstantOfShape, EyeLike) that carry no gradient at all.
// (Range has its own rule: with float start/delta its values depend on them.)
import { registerRule } from '../registry.js';
import { reshapeLike } from '../util.js';

// Reshape/Flatten: same elements in the same order, so the gradient is re-viewed with the
// input's runtime shape (never a probe constant, so any batch size works). The target
// shape input of Reshape is integer-valued and gets no gradient.
registerRule(['Reshape', 'Flatten'], (ctx) => [reshapeLike(ctx, ctx.gy[0]!, ctx.node.input[0]!)]);

// Outputs that depend on the input's shape or on nothing but attributes, and comparisons,
// logic and index results (piecewise constant): zero gradient. The engine never asks for
// non-float outputs; registering them keeps missingRules() from listing shape arithmetic.
registerRule(
  ['Shape', 'Size', 'ConstantOfShape', 'EyeLike', 'RandomNormalLike', 'RandomUniformLike', 'NonZero', 'ArgMax', 'ArgMin'],
  (ctx) => ctx.node.input.map(() => undefined),
);
registerRule(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf'], (ctx) => ctx.node.input.map(() => undefined));
