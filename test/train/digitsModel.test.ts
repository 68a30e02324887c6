// The committed demo model fixtures/models/digits-vit.onnx: its held-out accuracy recomputed from the
// file on the mnist package's held-out split (>= 95%), the file is exactly what the training script's
// assembly writes (rebuilt byte for byte from its own weights + metadata), a rerun of the script's
// first optimizer steps reproduces the recorded losses bit for bit, the curve CSV and the demo PNGs
// agree with it, and (with ../shared) its recorded real-MNIST test accuracy is recomputed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import { createSession } from '../../src/runtime/session.js';
import { evaluateClassifier, sessionClassifier } from '../../src/services/evaluate.js';
import { readDigitsModel, assembleDigitsModel, DIGIT_LABELS } from '../../src/train/digitsModel.js';
import { loadMnistPackage, isHeldOut, toByte, DIGIT_PIXELS, type DigitSet } from '../../src/train/digits.js';
import { trainDigits, type TrainOptions } from '../../src/train/trainer.js';
import { parseCsv } from '../../src/report/csv.js';
import { decodeImage } from '../../src/data/decode.js';
import { readIdx, idxImages, idxLabels } from '../../src/data/idx.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
const INFO = path.join(ROOT, 'fixtures/models/digits-vit.json');
const CURVE = path.join(ROOT, 'fixtures/models/digits-vit.curve.csv');
const IMAGES = path.join(ROOT, 'fixtures/digits');
const MNIST = path.resolve(ROOT, '../shared/data/mnist');

async function accuracyOf(set: DigitSet): Promise<{ accuracy: number }> {
  const s = await createSession(MODEL, { provider: 'cpu', threads: 1 });
  try {
    const model = sessionClassifier(s, { input: 'input', inputType: 'float32', output: 'logits', scores: 'logits' }, { batchSize: 500, label: MODEL });
    const batches = [{ data: set.pixels, dims: [set.count, 1, 28, 28], labels: set.labels }];
    const ev = await evaluateClassifier(model, batches);
    expect(ev.classes).toBe(10);
    return { accuracy: ev.accuracy!.top1 };
  } finally {
    await s.release();
  }
}

describe('the committed digits ViT', () => {
  const loaded = loadModel(MODEL);
  const parts = readDigitsModel(loaded.proto, MODEL);
  const info = JSON.parse(fs.readFileSync(INFO, 'utf8'));
  const data = loadMnistPackage();

  it('is the pre-norm ViT of the issue: patch 7, 4 blocks, width 64, 4 heads, FFN 128, erf GELU, LayerNormalization, class token', () => {
    const c = parts.config;
    expect([c.imageSize, c.channels, c.patch, c.depth, c.width, c.heads, c.ffn, c.classes]).toEqual([28, 1, 7, 4, 64, 4, 128, 10]);
    expect([c.gelu, c.norm, c.head, c.inputName]).toEqual(['erf', 'layernorm', 'cls', 'input']);
    expect(loaded.proto.graph!.node.filter((n) => n.opType === 'LayerNormalization')).toHaveLength(2 * 4 + 1);
    expect(loaded.proto.graph!.output.map((o) => o.name)).toEqual(['logits']);
    expect(parts.labels).toEqual(DIGIT_LABELS);
    expect(info.sha256).toBe(loaded.sha256);
    expect(loaded.sizeBytes).toBeLessThan(1024 * 1024); // small enough to ship in the package
  });

  it('reaches >= 95% on the held-out split, the accuracy its metadata records', async () => {
    expect(parts.provenance.split.heldOut).toBe(data.heldOut.count);
    expect(parts.provenance.split.train).toBe(data.train.count);
    const { accuracy } = await accuracyOf(data.heldOut);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(accuracy - parts.provenance.heldOutAccuracy)).toBeLessThanOrEqual(1 / data.heldOut.count);
  }, 60_000);

  it('is byte for byte what the script assembles from its weights and metadata', () => {
    const rebuilt = encodeModel(assembleDigitsModel(parts.config, parts.weights, parts.provenance));
    expect(Buffer.from(rebuilt).equals(fs.readFileSync(MODEL))).toBe(true);
  });

  it('a rerun of the training script reproduces the recorded first optimizer steps exactly', async () => {
    const o = { ...(parts.provenance.options as Omit<TrainOptions, 'vit'>), vit: parts.config, maxSteps: parts.provenance.firstStepLosses.length, evaluate: false } as TrainOptions;
    const r = await trainDigits(data.train, data.heldOut, o);
    expect(r.stepLosses).toEqual(parts.provenance.firstStepLosses);
    expect(r.stepLosses.length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('has a training curve CSV ending at the recorded held-out accuracy', () => {
    const rows = parseCsv(fs.readFileSync(CURVE, 'utf8'));
    expect(rows[0]).toEqual(['epoch', 'steps', 'lr', 'train_loss', 'train_accuracy', 'heldout_loss', 'heldout_accuracy']);
    const body = rows.slice(1);
    expect(body).toHaveLength(parts.provenance.epochs);
    const last = body[body.length - 1]!;
    expect(Number(last[1])).toBe(parts.provenance.steps);
    expect(Number(last[6])).toBe(parts.provenance.heldOutAccuracy);
    expect(Number(last[3])).toBeLessThan(Number(body[0]![3])); // train loss went down
  });

  it('ships held-out digits as PNGs in class folders, each identical to its source digit', async () => {
    const classes = fs.readdirSync(IMAGES).sort();
    expect(classes).toEqual(DIGIT_LABELS);
    const heldIndex = new Map(data.heldOut.ids.map((id, k) => [id, k]));
    let count = 0;
    for (const c of classes) {
      const files = fs.readdirSync(path.join(IMAGES, c)).sort();
      expect(files.length).toBeGreaterThanOrEqual(3);
      for (const f of files) {
        const m = /^mnist-pkg-(\d)-(\d{4})\.png$/.exec(f);
        expect(m, f).not.toBeNull();
        expect(m![1]).toBe(c);
        const idx = Number(m![2]);
        expect(isHeldOut(idx)).toBe(true);
        const k = heldIndex.get(`${c}/${idx}`)!;
        expect(k).toBeDefined();
        const img = await decodeImage(path.join(IMAGES, c, f), 1);
        expect([img.width, img.height]).toEqual([28, 28]);
        for (let j = 0; j < DIGIT_PIXELS; j++) if (img.data[j] !== toByte(data.heldOut.pixels[k * DIGIT_PIXELS + j]!)) throw new Error(`${c}/${f} pixel ${j} differs`);
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(30);
  });

  describe.skipIf(!fs.existsSync(MNIST))('on the real MNIST test set (../shared/data/mnist)', () => {
    it('scores the test accuracy recorded beside the model', async () => {
      const imgs = idxImages(readIdx(path.join(MNIST, 't10k-images-idx3-ubyte.gz')));
      const labels = idxLabels(readIdx(path.join(MNIST, 't10k-labels-idx1-ubyte.gz')));
      const set: DigitSet = { count: imgs.count, pixels: Float32Array.from(imgs.data, (b) => b / 255), labels: Uint8Array.from(labels), ids: [] };
      const { accuracy } = await accuracyOf(set);
      expect(info.mnistTest.count).toBe(10000);
      expect(Math.abs(accuracy - info.mnistTest.accuracy)).toBeLessThanOrEqual(1 / 10000);
      expect(accuracy).toBeGreaterThanOrEqual(0.95);
    }, 120_000);
  });
});
