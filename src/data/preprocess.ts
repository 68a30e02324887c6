// Preprocessing settings: defaults inferred from the model's input shape, user overrides, the
// per-image pipeline (decode -> channels -> Resize -> CenterCrop -> normalize), and a report record.
//
// Rules for the defaults (input dims [N, C, H, W]; C and H x W come from the model):
//   - C = 1 (e.g. MNIST 28x28x1): resize straight to H x W (no crop), bilinear, normalize 'none' (0..1).
//   - C = 3 and H = W = 224: torchvision's standard Resize(256) + CenterCrop(224), bilinear, 'imagenet'.
//   - C = 3, any other size: resize straight to H x W (no crop), bilinear, normalize 'none'.
//   - A resize to the size an image already has leaves it untouched (as PIL/torchvision do).
// Overrides: --resize N (shorter side to N, torchvision Resize(N)) or HxW, --crop N or HxW (center
// crop), --interpolation, --normalize, --mean/--std. When --resize N is given without --crop, the
// crop defaults to the model's H x W. The final size must equal the model's H x W where that is fixed.
import { usageError, unsupported } from '../errors.js';
import { INTERPOLATIONS, type Image8, type Interpolation, centerCrop, resizeTorchvision } from './resize.js';
import { type NormPreset, NORM_PRESETS, type Normalization, resolveNormalization, toCHW } from './normalize.js';

export interface PreprocessSpec {
  channels: 1 | 3;
  /** Final tensor height and width. */
  height: number;
  width: number;
  /** torchvision Resize argument: a number resizes the shorter side; [h, w] is exact; null = none. */
  resize: number | [number, number] | null;
  /** Center crop [h, w] after the resize; null = none. */
  crop: [number, number] | null;
  interpolation: Interpolation;
  normalize: Normalization;
  /** Which fields came from the user rather than the model's shape. */
  overridden: string[];
}

export interface PreprocessOverrides {
  channels?: 1 | 3;
  resize?: number | [number, number];
  crop?: number | [number, number];
  interpolation?: Interpolation;
  normalize?: NormPreset;
  mean?: number[];
  std?: number[];
}

type Dim = number | string | bigint | null | undefined;

function fixed(d: Dim): number | null {
  const n = typeof d === 'bigint' ? Number(d) : d;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** Parse "224" or "224x192" (height x width) from the command line. */
export function parseSize(text: string, option: string): number | [number, number] {
  const m = /^\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?$/i.exec(text);
  if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < 1)) {
    throw usageError(`${option} takes a positive size N or HxW (got "${text}")`);
  }
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}

/** Parse "0.5" or "0.485,0.456,0.406" for --mean / --std. */
export function parseFloats(text: string, option: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const vals = parts.map(Number);
  if (parts.some((p) => p === '') || vals.some((v) => !Number.isFinite(v))) {
    throw usageError(`${option} takes one number or a comma-separated list (got "${text}")`);
  }
  return vals;
}

