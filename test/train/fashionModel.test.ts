// The committed mean-pooled Fashion-MNIST ViT fixtures/models/fashion-vit.onnx (trace-path's second real
// model): the file is exactly what the training script assembles from its weights + metadata, its curve
// CSV ends at the recorded test accuracy, the PNG fixtures are held-out test images it mostly classifies
// right; with the data set installed (/usr/share/datasets/fashion-mnist, not on CI) the recorded test
// accuracy is recomputed, the PNGs equal their source images and a rerun of the first optimizer steps
// reproduces the recorded losses bit for bit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import { createSession } from '../../src/runtime/session.js';
import { readDigitsModel, assembleDigitsModel } from '../../src/train/digitsModel.js';
import { DIGIT_PIXELS, type DigitSet } from '../../src/train/digits.js';
import { FASHION_DIR, FASHION_LABELS, loadFashionSplit } from '../../src/train/fashion.js';
import { trainDigits, type TrainOptions } from '../../src/train/trainer.js';
import { parseCsv } from '../../src/report/csv.js';
import { decodeImage } from '../../src/data/decode.js';
import { locateVit } from '../../src/vit/locate.js';
import { FASHION_MODEL_INFO } from '../../scripts/train-fashion.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'fixtures/models/fashion-vit.onnx');
const INFO = path.join(ROOT, 'fixtures/models/fashion-vit.json');
const CURVE = path.join(ROOT, 'fixtures/models/fashion-vit.curve.csv');
const IMAGES = path.join(ROOT, 'fixtures/fashion');
const HAVE_DATA = fs.existsSync(path.join(FASHION_DIR, 't10k-images-idx3-ubyte.gz')) && fs.existsSync(path.join(FASHION_DIR, 'train-images-idx3-ubyte.gz'));

async function predict(set: DigitSet): Promise<Uint8Array> {
  const s = await createSession(MODEL, { provider: 'cpu', threads: 1 });
  const out = new Uint8Array(set.count);
  try {
    for (let i = 0; i < set.count; i += 500) {
      const n = Math.min(500, set.count - i);
      const r = await s.run({ input: { data: set.pixels.slice(i * DIGIT_PIXELS, (i + n) * DIGIT_PIXELS), dims: [n, 1, 28, 28] } });
      const z = r.logits!.data as Float32Array;
      for (let b = 0; b < n; b++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (z[b * 10 + c]! > z[b * 10 + best]!) best = c;
        out[i + b] = best;
      }
    }
  } finally {
    await s.release();
  }
  return out;
}

async function fixtureSet(): Promise<{ set: DigitSet; files: string[] }> {
  const files: string[] = [];
  const labels: number[] = [];
  for (const c of fs.readdirSync(IMAGES).sort()) for (const f of fs.readdirSync(path.join(IMAGES, c)).sort()) (files.push(path.join(c, f)), labels.push(Number(c)));
  const pixels = new Float32Array(files.length * DIGIT_PIXELS);
  for (let k = 0; k < files.length; k++) {
    const img = await decodeImage(path.join(IMAGES, files[k]!), 1);
    expect([img.width, img.height]).toEqual([28, 28]);
    for (let j = 0; j < DIGIT_PIXELS; j++) pixels[k * DIGIT_PIXELS + j] = img.data[j]! / 255;
  }
  return { set: { count: files.length, pixels, labels: Uint8Array.from(labels), ids: files }, files };
}

describe('the committed Fashion-MNIST ViT (mean pooling)', () => {
  const loaded = loadModel(MODEL);
  const parts = readDigitsModel(loaded.proto, MODEL);
  const info = JSON.parse(fs.readFileSync(INFO, 'utf8'));

  it('is a mean-pooled pre-norm ViT that vitpath locates as such', () => {
    const c = parts.config;
    expect([c.imageSize, c.channels, c.patch, c.depth, c.width, c.heads, c.ffn, c.classes]).toEqual([28, 1, 7, 4, 64, 4, 128, 10]);
    expect([c.gelu, c.norm, c.head]).toEqual(['erf', 'layernorm', 'mean']);
    expect(parts.labels).toEqual(FASHION_LABELS);
    expect(info.sha256).toBe(loaded.sha256);
    expect(loaded.sizeBytes).toBeLessThan(1024 * 1024);
    const layout = locateVit(loaded.proto, { label: MODEL });
    expect(layout.facts.pooling).toBe('mean');
    expect(layout.blocks).toHaveLength(4);
  });

  it('is byte for byte what the script assembles from its weights and metadata', () => {
    const rebuilt = encodeModel(assembleDigitsModel(parts.config, parts.weights, parts.provenance, FASHION_MODEL_INFO));
    expect(Buffer.from(rebuilt).equals(fs.readFileSync(MODEL))).toBe(true);
  });

  it('has a training curve CSV ending at the recorded test accuracy', () => {
    const rows = parseCsv(fs.readFileSync(CURVE, 'utf8'));
    const body = rows.slice(1);
    expect(body).toHaveLength(parts.provenance.epochs);
    const last = body[body.length - 1]!;
    expect(Number(last[1])).toBe(parts.provenance.steps);
    expect(Number(last[6])).toBe(parts.provenance.heldOutAccuracy);
    expect(parts.provenance.heldOutAccuracy).toBeGreaterThan(0.85);
    expect(Number(last[3])).toBeLessThan(Number(body[0]![3]));
  });

  it('ships 4 held-out test images per class as PNG, mostly classified right', async () => {
    expect(fs.readdirSync(IMAGES).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const { set, files } = await fixtureSet();
    expect(set.count).toBe(40);
    for (const f of files) expect(f).toMatch(/^\d\/fashion-test-\d{5}\.png$/);
    const pred = await predict(set);
    const right = pred.filter((p, i) => p === set.labels[i]).length;
    expect(right).toBeGreaterThanOrEqual(30);
  });

  describe.skipIf(!HAVE_DATA)(`with the data set (${FASHION_DIR})`, () => {
    it('scores the recorded test accuracy, and the PNGs are their test images byte for byte', async () => {
      const test = loadFashionSplit(FASHION_DIR, 'test');
      const pred = await predict(test);
      const acc = pred.filter((p, i) => p === test.labels[i]).length / test.count;
      expect(acc).toBe(info.test.accuracy);
      const { set, files } = await fixtureSet();
      files.forEach((f, k) => {
        const idx = Number(/fashion-test-(\d{5})/.exec(f)![1]);
        expect(test.labels[idx]).toBe(set.labels[k]);
        for (let j = 0; j < DIGIT_PIXELS; j++) if (Math.round(set.pixels[k * DIGIT_PIXELS + j]! * 255) !== Math.round(test.pixels[idx * DIGIT_PIXELS + j]! * 255)) throw new Error(`${f} pixel ${j} differs`);
      });
    }, 120_000);

    it('a rerun of the training script reproduces the recorded first optimizer steps exactly', async () => {
      const train = loadFashionSplit(FASHION_DIR, 'train');
      const o = { ...(parts.provenance.options as Omit<TrainOptions, 'vit'>), vit: parts.config, maxSteps: parts.provenance.firstStepLosses.length, evaluate: false } as TrainOptions;
      const r = await trainDigits(train, train, o);
      expect(r.stepLosses).toEqual(parts.provenance.firstStepLosses);
    }, 120_000);
  });
});
