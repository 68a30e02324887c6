// Gradient of Slice (starts/ends as attributes before opset 10, as constant inputs from 10,
// with axes and steps): the output gradient put back where the slice took it from. Unit steps
// are a zero-pad; other steps (negative included) a constant one-hot MatMul along that axis.
import { attrInts } from '../../attributes.js';
import { toNumbers } from '../../tensor.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import { normAxis } from '../util.js';
import type { GradContext } from '../types.js';
import { mapAxis, oneHotConst } from './gather.js';
import { sliceRange } from '../../shapes/kernels.js';

/** Bounds at or beyond this mean "to the end" for an axis whose size is not fixed. */
const OPEN_END = 2 ** 31 - 1;

interface SliceSpec {
  axes: number[];
  starts: number[];
  ends: number[];
  steps: number[];
}

function sliceSpec(ctx: GradContext): SliceSpec {
  const { node } = ctx;
  const rank = ctx.facts(node.input[0]!).dims.length;
  const where = `Slice node "${node.name || node.output[0]}"`;
  let starts: number[];
  let ends: number[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(node, 'starts') ?? [];
    ends = attrInts(node, 'ends') ?? [];
    axes = attrInts(node, 'axes');
  } else {
    const constIn = (i: number, what: string): number[] | undefined => {
      const name = node.input[i];
      if (!name) return undefined;
      const c = ctx.graph.constantValue(name);
      if (!c) throw unsupported(`${where} takes its ${what} from a computed tensor; vitpath needs constant slice bounds to differentiate it.`);
      return toNumbers(c);
    };
    starts = constIn(1, 'starts')!;
    ends = constIn(2, 'ends')!;
    axes = constIn(3, 'axes');
    steps = constIn(4, 'steps');
  }
  return {
    starts,
    ends,
    axes: (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank)),
    steps: steps ?? starts.map(() => 1),
  };
}

/** The indices a slice selects along an axis of size d (ONNX/numpy clamping rules): the shape evaluator's own. */
export { sliceRange as sliceIndices };

registerRule('Slice', (ctx) => {
  const { node, b } = ctx;
  if (!ctx.needs[0]) return node.input.map(() => undefined);
  const x = node.input[0]!;
  const dims = ctx.facts(x).dims;
  const rank = dims.length;
  const dataType = ctx.facts(node.output[0]!).dataType;
  const spec = sliceSpec(ctx);
  const pads = new Array<number>(2 * rank).fill(0);
  let g = ctx.gy[0]!;
  spec.axes.forEach((axis, i) => {
    const start = spec.starts[i]!;
    const end = spec.ends[i]!;
    const step = spec.steps[i]!;
    if (step === 0) throw unsupported(`Slice node "${node.name || node.output[0]}" has a zero step.`);
    const d = dims[axis];
    if (d === null || d === undefined) {
      // Batch-dependent axis: only slices whose placement is independent of the size.
      if (step === 1 && start >= 0 && end >= OPEN_END) {
        pads[axis] = start;
        return;
      }
      throw unsupported(
        `Slice node "${node.name || node.output[0]}" slices axis ${axis} [${start}:${end}:${step}], whose size depends on the batch size; vitpath can differentiate only [k:] slices of such an axis.`,
      );
    }
    const idx = sliceRange(start, end, step, d);
    if (step === 1 && idx.length > 0) {
      pads[axis] = idx[0]!;
      pads[rank + axis] = d - 1 - idx[idx.length - 1]!;
    } else {
      g = mapAxis(ctx, g, axis, rank, oneHotConst(ctx, idx, d, dataType));
    }
  });
  if (pads.some((p) => p !== 0)) g = b.padZeros(g, pads);
  else if (g === ctx.gy[0]) g = b.op('Identity', [g]);
  return [g, ...node.input.slice(1).map(() => undefined)];
});
