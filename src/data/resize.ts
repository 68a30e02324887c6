// Resizing and cropping exactly as torchvision does on PIL images: a port of Pillow's ImagingResample
// (separable antialiased filters, 8-bit fixed point), PIL's nearest scale, Resize(int) and CenterCrop.
import { usageError } from '../errors.js';

/** An 8-bit image in HWC order (channels interleaved), like PIL's "L" (1) or "RGB" (3). */
export interface Image8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export type Interpolation = 'nearest' | 'bilinear' | 'bicubic';
export const INTERPOLATIONS: Interpolation[] = ['nearest', 'bilinear', 'bicubic'];

interface Filter {
  fn: (x: number) => number;
  support: number;
}

// Pillow Resample.c: bilinear_filter and bicubic_filter (a = -0.5), same operation order.
const BILINEAR: Filter = {
  support: 1.0,
  fn: (x) => {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
  },
};

const A = -0.5;
const BICUBIC: Filter = {
  support: 2.0,
  fn: (x) => {
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * A;
    return 0.0;
  },
};

/** Pillow: 8 bits for the result, two for overflow and sign (32 - 8 - 2). */
export const PRECISION_BITS = 32 - 8 - 2;

function clip8(v: number): number {
  // Pillow's clip8 looks up (in >> PRECISION_BITS) in a table that clamps to 0..255.
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/** Pillow's precompute_coeffs followed by normalize_coeffs_8bpc: integer weights per output pixel. */
export function precomputeCoeffs(
  inSize: number,
  in0: number,
  in1: number,
  outSize: number,
  filter: Filter,
): { ksize: number; bounds: Int32Array; kk: Int32Array } {
  // in0/in1 are C floats in Pillow; their difference is a float too.
  const fin0 = Math.fround(in0);
  const fin1 = Math.fround(in1);
  const scale = Math.fround(fin1 - fin0) / outSize;
  let filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const pre = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  for (let xx = 0; xx < outSize; xx++) {
    const center = fin0 + (xx + 0.5) * scale;
    let ww = 0.0;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      pre[base + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      if (ww !== 0.0) pre[base + x] = pre[base + x]! / ww;
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const kk = new Int32Array(pre.length);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < pre.length; i++) {
    const p = pre[i]!;
    kk[i] = p < 0 ? Math.trunc(-0.5 + p * one) : Math.trunc(0.5 + p * one);
  }
  return { ksize, bounds, kk };
}

function horizontalPass(img: Image8, outW: number, y0: number, rows: number, c: ReturnType<typeof precomputeCoeffs>): Image8 {
  const { width: inW, channels: ch, data } = img;
  const out = new Uint8Array(outW * rows * ch);
  const { ksize, bounds, kk } = c;
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = (yy + y0) * inW * ch;
    const rowOut = yy * outW * ch;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const kb = xx * ksize;
      for (let b = 0; b < ch; b++) {
        let ss = half;
        for (let x = 0; x < xmax; x++) ss += data[rowIn + (x + xmin) * ch + b]! * kk[kb + x]!;
        out[rowOut + xx * ch + b] = clip8(ss);
      }
    }
  }
  return { data: out, width: outW, height: rows, channels: ch };
}

function verticalPass(img: Image8, outH: number, yOffset: number, c: ReturnType<typeof precomputeCoeffs>): Image8 {
  const { width: w, channels: ch, data } = img;
  const rowLen = w * ch;
  const out = new Uint8Array(outH * rowLen);
  const { ksize, bounds, kk } = c;
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - yOffset;
    const ymax = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    for (let i = 0; i < rowLen; i++) {
      let ss = half;
      for (let y = 0; y < ymax; y++) ss += data[(y + ymin) * rowLen + i]! * kk[kb + y]!;
      out[yy * rowLen + i] = clip8(ss);
    }
  }
  return { data: out, width: w, height: outH, channels: ch };
}

/** PIL's NEAREST resize (ImagingScaleAffine): sample positions accumulate in double precision. */
function nearestScale(img: Image8, outW: number, outH: number, box: readonly [number, number, number, number]): Image8 {
  const { width: inW, height: inH, channels: ch, data } = img;
  const b = box.map((v) => Math.fround(v));
  const a0 = Math.fround(b[2]! - b[0]!) / outW;
  const a4 = Math.fround(b[3]! - b[1]!) / outH;
  const coord = (v: number) => (v < 0.0 ? -1 : Math.trunc(v));
  const xintab = new Int32Array(outW).fill(-1);
  let xo = b[0]! + a0 * 0.5;
  for (let x = 0; x < outW; x++) {
    const xin = coord(xo);
    if (xin >= 0 && xin < inW) xintab[x] = xin;
    xo += a0;
  }
  const out = new Uint8Array(outW * outH * ch);
  let yo = b[1]! + a4 * 0.5;
  for (let y = 0; y < outH; y++) {
    const yi = coord(yo);
    if (yi >= 0 && yi < inH) {
      for (let x = 0; x < outW; x++) {
        const xi = xintab[x]!;
        if (xi < 0) continue;
        for (let c = 0; c < ch; c++) out[(y * outW + x) * ch + c] = data[(yi * inW + xi) * ch + c]!;
      }
    }
    yo += a4;
  }
  return { data: out, width: outW, height: outH, channels: ch };
}

