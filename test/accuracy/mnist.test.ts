// Accuracy check of the data + runtime path: vit-mnist over the 10,000 MNIST test images, read from
// the IDX files through src/data with the inferred preprocessing, must score its authors' 97.73%.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterateBatches } from '../../src/data/dataset.js';
import { describePreprocess, inferPreprocess } from '../../src/data/preprocess.js';
import { checkLabelRange, discoverImages } from '../../src/data/sources.js';
import { createSession } from '../../src/runtime/session.js';
import { loadModel } from '../../src/onnx/model.js';
import { describeClassifier } from '../../src/onnx/classifier.js';
import { evaluateClassifier, sessionClassifier } from '../../src/services/evaluate.js';

const SHARED = path.resolve(__dirname, '../../../shared');
const MODEL = path.join(SHARED, 'models/vit-mnist.onnx');
const MNIST = path.join(SHARED, 'data/mnist');

describe.skipIf(!fs.existsSync(MODEL) || !fs.existsSync(MNIST))('vit-mnist on the MNIST test set', () => {
  it('scores 9773 / 10000 (97.73%) through discoverImages -> iterateBatches -> evaluateClassifier on ONNX Runtime (cpu)', async () => {
    const src = discoverImages(MNIST);
    expect(src.kind).toBe('idx');
    expect(src.items.length).toBe(10000);
    checkLabelRange(src, 10);
    // the model's input is [batch, 1, 28, 28]: the inferred defaults are 28x28 gray, 0..1
    const spec = inferPreprocess(['batch', 1, 28, 28]);
    expect(describePreprocess(spec)).toMatchObject({ channels: 1, height: 28, width: 28, crop: null, normalize: 'none' });
    const session = await createSession(MODEL, { provider: 'cpu', threads: 1 });
    try {
      const io = describeClassifier(loadModel(MODEL).proto, { label: MODEL });
      expect(io).toMatchObject({ input: 'input', output: 'logits', inputType: 'float32', scores: 'logits', batch: 'dynamic' });
      const model = sessionClassifier(session, io, { batchSize: 500, label: MODEL });
      const ev = await evaluateClassifier(model, iterateBatches(src.items, spec, 500));
      expect(ev.count).toBe(10000);
      expect(ev.accuracy!.labelled).toBe(10000);
      expect(ev.accuracy!.correct).toBe(9773);
    } finally {
      await session.release();
    }
  }, 60_000);
});