/** Default preprocessing for a model input of `inputDims` ([N, C, H, W]), then the overrides. */
export function inferPreprocess(inputDims: readonly Dim[], overrides: PreprocessOverrides = {}): PreprocessSpec {
  if (inputDims.length !== 4) {
    throw unsupported(`the model's image input has ${inputDims.length} dimensions; vitpath expects [batch, channels, height, width]`);
  }
  const o = overrides;
  const overridden = Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k);
  const modelC = fixed(inputDims[1]);
  if (modelC !== null && modelC !== 1 && modelC !== 3) {
    throw unsupported(`the model's image input has ${modelC} channels; vitpath supports 1 (grayscale) or 3 (RGB) channel images in [batch, channels, height, width] order`);
  }
  if (modelC !== null && o.channels !== undefined && o.channels !== modelC) {
    throw usageError(`--channels ${o.channels} does not match the model, which takes ${modelC}-channel images`);
  }
  const channels = (modelC ?? o.channels ?? 3) as 1 | 3;
  let mh = fixed(inputDims[2]);
  let mw = fixed(inputDims[3]);
  if (o.interpolation !== undefined && !INTERPOLATIONS.includes(o.interpolation)) {
    throw usageError(`--interpolation must be one of ${INTERPOLATIONS.join(', ')} (got "${o.interpolation}")`);
  }
  if (o.normalize !== undefined && !(o.normalize in NORM_PRESETS)) {
    throw usageError(`--normalize must be one of ${Object.keys(NORM_PRESETS).join(', ')} (got "${o.normalize}")`);
  }
  if (mh === null || mw === null) {
    // dynamic spatial size: the crop (or an exact resize) decides it
    const from = o.crop !== undefined ? pair(o.crop) : o.resize !== undefined && typeof o.resize !== 'number' ? o.resize : null;
    if (!from) throw usageError('the model accepts any image size; pass --crop N (or --resize HxW) to choose one');
    mh = mh ?? from[0];
    mw = mw ?? from[1];
  }
  const standard224 = channels === 3 && mh === 224 && mw === 224;
  let resize: number | [number, number] | null;
  let crop: [number, number] | null;
  if (o.resize !== undefined) {
    resize = o.resize;
    crop = o.crop !== undefined ? pair(o.crop) : typeof o.resize === 'number' || o.resize[0] !== mh || o.resize[1] !== mw ? [mh, mw] : null;
  } else if (o.crop !== undefined) {
    crop = pair(o.crop);
    resize = standard224 ? 256 : null;
  } else if (standard224) {
    resize = 256;
    crop = [224, 224];
  } else {
    resize = [mh, mw];
    crop = null;
  }
  const finalH = crop ? crop[0] : resize === null ? null : typeof resize === 'number' ? null : resize[0];
  const finalW = crop ? crop[1] : resize === null ? null : typeof resize === 'number' ? null : resize[1];
  if (finalH !== mh || finalW !== mw) {
    throw usageError(
      `the preprocessing gives ${finalH ?? '?'}x${finalW ?? '?'} images but the model takes ${mh}x${mw}; set --crop ${mh === mw ? mh : `${mh}x${mw}`}`,
    );
  }
  const preset: NormPreset = o.normalize ?? (standard224 ? 'imagenet' : 'none');
  const normalize = resolveNormalization(preset, channels, o.mean, o.std);
  return { channels, height: mh, width: mw, resize, crop, interpolation: o.interpolation ?? 'bilinear', normalize, overridden };
}

/** Resize and crop an image that already has the spec's channel count. */
export function resizeAndCrop(img: Image8, spec: PreprocessSpec): Image8 {
  let cur = img;
  if (spec.resize !== null) cur = resizeTorchvision(cur, spec.resize, spec.interpolation);
  if (spec.crop !== null) cur = centerCrop(cur, spec.crop[0], spec.crop[1]);
  return cur;
}

/** The whole per-image pipeline after decoding: resize, crop, normalize into CHW float32. */
export function preprocessImage(img: Image8, spec: PreprocessSpec, out?: Float32Array, offset = 0): Float32Array {
  if (img.channels !== spec.channels) throw new Error(`internal: image has ${img.channels} channels, spec ${spec.channels}`);
  const ready = resizeAndCrop(img, spec);
  return toCHW(ready, spec.normalize, out, offset);
}

/** The settings used, as a plain JSON-ready object for reports. */
export function describePreprocess(spec: PreprocessSpec): Record<string, unknown> {
  return {
    channels: spec.channels,
    height: spec.height,
    width: spec.width,
    resize: spec.resize,
    crop: spec.crop,
    interpolation: spec.interpolation,
    normalize: spec.normalize.name,
    mean: spec.normalize.mean,
    std: spec.normalize.std,
    layout: 'NCHW',
    overridden: spec.overridden,
  };
}
