// src/data against Pillow 9.4 / torchvision 0.14 reference values (scripts/reference/pil_resize.py):
// resize, convert('L'), Resize + CenterCrop and ToTensor + Normalize must be bit-identical.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lcgBytes } from './lcg.js';
import { convertChannels, decodeImage, decodeRaw } from '../../src/data/decode.js';
import { type Image8, type Interpolation, centerCrop, resample, resizeTorchvision } from '../../src/data/resize.js';
import { toCHW } from '../../src/data/normalize.js';

const REF = path.join(__dirname, 'reference');
const SHARED = path.resolve(__dirname, '../../../shared/data');


function patternBytes(h: number, w: number, c: number): Uint8Array {
  const out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) {
        let v = (x * 37 + y * 91 + k * 50) % 256;
        if ((Math.floor(x / 5) + Math.floor(y / 7)) % 2 === 0) v = k !== 1 ? 255 : 0;
        out[(y * w + x) * c + k] = v;
      }
  return out;
}

interface ArraySpec {
  name: string;
  kind: 'noise' | 'pattern';
  h: number;
  w: number;
  c: number;
  seed: number;
}
interface U8Out {
  h: number;
  w: number;
  c: number;
  data?: number[];
  sha256?: string;
  samples?: [number, number, number, number][];
}

function makeArray(s: ArraySpec): Image8 {
  const data = s.kind === 'noise' ? lcgBytes(s.h * s.w * s.c, s.seed) : patternBytes(s.h, s.w, s.c);
  return { data, width: s.w, height: s.h, channels: s.c };
}

function tvPipeline(img: Image8, resize: number | [number, number] | null, crop: [number, number] | null, interp: Interpolation): Image8 {
  let cur = img;
  if (resize !== null) cur = resizeTorchvision(cur, resize, interp);
  if (crop !== null) cur = centerCrop(cur, crop[0], crop[1]);
  return cur;
}

function expectU8(img: Image8, ref: U8Out, what: string): void {
  expect([img.height, img.width, img.channels], `${what} shape`).toEqual([ref.h, ref.w, ref.c]);
  if (ref.data) {
    const diff = ref.data.findIndex((v, i) => v !== img.data[i]);
    expect(diff, `${what}: first differing byte at ${diff} (ours ${img.data[diff]}, PIL ${ref.data[diff]})`).toBe(-1);
  } else {
    for (const [y, x, c, v] of ref.samples!) expect(img.data[(y * img.width + x) * img.channels + c], `${what} pixel ${y},${x},${c}`).toBe(v);
    expect(crypto.createHash('sha256').update(img.data).digest('hex'), `${what} sha256`).toBe(ref.sha256);
  }
}

const f32bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

