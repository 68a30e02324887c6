// Batches: NCHW packing in item order, IDX and file items, bounded decode concurrency, and a bad
// image failing the whole batch with exit code 2 (no partial batch is returned).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { iterateBatches, loadBatch, mapLimit } from '../../src/data/dataset.js';
import { encodePng } from '../../src/data/png.js';
import { inferPreprocess } from '../../src/data/preprocess.js';
import { discoverImages } from '../../src/data/sources.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { buildIdx } from './idxFixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-ds-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Image k of the folder: 3x2 RGB with pixel (y, x, c) = 10k + 3(y*3 + x) + c. */
const pixel = (k: number, y: number, x: number, c: number) => 10 * k + 3 * (y * 3 + x) + c;
for (let k = 0; k < 7; k++) {
  const d = new Uint8Array(3 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let c = 0; c < 3; c++) d[(y * 3 + x) * 3 + c] = pixel(k, y, x, c);
  fs.mkdirSync(path.join(tmp, 'set', `class${k % 2}`), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'set', `class${k % 2}`, `img${k}.png`), encodePng(3, 2, 3, d));
}

describe('loadBatch / iterateBatches', () => {
  it('packs images as float32 NCHW in item order (model-sized images pass through unresized)', async () => {
    const src = discoverImages(path.join(tmp, 'set'));
    const spec = inferPreprocess([1, 3, 2, 3]);
    const data = await loadBatch(src.items, spec, { concurrency: 3 });
    expect(data.length).toBe(7 * 3 * 2 * 3);
    src.items.forEach((it, n) => {
      const k = Number(/img(\d)/.exec(it.id)![1]);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < 2; y++)
          for (let x = 0; x < 3; x++) expect(data[((n * 3 + c) * 2 + y) * 3 + x]).toBe(Math.fround(pixel(k, y, x, c) / 255));
    });
  });

  it('iterates batches of N with a smaller last batch, labels and start offsets', async () => {
    const src = discoverImages(path.join(tmp, 'set'));
    const spec = inferPreprocess([1, 1, 2, 3]);
    const batches = [];
    for await (const b of iterateBatches(src.items, spec, 3)) batches.push(b);
    expect(batches.map((b) => [b.start, b.dims])).toEqual([
      [0, [3, 1, 2, 3]],
      [3, [3, 1, 2, 3]],
      [6, [1, 1, 2, 3]],
    ]);
    expect(batches.flatMap((b) => Array.from(b.labels))).toEqual(src.items.map((i) => i.label));
    expect(batches.flatMap((b) => b.items.map((i) => i.id))).toEqual(src.items.map((i) => i.id));
  });

  it('IDX gray images replicate to 3 channels and resize', async () => {
    const f = path.join(tmp, 'images-idx3-ubyte');
    fs.writeFileSync(f, buildIdx(0x08, [2, 2, 2], [0, 255, 255, 0, 10, 20, 30, 40]));
    const src = discoverImages(f);
    const spec = inferPreprocess([1, 3, 2, 2]);
    const data = await loadBatch(src.items, spec);
    expect(Array.from(data.subarray(12, 16))).toEqual([10, 20, 30, 40].map((v) => Math.fround(v / 255)));
    expect(Array.from(data.subarray(16, 20))).toEqual(Array.from(data.subarray(12, 16)));
    const up = await loadBatch(src.items.slice(0, 1), inferPreprocess([1, 1, 4, 4]));
    expect(up.length).toBe(16);
  });

  it('IDX files: every image and label in order, gzip or not, across batch boundaries (needs no ../shared)', async () => {
    // Five 3x2 gray images with distinct pixels (image k, pixel p = 40k + 7p + 1) and labels 7, 3, 5, 0, 9.
    const N = 5;
    const px = (k: number, p: number) => 40 * k + 7 * p + 1;
    const pixels = Array.from({ length: N * 6 }, (_, i) => px(Math.floor(i / 6), i % 6));
    const labels = [7, 3, 5, 0, 9];
    const dir = path.join(tmp, 'idx5');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(buildIdx(0x08, [N, 3, 2], pixels)));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), buildIdx(0x08, [N], labels));
    const src = discoverImages(dir);
    expect(src.kind).toBe('idx');
    expect(src.items.map((it) => it.id)).toEqual(Array.from({ length: N }, (_, k) => `t10k-images-idx3-ubyte.gz#${k}`));
    expect(src.items.map((it) => it.label)).toEqual(labels);
    const spec = inferPreprocess([1, 1, 3, 2]);
    const expected = pixels.map((v) => Math.fround(v / 255));
    expect(Array.from(await loadBatch(src.items, spec))).toEqual(expected);
    // In batches of 2 (the last one short), and each image on its own, in any order.
    const seen: number[] = [];
    const seenLabels: number[] = [];
    for await (const b of iterateBatches(src.items, spec, 2)) {
      seen.push(...b.data);
      seenLabels.push(...b.labels);
    }
    expect(seen).toEqual(expected);
    expect(seenLabels).toEqual(labels);
    for (const k of [3, 0, 4, 1, 2]) expect(Array.from(await loadBatch([src.items[k]!], spec))).toEqual(expected.slice(k * 6, (k + 1) * 6));
  });

  it('IDX colour images [N,H,W,C]: the interleaved pixels of each image become its NCHW planes', async () => {
    const N = 3;
    const v = (k: number, y: number, x: number, c: number) => 60 * k + 20 * c + 2 * (y * 2 + x);
    const hwc: number[] = [];
    for (let k = 0; k < N; k++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) for (let c = 0; c < 3; c++) hwc.push(v(k, y, x, c));
    const f = path.join(tmp, 'rgb-images-idx3-ubyte');
    fs.writeFileSync(f, buildIdx(0x08, [N, 2, 2, 3], hwc));
    const src = discoverImages(f);
    const data = await loadBatch(src.items, inferPreprocess([1, 3, 2, 2]));
    for (let k = 0; k < N; k++)
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) expect(data[((k * 3 + c) * 2 + y) * 2 + x]).toBe(Math.fround(v(k, y, x, c) / 255));
  });

  it('an undecodable image rejects the batch with exit code 2 naming it', async () => {
    const bad = path.join(tmp, 'set', 'class1', 'broken.png');
    fs.writeFileSync(bad, Buffer.from('not a png'));
    try {
      const src = discoverImages(path.join(tmp, 'set'));
      const spec = inferPreprocess([1, 3, 2, 3]);
      const err = await loadBatch(src.items, spec).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(VitpathError);
      expect((err as VitpathError).exitCode).toBe(ExitCode.BAD_INPUT);
      expect((err as VitpathError).message).toContain(bad);
    } finally {
      fs.rmSync(bad);
    }
  });
});

describe('mapLimit', () => {
  it('never runs more than the limit at once and keeps input order', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 2, async (v) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, v));
      running--;
      return v * 10;
    });
    expect(peak).toBe(2);
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
  });
});
