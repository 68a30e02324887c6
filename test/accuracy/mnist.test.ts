// Accuracy check of the data + runtime path: vit-mnist over the 10,000 MNIST test images, read from
// the IDX files through src/data with the inferred preprocessing, must score its authors' 97.73%.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterateBatches } from '../../src/data/dataset.js';
import { describePreprocess, inferPreprocess } from '../../src/data/preprocess.js';
import { checkLabelRange, discoverImages } from '../../src/data/sources.js';
import { createSession } from '../../src/runtime/session.js';

const SHARED = path.resolve(__dirname, '../../../shared');
const MODEL = path.join(SHARED, 'models/vit-mnist.onnx');
const MNIST = path.join(SHARED, 'data/mnist');

describe.skipIf(!fs.existsSync(MODEL) || !fs.existsSync(MNIST))('vit-mnist on the MNIST test set', () => {
  it('scores 9773 / 10000 (97.73%) through discoverImages -> iterateBatches -> ONNX Runtime (cpu)', async () => {
    const src = discoverImages(MNIST);
    expect(src.kind).toBe('idx');
    expect(src.items.length).toBe(10000);
    checkLabelRange(src, 10);
    // the model's input is [batch, 1, 28, 28]: the inferred defaults are 28x28 gray, 0..1
    const spec = inferPreprocess(['batch', 1, 28, 28]);
    expect(describePreprocess(spec)).toMatchObject({ channels: 1, height: 28, width: 28, crop: null, normalize: 'none' });
    const session = await createSession(MODEL, { provider: 'cpu', threads: 1 });
    try {
      let correct = 0;
      let seen = 0;
      for await (const b of iterateBatches(src.items, spec, 500)) {
        const out = await session.run({ input: { data: b.data, dims: b.dims } }, ['logits']);
        const logits = out.logits!.data as Float32Array;
        const k = out.logits!.dims[1]!;
        for (let i = 0; i < b.items.length; i++) {
          let best = 0;
          for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
          if (best === b.labels[i]) correct++;
        }
        seen += b.items.length;
      }
      expect(seen).toBe(10000);
      expect(correct).toBe(9773);
    } finally {
      await session.release();
    }
  }, 60_000);
});