describe('synthetic arrays vs Pillow / torchvision', () => {
  const ref = JSON.parse(fs.readFileSync(path.join(REF, 'synthetic.json'), 'utf8'));
  const arrays = new Map<string, Image8>((ref.arrays as ArraySpec[]).map((a) => [a.name, makeArray(a)]));

  it('the TypeScript generator reproduces the arrays the script used', () => {
    expect(ref.cases.length).toBeGreaterThan(50);
    for (const a of ref.arrays as (ArraySpec & { sha256: string })[]) {
      expect(crypto.createHash('sha256').update(arrays.get(a.name)!.data).digest('hex'), a.name).toBe(a.sha256);
    }
  });

  for (const j of ref.jpegs as { file: string; mode: string; decoded: U8Out; L: U8Out; RGB: U8Out }[]) {
    it(`sharp decodes ${j.file} (PIL mode ${j.mode}) to PIL's bytes, as stored and as L / RGB`, async () => {
      const f = path.join(REF, j.file);
      const raw = await decodeRaw(f);
      expectU8(raw, j.decoded, `${j.file} raw`);
      expectU8(await decodeImage(f, 1), j.L, `${j.file} L`);
      expectU8(await decodeImage(f, 3), j.RGB, `${j.file} RGB`);
    });
  }

  for (const m of ref.modes as { file: string; mode: string; L: U8Out; RGB: U8Out }[]) {
    it(`${m.file} (PIL mode ${m.mode}) decodes to PIL's convert('L') and convert('RGB')`, async () => {
      const f = path.join(REF, m.file);
      expectU8(await decodeImage(f, 1), m.L, `${m.file} L`);
      expectU8(await decodeImage(f, 3), m.RGB, `${m.file} RGB`);
    });
  }

  for (const c of ref.cases) {
    const label = `${c.array} ${c.op} ${c.width ?? ''}${c.height ? 'x' + c.height : ''} ${c.resize ?? ''} ${c.crop ?? ''} ${c.interpolation ?? ''}`;
    it(label, () => {
      const img = arrays.get(c.array)!;
      if (c.op === 'resize') expectU8(resample(img, c.width, c.height, c.interpolation), c.out, label);
      else if (c.op === 'convertL') expectU8(convertChannels(img.data, img.width, img.height, img.channels, 1), c.out, label);
      else if (c.op === 'convertRGB') expectU8(convertChannels(img.data, img.width, img.height, img.channels, 3), c.out, label);
      else if (c.op === 'torchvision') expectU8(tvPipeline(img, c.resize, c.crop, c.interpolation), c.out, label);
      else if (c.op === 'tensor') {
        const t = toCHW(tvPipeline(img, c.resize, c.crop, c.interpolation), { name: 'custom', mean: c.mean, std: c.std });
        expect(t.length).toBe(c.out.c * c.out.h * c.out.w);
        expect(f32bits(t)).toEqual(c.out.f32bits);
      } else throw new Error(`unknown case ${c.op}`);
    });
  }
});

const imagesRef = path.join(REF, 'images.json');
describe.skipIf(!fs.existsSync(SHARED) || !fs.existsSync(imagesRef))('images from ../shared vs Pillow / torchvision', () => {
  const ref = fs.existsSync(imagesRef) ? JSON.parse(fs.readFileSync(imagesRef, 'utf8')) : { files: [], cases: [] };

  it('sharp decodes every ImageNet/CIFAR sample JPEG to the same RGB bytes as PIL (max |diff| = 0)', async () => {
    let identical = 0;
    const mismatched: string[] = [];
    for (const f of ref.files as { path: string; decodeRGB: U8Out }[]) {
      const img = await decodeImage(path.join(SHARED, f.path), 3);
      const sha = crypto.createHash('sha256').update(img.data).digest('hex');
      if (sha === f.decodeRGB.sha256 && img.width === f.decodeRGB.w && img.height === f.decodeRGB.h) identical++;
      else mismatched.push(f.path);
    }
    expect(mismatched).toEqual([]);
    expect(identical).toBe(320);
  });

  const cache = new Map<string, Promise<Image8>>();
  const rgbOf = (p: string) => {
    if (!cache.has(p)) cache.set(p, decodeImage(path.join(SHARED, p), 3));
    return cache.get(p)!;
  };
  for (const c of ref.cases) {
    const label = `${c.path} ${c.op} ${c.channels ?? ''}ch ${c.resize ?? ''} ${c.crop ?? ''} ${c.interpolation ?? ''}`;
    it(label, async () => {
      const rgb = await rgbOf(c.path);
      const gray = convertChannels(rgb.data, rgb.width, rgb.height, 3, 1);
      if (c.op === 'convertL') expectU8(gray, c.out, label);
      else if (c.op === 'torchvision') expectU8(tvPipeline(c.channels === 1 ? gray : rgb, c.resize, c.crop, c.interpolation), c.out, label);
      else if (c.op === 'tensor') {
        const t = toCHW(tvPipeline(rgb, c.resize, c.crop, c.interpolation), { name: 'custom', mean: c.mean, std: c.std });
        const o = c.out;
        expect(t.length).toBe(o.c * o.h * o.w);
        for (const [ch, y, x, bits] of o.samples_f32bits) expect(f32bits(t.subarray(ch * o.h * o.w + y * o.w + x, ch * o.h * o.w + y * o.w + x + 1))[0]).toBe(bits);
        expect(crypto.createHash('sha256').update(new Uint8Array(t.buffer)).digest('hex')).toBe(o.sha256);
      } else throw new Error(`unknown case ${c.op}`);
    });
  }
});
