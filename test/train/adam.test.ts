// Adam: known answers (the first bias-corrected step moves each weight by lr * sign(g); AdamW decay
// shrinks by lr * wd * w), a hand-unrolled second step, the schedule, and one step on real digits
// through the training graph lowering the loss on that batch.
import { describe, expect, it } from 'vitest';
import { Adam, adamUpdate, warmupCosine, DEFAULT_ADAM } from '../../src/train/adam.js';
import { buildSyntheticVit } from '../../src/vit/synth.js';
import { buildTrainingGraph, initialValues } from '../../src/train/trainingGraph.js';
import { DIGITS_TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { loadMnistPackage, DIGIT_PIXELS } from '../../src/train/digits.js';
import { createSession } from '../../src/runtime/session.js';
import { encodeModel } from '../../src/onnx/model.js';

describe('adamUpdate', () => {
  it('first step: w -= lr * g / (|g| + eps) (bias correction makes m^ = g, v^ = g^2)', () => {
    const w = Float32Array.from([1, -2, 0.5, 3]);
    const g = Float32Array.from([0.3, -4, 1e-3, 0]);
    const m = new Float32Array(4);
    const v = new Float32Array(4);
    const h = { ...DEFAULT_ADAM, lr: 0.01 };
    adamUpdate(w, g, m, v, 1, h);
    const want = [1 - 0.01 * (0.3 / (0.3 + 1e-8)), -2 + 0.01 * (4 / (4 + 1e-8)), 0.5 - 0.01 * (1e-3 / (1e-3 + 1e-8)), 3];
    want.forEach((x, i) => expect(w[i]).toBeCloseTo(x, 6));
    expect(Array.from(m)).toEqual(Array.from(g, (x) => Math.fround(0.1 * x)));
  });

  it('second step matches the formulas unrolled by hand; decoupled weight decay only where asked', () => {
    const h = { lr: 0.1, beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0.5 };
    const w = Float32Array.from([2]);
    const m = new Float32Array(1);
    const v = new Float32Array(1);
    adamUpdate(w, Float32Array.from([1]), m, v, 1, h, true);
    // step 1: m=0.2 v=0.1 m^=1 v^=1 -> w = 2 - 0.1*0.5*2 - 0.1*1/(1+1e-6)
    const w1 = 2 - 0.1 - 0.1 / (1 + 1e-6);
    expect(w[0]).toBeCloseTo(w1, 6);
    adamUpdate(w, Float32Array.from([-3]), m, v, 2, h, true);
    const m2 = 0.8 * 0.2 + 0.2 * -3;
    const v2 = 0.9 * 0.1 + 0.1 * 9;
    const mh = m2 / (1 - 0.64);
    const vh = v2 / (1 - 0.81);
    const w2 = w1 - 0.1 * 0.5 * w1 - (0.1 * mh) / (Math.sqrt(vh) + 1e-6);
    expect(w[0]).toBeCloseTo(w2, 5);
    const u = Float32Array.from([2]);
    adamUpdate(u, Float32Array.from([0]), new Float32Array(1), new Float32Array(1), 1, h, false);
    expect(u[0]).toBe(2);
  });

  it('rejects mismatched buffers and a step count below 1', () => {
    expect(() => adamUpdate(new Float32Array(2), new Float32Array(3), new Float32Array(2), new Float32Array(2), 1, DEFAULT_ADAM)).toThrow(/length/);
    expect(() => adamUpdate(new Float32Array(1), new Float32Array(1), new Float32Array(1), new Float32Array(1), 0, DEFAULT_ADAM)).toThrow(/step/);
    expect(() => new Adam(DEFAULT_ADAM).step({ a: new Float32Array(1) }, {})).toThrow(/no gradient/);
  });

  it('warm-up then cosine: rises linearly, peaks, ends at the floor', () => {
    expect(warmupCosine(0, 100, 10, 1)).toBeCloseTo(0.1, 12);
    expect(warmupCosine(9, 100, 10, 1)).toBeCloseTo(1, 12);
    expect(warmupCosine(10, 100, 10, 1)).toBeCloseTo(1, 12);
    expect(warmupCosine(55, 100, 10, 2, 0.1)).toBeCloseTo(2 * (0.1 + 0.9 * 0.5), 12);
    expect(warmupCosine(100, 100, 10, 2, 0.1)).toBeCloseTo(0.2, 12);
  });
});

describe('one Adam step on real digits', () => {
  it('lowers the cross-entropy of the batch it was computed on', async () => {
    const { train } = loadMnistPackage();
    const vit = buildSyntheticVit(DIGITS_TRAIN_DEFAULTS.vit);
    const tg = await buildTrainingGraph(vit, { threads: 1 });
    const s = await createSession(encodeModel(tg.model), { provider: 'cpu', threads: 1 });
    const B = 32;
    // a batch spread over all classes: every 280th training digit
    const idx = Array.from({ length: B }, (_, i) => i * 280);
    const px = new Float32Array(B * DIGIT_PIXELS);
    const target = new Float32Array(B * 10);
    idx.forEach((k, i) => {
      px.set(train.pixels.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS), i * DIGIT_PIXELS);
      target[i * 10 + train.labels[k]!] = 1;
    });
    expect(new Set(idx.map((k) => train.labels[k])).size).toBeGreaterThanOrEqual(8);
    const weights = initialValues(vit.model, tg.params);
    const run = async () => {
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = { input: { data: px, dims: [B, 1, 28, 28] }, target: { data: target, dims: [B, 10] } };
      for (const p of tg.params) feeds[p.name] = { data: weights[p.name]!, dims: p.dims };
      return s.run(feeds);
    };
    const before = await run();
    const l0 = (before.loss!.data as Float32Array)[0]!;
    const grads: Record<string, Float32Array> = {};
    for (const p of tg.params) grads[p.name] = before[tg.gradOutputs[p.name]!]!.data as Float32Array;
    const adam = new Adam({ ...DEFAULT_ADAM, lr: 1e-3 });
    adam.step(weights, grads);
    const l1 = ((await run()).loss!.data as Float32Array)[0]!;
    await s.release();
    expect(adam.steps).toBe(1);
    expect(l1).toBeLessThan(l0 - 0.01);
  }, 60_000);
});
