// Normalization presets and the uint8 HWC -> float32 CHW conversion, with torchvision's float32
// arithmetic (ToTensor: x / 255, then Normalize: (x - mean) / std, each rounded to float32).
import { usageError } from '../errors.js';
import type { Image8 } from './resize.js';

export type NormPreset = 'imagenet' | 'inception' | 'none';
export const NORM_PRESETS: Record<NormPreset, { mean: number[]; std: number[] }> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  inception: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  none: { mean: [0, 0, 0], std: [1, 1, 1] },
};

export interface Normalization {
  /** Preset name, or 'custom' when --mean/--std were given. */
  name: NormPreset | 'custom';
  /** One value per channel. */
  mean: number[];
  std: number[];
}

function perChannel(v: number[], channels: number, what: string): number[] {
  if (v.length === channels) return [...v];
  if (v.length === 1) return new Array<number>(channels).fill(v[0]!);
  if (channels === 1 && v.length === 3) {
    throw usageError(`${what} has 3 values but the model takes 1 channel; pass one value (e.g. --${what} 0.5)`);
  }
  throw usageError(`${what} needs 1 or ${channels} values (got ${v.length})`);
}

/**
 * Resolve a preset plus optional custom mean/std into per-channel values. A custom mean or std
 * replaces the preset's; the other one keeps the preset's values.
 */
export function resolveNormalization(preset: NormPreset, channels: number, mean?: number[], std?: number[]): Normalization {
  const p = NORM_PRESETS[preset];
  if (!p) throw usageError(`--normalize must be one of ${Object.keys(NORM_PRESETS).join(', ')} (got "${preset}")`);
  const base = { mean: channels === 3 ? p.mean : [p.mean[0]!], std: channels === 3 ? p.std : [p.std[0]!] };
  if (preset === 'imagenet' && channels === 1 && !mean && !std) {
    throw usageError('the imagenet normalization has 3 channels but the model takes 1; use --normalize none or pass --mean/--std');
  }
  const m = mean ? perChannel(mean, channels, 'mean') : perChannel(base.mean, channels, 'mean');
  const s = std ? perChannel(std, channels, 'std') : perChannel(base.std, channels, 'std');
  for (const v of [...m, ...s]) if (!Number.isFinite(v)) throw usageError(`--mean/--std values must be finite numbers`);
  if (s.some((v) => v === 0)) throw usageError('--std values must be non-zero');
  return { name: mean || std ? 'custom' : preset, mean: m, std: s };
}

/**
 * Write `img` (HWC uint8) as float32 CHW into `out` at `offset` (elements):
 * v = f32(f32(f32(p / 255) - mean) / std), or p / 255 for mean 0 / std 1.
 */
export function toCHW(img: Image8, norm: Normalization, out?: Float32Array, offset = 0): Float32Array {
  const { width: w, height: h, channels: c, data } = img;
  const plane = w * h;
  const dst = out ?? new Float32Array(plane * c);
  for (let ch = 0; ch < c; ch++) {
    const mean = Math.fround(norm.mean[ch]!);
    const std = Math.fround(norm.std[ch]!);
    // per-value lookup table: identical arithmetic for every pixel with the same byte
    const lut = new Float32Array(256);
    for (let p = 0; p < 256; p++) {
      const x = Math.fround(p / 255);
      lut[p] = mean === 0 && std === 1 ? x : Math.fround(Math.fround(x - mean) / std);
    }
    const base = offset + ch * plane;
    for (let i = 0; i < plane; i++) dst[base + i] = lut[data[i * c + ch]!]!;
  }
  return dst;
}
