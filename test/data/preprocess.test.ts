// Preprocessing defaults from the model's input shape, overrides and their validation, the
// normalization presets, and the report record.
import { describe, expect, it } from 'vitest';
import { NORM_PRESETS, resolveNormalization, toCHW } from '../../src/data/normalize.js';
import { describePreprocess, inferPreprocess, parseFloats, parseSize, preprocessImage } from '../../src/data/preprocess.js';
import { centerCrop, cropImage, resizedSize, roundHalfEven } from '../../src/data/resize.js';
import { ExitCode, VitpathError } from '../../src/errors.js';

function code(f: () => unknown): number | null {
  try {
    f();
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    return (e as VitpathError).exitCode;
  }
}

describe('inferPreprocess defaults', () => {
  it('1-channel 28x28 (MNIST): straight resize to 28x28, no crop, 0..1', () => {
    const s = inferPreprocess(['batch', 1, 28, 28]);
    expect(describePreprocess(s)).toEqual({
      channels: 1,
      height: 28,
      width: 28,
      resize: [28, 28],
      crop: null,
      interpolation: 'bilinear',
      normalize: 'none',
      mean: [0],
      std: [1],
      layout: 'NCHW',
      overridden: [],
    });
  });

  it('3-channel 224x224: Resize(256) + CenterCrop(224) + imagenet', () => {
    const s = inferPreprocess([1, 3, 224, 224]);
    expect([s.resize, s.crop, s.interpolation, s.normalize.name]).toEqual([256, [224, 224], 'bilinear', 'imagenet']);
    expect(s.normalize.mean).toEqual(NORM_PRESETS.imagenet.mean);
    expect(s.normalize.std).toEqual(NORM_PRESETS.imagenet.std);
  });

  it('3-channel other sizes: straight resize, 0..1', () => {
    const s = inferPreprocess([null, 3, 32, 32]);
    expect([s.resize, s.crop, s.normalize.name, s.channels]).toEqual([[32, 32], null, 'none', 3]);
    const r = inferPreprocess([1n, 3n, 384n, 256n]);
    expect([r.height, r.width, r.resize]).toEqual([384, 256, [384, 256]]);
  });

  it('the record is plain JSON', () => {
    const d = describePreprocess(inferPreprocess([1, 3, 224, 224], { interpolation: 'bicubic' }));
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d.overridden).toEqual(['interpolation']);
  });
});

describe('inferPreprocess overrides', () => {
  it('--resize N alone crops to the model size; --resize HxW equal to the model needs no crop', () => {
    const a = inferPreprocess([1, 3, 224, 224], { resize: 232 });
    expect([a.resize, a.crop]).toEqual([232, [224, 224]]);
    const b = inferPreprocess([1, 1, 28, 28], { resize: [28, 28] });
    expect([b.resize, b.crop]).toEqual([[28, 28], null]);
    const c = inferPreprocess([1, 1, 28, 28], { resize: 32, crop: 28 });
    expect([c.resize, c.crop]).toEqual([32, [28, 28]]);
  });

  it('--normalize, --mean/--std (one value broadcasts; the other keeps the preset)', () => {
    const a = inferPreprocess([1, 3, 32, 32], { normalize: 'inception' });
    expect([a.normalize.name, a.normalize.mean, a.normalize.std]).toEqual(['inception', [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]);
    const b = inferPreprocess([1, 1, 28, 28], { mean: [0.1307], std: [0.3081] });
    expect([b.normalize.name, b.normalize.mean, b.normalize.std]).toEqual(['custom', [0.1307], [0.3081]]);
    const c = inferPreprocess([1, 3, 224, 224], { mean: [0.5] });
    expect([c.normalize.name, c.normalize.mean, c.normalize.std]).toEqual(['custom', [0.5, 0.5, 0.5], NORM_PRESETS.imagenet.std]);
  });

  it('dynamic height/width take the crop size; without one it is a usage error', () => {
    const s = inferPreprocess(['n', 3, 'h', 'w'], { crop: 224 });
    expect([s.height, s.width, s.resize, s.crop, s.normalize.name]).toEqual([224, 224, 256, [224, 224], 'imagenet']);
    expect(code(() => inferPreprocess(['n', 3, 'h', 'w']))).toBe(ExitCode.USAGE);
  });

  it('inconsistent settings are usage errors; unsupported inputs exit 3', () => {
    expect(code(() => inferPreprocess([1, 3, 224, 224], { crop: 200 }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 224, 224], { resize: [256, 256], crop: [224, 200] }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 1, 28, 28], { normalize: 'imagenet' }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 1, 28, 28], { mean: [0.1, 0.2, 0.3] }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 28, 28], { mean: [0.1, 0.2] }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 28, 28], { std: [0] }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 28, 28], { channels: 1 }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 28, 28], { interpolation: 'lanczos' as never }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 3, 28, 28], { normalize: 'zscore' as never }))).toBe(ExitCode.USAGE);
    expect(code(() => inferPreprocess([1, 4, 28, 28]))).toBe(ExitCode.UNSUPPORTED);
    expect(code(() => inferPreprocess([1, 28, 28]))).toBe(ExitCode.UNSUPPORTED);
  });

  it('parses sizes and number lists from the command line', () => {
    expect(parseSize('224', '--crop')).toBe(224);
    expect(parseSize('384x256', '--resize')).toEqual([384, 256]);
    expect(code(() => parseSize('0', '--crop'))).toBe(ExitCode.USAGE);
    expect(code(() => parseSize('abc', '--crop'))).toBe(ExitCode.USAGE);
    expect(parseFloats('0.485, 0.456,0.406', '--mean')).toEqual([0.485, 0.456, 0.406]);
    expect(code(() => parseFloats('0.5,', '--mean'))).toBe(ExitCode.USAGE);
    expect(code(() => parseFloats('x', '--std'))).toBe(ExitCode.USAGE);
  });
});