/**
 * PIL's `Image.resize((outW, outH), resample, box)` for 8-bit L/RGB images, bit-identical:
 * horizontal pass first (only over the rows the vertical pass reads), then vertical.
 */
export function resample(
  img: Image8,
  outW: number,
  outH: number,
  interpolation: Interpolation,
  box: readonly [number, number, number, number] = [0, 0, img.width, img.height],
): Image8 {
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw usageError(`resize target must be positive integers (got ${outW}x${outH})`);
  }
  const same = box[0] === 0 && box[1] === 0 && box[2] === img.width && box[3] === img.height;
  if (same && outW === img.width && outH === img.height) {
    return { ...img, data: img.data.slice() };
  }
  if (interpolation === 'nearest') return nearestScale(img, outW, outH, box);
  const filter = interpolation === 'bicubic' ? BICUBIC : interpolation === 'bilinear' ? BILINEAR : null;
  if (!filter) throw usageError(`--interpolation must be one of ${INTERPOLATIONS.join(', ')} (got "${interpolation}")`);

  const needH = outW !== img.width || box[0] !== 0 || box[2] !== outW;
  const needV = outH !== img.height || box[1] !== 0 || box[3] !== outH;
  const vert = precomputeCoeffs(img.height, box[1], box[3], outH, filter);
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
  let cur = img;
  let yOffset = 0;
  if (needH) {
    const horiz = precomputeCoeffs(img.width, box[0], box[2], outW, filter);
    cur = horizontalPass(img, outW, yFirst, yLast - yFirst, horiz);
    yOffset = yFirst;
  }
  if (needV) cur = verticalPass(cur, outH, yOffset, vert);
  else if (!needH) cur = { ...cur, data: cur.data.slice() };
  return cur;
}

/**
 * torchvision's output size for `Resize(size)`: an int resizes the shorter side to `size` and the
 * longer to int(size * long / short); a pair is [height, width].
 */
export function resizedSize(width: number, height: number, size: number | readonly [number, number]): { width: number; height: number } {
  if (typeof size !== 'number') return { height: size[0], width: size[1] };
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newShort = size;
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: newShort, height: newLong } : { width: newLong, height: newShort };
}

/** torchvision `transforms.Resize(size, interpolation)` on a PIL image. */
export function resizeTorchvision(img: Image8, size: number | readonly [number, number], interpolation: Interpolation): Image8 {
  const { width, height } = resizedSize(img.width, img.height, size);
  if (width === img.width && height === img.height) return img; // torchvision returns the image unchanged
  return resample(img, width, height, interpolation);
}

/** Python 3's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Copy a window of `img` (may reach outside; outside pixels are 0), like PIL's crop. */
export function cropImage(img: Image8, left: number, top: number, w: number, h: number): Image8 {
  const { width: iw, height: ih, channels: ch, data } = img;
  const out = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= ih) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(w, iw - left);
    if (x1 <= x0) continue;
    out.set(data.subarray((sy * iw + left + x0) * ch, (sy * iw + left + x1) * ch), (y * w + x0) * ch);
  }
  return { data: out, width: w, height: h, channels: ch };
}

/**
 * torchvision `transforms.CenterCrop((ch, cw))`: zero-pads first when the crop is larger
 * (left/top get the floor half), then crops at int(round((h - ch) / 2.0)) with Python's rounding.
 */
export function centerCrop(img: Image8, cropH: number, cropW: number): Image8 {
  let cur = img;
  if (cropW > cur.width || cropH > cur.height) {
    const padL = cropW > cur.width ? Math.floor((cropW - cur.width) / 2) : 0;
    const padT = cropH > cur.height ? Math.floor((cropH - cur.height) / 2) : 0;
    const padR = cropW > cur.width ? Math.floor((cropW - cur.width + 1) / 2) : 0;
    const padB = cropH > cur.height ? Math.floor((cropH - cur.height + 1) / 2) : 0;
    cur = cropImage(cur, -padL, -padT, cur.width + padL + padR, cur.height + padT + padB);
    if (cropW === cur.width && cropH === cur.height) return cur;
  }
  const top = roundHalfEven((cur.height - cropH) / 2.0);
  const left = roundHalfEven((cur.width - cropW) / 2.0);
  if (top === 0 && left === 0 && cropW === cur.width && cropH === cur.height) return cur;
  return cropImage(cur, left, top, cropW, cropH);
}
