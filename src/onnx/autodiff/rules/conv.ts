// Gradient of Conv (group 1, dilation 1, any strides and pads, 1-3 spatial axes): input and
// weight gradients by ConvTranspose / a role-swapped Conv, the bias by a sum. The ViT patch
// embedding (kernel == stride, no padding, 2-D) uses an exact reshape/transpose/MatMul form.
import { attrInt, attrInts, attrString } from '../../attributes.js';
import { unsupported } from '../../../errors.js';
import { registerRule } from '../registry.js';
import type { GradContext } from '../types.js';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

interface ConvGeom {
  spatial: number[];
  kernel: number[];
  strides: number[];
  /** [begin_0.., end_0..] */
  pads: number[];
  out: number[];
  m: number;
  c: number;
}

function geometry(ctx: GradContext): ConvGeom {
  const { node } = ctx;
  const name = `Conv node "${node.name || node.output[0]}"`;
  const [x, w] = node.input as [string, string];
  const xd = ctx.facts(x).dims;
  const wd = ctx.facts(w).dims;
  const yd = ctx.facts(node.output[0]!).dims;
  const r = xd.length - 2;
  const group = attrInt(node, 'group', 1);
  if (group !== 1) throw unsupported(`${name} has group=${group}; vitpath differentiates only group=1 convolutions (ViT patch embeddings).`);
  const dil = attrInts(node, 'dilations') ?? new Array<number>(r).fill(1);
  if (dil.some((d) => d !== 1)) throw unsupported(`${name} has dilations [${dil.join(',')}]; vitpath differentiates only dilation 1.`);
  const spatial = xd.slice(2);
  const kernel = wd.slice(2);
  const out = yd.slice(2);
  if ([...spatial, ...kernel, ...out, wd[0], wd[1]].some((d) => d === null || d === undefined)) {
    throw unsupported(`${name} has spatial or channel sizes that depend on the batch size; vitpath needs them fixed to differentiate it.`);
  }
  const strides = attrInts(node, 'strides') ?? new Array<number>(r).fill(1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
  if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const total = Math.max(0, (out[i]! - 1) * strides[i]! + kernel[i]! - spatial[i]!);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[r + i] = total - pads[i]!;
    }
  } else if (autoPad !== 'NOTSET') throw unsupported(`${name} has auto_pad=${autoPad}, which vitpath does not know.`);
  return { spatial: spatial as number[], kernel: kernel as number[], strides, pads, out: out as number[], m: wd[0]!, c: wd[1]! };
}

registerRule('Conv', (ctx) => {
  const { node, b } = ctx;
  const [x, w, bias] = node.input as [string, string, string | undefined];
  const gy = ctx.gy[0]!;
  const geo = geometry(ctx);
  const r = geo.spatial.length;
  const patch = r === 2 && geo.pads.every((p) => p === 0) && geo.kernel.every((k, i) => k === geo.strides[i]);
  const grads: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needs[0]) grads[0] = patch ? patchInputGrad(ctx, gy, w, geo) : convInputGrad(ctx, gy, w, geo);
  if (ctx.needs[1]) grads[1] = patch ? patchWeightGrad(ctx, gy, x, geo) : convWeightGrad(ctx, gy, x, geo);
  if (bias && ctx.needs[2]) grads[2] = b.reduceSum(gy, [0, ...range(2, 2 + r)], false);
  return grads;
});

/** dX = ConvTranspose(gy, W) with output_padding restoring rows/cols the strides skipped. */
function convInputGrad(ctx: GradContext, gy: string, w: string, g: ConvGeom): string {
  const r = g.spatial.length;
  const outputPadding = g.spatial.map((h, i) => h - ((g.out[i]! - 1) * g.strides[i]! + g.kernel[i]! - g.pads[i]! - g.pads[r + i]!));
  return ctx.b.op('ConvTranspose', [gy, w], {
    kernel_shape: g.kernel,
    strides: g.strides,
    pads: g.pads,
    output_padding: outputPadding.some((p) => p !== 0) ? outputPadding : undefined,
  });
}

/**
 * dW[m,c,k] = sum_{n,o} gy[n,m,o] Xpad[n,c,o*s+k]: a Conv of X^T [C,N,..] with gy^T [M,N,..] as
 * the kernel, dilated by the stride, cut to the kernel size, transposed to [M,C,..].
 */
function convWeightGrad(ctx: GradContext, gy: string, x: string, g: ConvGeom): string {
  const { b } = ctx;
  const r = g.spatial.length;
  const swap = [1, 0, ...range(2, 2 + r)];
  let dw = b.op('Conv', [b.op('Transpose', [x], { perm: swap }), b.op('Transpose', [gy], { perm: swap })], {
    dilations: g.strides,
    strides: new Array<number>(r).fill(1),
    pads: g.pads,
    kernel_shape: g.out,
  });
  const full = g.spatial.map((h, i) => h + g.pads[i]! + g.pads[r + i]! - (g.out[i]! - 1) * g.strides[i]!);
  if (full.some((f, i) => f !== g.kernel[i])) dw = b.slice(dw, new Array<number>(r).fill(0), g.kernel, range(2, 2 + r));
  return b.op('Transpose', [dw], { perm: swap });
}

/** Patch embedding, input: gy [N,M,oh,ow] -> patches [N,oh,ow,C*kh*kw] by MatMul with W, then un-patchify. */
function patchInputGrad(ctx: GradContext, gy: string, w: string, g: ConvGeom): string {
  const { b } = ctx;
  const [oh, ow] = g.out as [number, number];
  const [kh, kw] = g.kernel as [number, number];
  const t = b.op('Transpose', [gy], { perm: [0, 2, 3, 1] });
  const wm = b.op('Reshape', [w, b.constI64([g.m, g.c * kh * kw])]);
  let p = b.op('MatMul', [t, wm]);
  p = b.op('Reshape', [p, b.constI64([0, oh, ow, g.c, kh, kw])]);
  p = b.op('Transpose', [p], { perm: [0, 3, 1, 4, 2, 5] });
  p = b.op('Reshape', [p, b.constI64([0, g.c, oh * kh, ow * kw])]);
  const [h, wd] = g.spatial as [number, number];
  if (h !== oh * kh || wd !== ow * kw) p = b.padZeros(p, [0, 0, 0, 0, 0, 0, h - oh * kh, wd - ow * kw]);
  return p;
}

/** Patch embedding, weight: dW = gy^T [M, N*oh*ow] x patches(X) [N*oh*ow, C*kh*kw]. */
function patchWeightGrad(ctx: GradContext, gy: string, x: string, g: ConvGeom): string {
  const { b } = ctx;
  const [oh, ow] = g.out as [number, number];
  const [kh, kw] = g.kernel as [number, number];
  const [h, wd] = g.spatial as [number, number];
  let xs = x;
  if (h !== oh * kh || wd !== ow * kw) xs = b.slice(x, [0, 0], [oh * kh, ow * kw], [2, 3]);
  let p = b.op('Reshape', [xs, b.constI64([0, g.c, oh, kh, ow, kw])]);
  p = b.op('Transpose', [p], { perm: [0, 2, 4, 1, 3, 5] });
  p = b.op('Reshape', [p, b.constI64([-1, g.c * kh * kw])]);
  const gm = b.op('Reshape', [b.op('Transpose', [gy], { perm: [1, 0, 2, 3] }), b.constI64([g.m, -1])]);
  const dw = b.op('MatMul', [gm, p]);
  return b.op('Reshape', [dw, b.constI64([g.m, g.c, kh, kw])]);
}
