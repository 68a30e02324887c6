// Gradient of Concat: the output gradient cut back into one piece per input along the axis.
// Static sizes -> one Split; a batch-dependent size -> Slices whose bounds need no batch size
// (one dynamic piece, offsets counted from both ends) or come from runtime Shapes (opset >= 10).
import { attrInt } from '../../attributes.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis } from '../util.js';
import type { GradContext } from '../types.js';

/** Largest int64, the "to the end" bound of Slice. */
const TO_END = Number.MAX_SAFE_INTEGER;

registerRule('Concat', (ctx) => {
  const { node } = ctx;
  const g = ctx.gy[0]!;
  const rank = ctx.facts(node.output[0]!).dims.length;
  const axis = normAxis(attrInt(node, 'axis', 0), rank);
  const sizes = node.input.map((i) => ctx.facts(i).dims[axis]!);
  const pieces = piecesOf(ctx, g, axis, sizes);
  return node.input.map((_, i) => (ctx.needs[i] ? pieces[i] : undefined));
});

function piecesOf(ctx: GradContext, g: string, axis: number, sizes: (number | null)[]): string[] {
  const { node, b } = ctx;
  const dynamic = sizes.filter((s) => s === null).length;
  if (dynamic === 0) {
    if (sizes.length === 1) return [b.op('Identity', [g])];
    return b.split(g, axis, sizes as number[]);
  }
  if (dynamic === 1) {
    // Pieces before the dynamic one start at fixed offsets from the front, pieces after it at
    // fixed offsets from the back, so no bound depends on the batch size.
    const k = sizes.indexOf(null);
    return sizes.map((s, i) => {
      if (i < k) {
        const start = (sizes.slice(0, i) as number[]).reduce((a, c) => a + c, 0);
        return b.slice(g, [start], [start + s!], [axis]);
      }
      const after = (from: number) => (sizes.slice(from) as number[]).reduce((a, c) => a + c, 0);
      if (i === k) {
        const start = (sizes.slice(0, k) as number[]).reduce((a, c) => a + c, 0);
        const tail = after(k + 1);
        return b.slice(g, [start], [tail === 0 ? TO_END : -tail], [axis]);
      }
      const tail = after(i + 1);
      return b.slice(g, [-after(i)], [tail === 0 ? TO_END : -tail], [axis]);
    });
  }
  if (ctx.opset < 10) {
    throw unsupported(
      `Concat node "${node.name || node.output[0]}" joins several inputs whose size along axis ${axis} depends on the batch size; at opset ${ctx.opset} Slice cannot take runtime bounds. Re-export the model at opset >= 10.`,
    );
  }
  // Runtime offsets: size_i = Shape(input_i)[axis] (or a constant), cumulative sums by Add.
  const axesT = b.constI64([axis]);
  let start = b.constI64([0]);
  return node.input.map((inp, i) => {
    const size = sizes[i] === null ? b.op('Gather', [b.op('Shape', [inp]), b.constI64([axis])], { axis: 0 }) : b.constI64([sizes[i]!]);
    const end = b.op('Add', [start, size]);
    const piece = b.op('Slice', [g, start, end, axesT]);
    start = end;
    return piece;
  });
}
