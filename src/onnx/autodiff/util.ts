// Helpers shared by gradient rules: undoing broadcasting, zeros, runtime shapes.
import type { GradContext } from './types.js';

/**
 * Sum `grad` (shaped like the broadcast output `outName`) back to the shape of `inName`:
 * ReduceSum over leading axes the input lacks (dropped) and over axes where the input
 * has size 1 but the output does not (kept). Uses probe facts, so it is batch-size safe.
 */
export function unbroadcast(ctx: GradContext, grad: string, inName: string, outName: string): string {
  return unbroadcastDims(ctx, grad, ctx.facts(inName).dims, ctx.facts(outName).dims);
}

/** As unbroadcast, with explicit dims (null = batch-dependent) for the input and the gradient. */
export function unbroadcastDims(ctx: GradContext, grad: string, inDims: readonly (number | null)[], outDims: readonly (number | null)[]): string {
  const lead = outDims.length - inDims.length;
  let g = grad;
  const keepAxes: number[] = [];
  for (let i = 0; i < inDims.length; i++) {
    const di = inDims[i];
    const dout = outDims[i + lead];
    if (di === 1 && dout !== 1) keepAxes.push(i + lead);
  }
  if (keepAxes.length) g = ctx.b.reduceSum(g, keepAxes, true);
  if (lead > 0) g = ctx.b.reduceSum(g, Array.from({ length: lead }, (_, i) => i), false);
  return g;
}

/** The runtime shape of a tensor, as an int64 1-D tensor. */
export function shapeOf(ctx: GradContext, name: string): string {
  return ctx.b.op('Shape', [name]);
}

/**
 * Reshape `grad` to the runtime shape of `like`. A 0 in Reshape's shape means "copy that dim" unless
 * allowzero=1 (opset 14), so from opset 14 the shape is taken literally; before, an empty `like`
 * (a static 0 dim) gets an empty gradient by Expand of a zero instead.
 */
export function reshapeLike(ctx: GradContext, grad: string, like: string): string {
  if (ctx.opset >= 14) return ctx.b.op('Reshape', [grad, shapeOf(ctx, like)], { allowzero: 1 });
  if (ctx.facts(like).dims.includes(0)) return ctx.b.op('Expand', [scalarLike(ctx, like, 0), shapeOf(ctx, like)]);
  return ctx.b.op('Reshape', [grad, shapeOf(ctx, like)]);
}

/** A scalar constant of the element type of `like` (float32, float64 or float16). */
export function scalarLike(ctx: GradContext, like: string, value: number): string {
  return ctx.b.constFloat(ctx.facts(like).dataType, [value], []);
}

/** Normalize a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Broadcast two dim lists numpy-style (null = batch-dependent, wins over 1). */
export function broadcastDims(a: readonly (number | null)[], b: readonly (number | null)[]): (number | null)[] {
  const n = Math.max(a.length, b.length);
  const out: (number | null)[] = [];
  for (let i = 0; i < n; i++) {
    const x = i - (n - a.length) >= 0 ? a[i - (n - a.length)]! : 1;
    const y = i - (n - b.length) >= 0 ? b[i - (n - b.length)]! : 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}