describe('geometry helpers', () => {
  it("torchvision's Resize(int) size: shorter side to N, longer int(N * long / short)", () => {
    expect(resizedSize(500, 375, 256)).toEqual({ width: 341, height: 256 }); // 256*500/375 = 341.33
    expect(resizedSize(375, 500, 256)).toEqual({ width: 256, height: 341 });
    expect(resizedSize(32, 32, 256)).toEqual({ width: 256, height: 256 });
    expect(resizedSize(702, 1094, 224)).toEqual({ width: 224, height: 349 }); // 349.08
    expect(resizedSize(7, 9, [4, 5])).toEqual({ width: 5, height: 4 });
  });

  it("Python's round: halves to even (CenterCrop offsets)", () => {
    expect([0.5, 1.5, 2.5, 16.5, 17.5, -0.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 16, 18, 0, 2, 3]);
  });

  it('CenterCrop: offset int(round((h - ch) / 2)), zero padding when larger', () => {
    // 1x6 row 0..5 cropped to width 3: (6-3)/2 = 1.5 -> 2 (even) -> [2,3,4]
    const row = { data: new Uint8Array([0, 1, 2, 3, 4, 5]), width: 6, height: 1, channels: 1 };
    expect(Array.from(centerCrop(row, 1, 3).data)).toEqual([2, 3, 4]);
    // width 5 -> (6-5)/2 = 0.5 -> 0 -> [0..4]
    expect(Array.from(centerCrop(row, 1, 5).data)).toEqual([0, 1, 2, 3, 4]);
    // pad to width 9: left (9-6)//2 = 1, right 2
    expect(Array.from(centerCrop(row, 1, 9).data)).toEqual([0, 0, 1, 2, 3, 4, 5, 0, 0]);
    expect(Array.from(cropImage(row, -2, 0, 3, 2).data)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('normalization arithmetic', () => {
  it('imagenet on white and black pixels equals (v - mean) / std within float32 rounding', () => {
    const img = { data: new Uint8Array([255, 255, 255, 0, 0, 0]), width: 2, height: 1, channels: 3 };
    const norm = resolveNormalization('imagenet', 3);
    const t = toCHW(img, norm);
    for (let c = 0; c < 3; c++) {
      expect(t[c * 2]).toBeCloseTo((1 - norm.mean[c]!) / norm.std[c]!, 5);
      expect(t[c * 2 + 1]).toBeCloseTo(-norm.mean[c]! / norm.std[c]!, 5);
    }
  });

  it('preprocessImage writes CHW at an offset; none gives p/255', () => {
    const s = inferPreprocess([1, 1, 2, 2]);
    const out = new Float32Array(8).fill(-7);
    preprocessImage({ data: new Uint8Array([0, 51, 102, 255]), width: 2, height: 2, channels: 1 }, s, out, 4);
    expect(Array.from(out.subarray(0, 4))).toEqual([-7, -7, -7, -7]);
    expect(Array.from(out.subarray(4))).toEqual([0, 0.20000000298023224, 0.4000000059604645, 1]);
  });
});
