// evaluateClassifier / compareClassifiers on hand-built linear classifiers whose logits are known
// (x · W + b): predictions, true-class probabilities, top-k, per-class counts, confusion cells and the
// Wilson interval; fixed batch sizes, float16 inputs and outputs, probability outputs and [N, K, 1, 1]
// outputs give the same answers; model-vs-reference agreement, KL and the paired difference by hand.
import { describe, expect, it } from 'vitest';
import { createSession, type ModelSession } from '../../src/runtime/session.js';
import { encodeModel } from '../../src/onnx/model.js';
import { describeClassifier } from '../../src/onnx/classifier.js';
import { classesOf, compareClassifiers, evaluateClassifier, sessionClassifier, type Classifier, type ClassifierBatch } from '../../src/services/evaluate.js';
import { wilsonInterval, mcnemarExactP } from '../../src/analysis/intervals.js';
import { linearClassifier, linearLogits, type LinearSpec } from '../helpers/classifiers.js';

// Three classes; values exact in float16.
const SPEC: LinearSpec = {
  W: [
    [1, 0, -1],
    [0, 2, 0],
    [-1, 0, 1],
    [0.5, 0.5, 0.5],
  ],
  b: [0, -0.5, 0.25],
};
// Six images [1, 2, 2] and their labels (-1: none).
const X = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0.5, 1, 0, 0.25, 0, 0.75, 1, 1, 1, 0, 0]);
const N = 6;
const LABELS = [0, 1, 2, 2, -1, 1];

function softmaxRow(z: ArrayLike<number>, off: number, K: number): number[] {
  const m = Math.max(...Array.from({ length: K }, (_, c) => z[off + c]!));
  const e = Array.from({ length: K }, (_, c) => Math.exp(z[off + c]! - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

function batches(size: number, labels: number[] | null = LABELS): ClassifierBatch[] {
  const out: ClassifierBatch[] = [];
  for (let s = 0; s < N; s += size) {
    const n = Math.min(size, N - s);
    out.push({ data: X.slice(s * 4, (s + n) * 4), dims: [n, 1, 2, 2], ...(labels ? { labels: labels.slice(s, s + n) } : {}) });
  }
  return out;
}

async function withModel<T>(spec: LinearSpec, f: (c: Classifier, s: ModelSession) => Promise<T>): Promise<T> {
  const model = linearClassifier(spec);
  const io = describeClassifier(model, { label: 'linear' });
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    return await f(sessionClassifier(s, io, { batchSize: 4, label: 'linear' }), s);
  } finally {
    await s.release();
  }
}

const Z = linearLogits(SPEC, X, N);
const K = 3;
const WANT_PRED = Array.from({ length: N }, (_, i) => {
  const row = [Z[i * K]!, Z[i * K + 1]!, Z[i * K + 2]!];
  return row.indexOf(Math.max(...row));
});

describe('evaluateClassifier on a linear classifier', () => {
  it('the hand logits are what the test expects (sanity of the fixture)', () => {
    // image 0: x = [1,0,0,0] -> [1, -0.5, -0.75]; image 4: [0.25,0,0.75,1] -> [0, 0, 1.25]
    expect(Array.from(Z.subarray(0, 3))).toEqual([1, -0.5, -0.75]);
    expect(Array.from(Z.subarray(12, 15))).toEqual([0, 0, 1.25]);
    expect(WANT_PRED).toEqual([0, 1, 2, 2, 2, 1]);
  });

  it('gives predictions, true-class probabilities, accuracy with its Wilson interval, per-class counts and confusion cells', async () => {
    const ev = await withModel(SPEC, (c) => evaluateClassifier(c, batches(4), { topK: 2 }));
    expect(ev.count).toBe(N);
    expect(ev.classes).toBe(3);
    expect(Array.from(ev.predictions)).toEqual(WANT_PRED);
    expect(Array.from(ev.labels)).toEqual(LABELS);
    for (let i = 0; i < N; i++) {
      if (LABELS[i]! < 0) expect(ev.trueProbabilities[i]).toBeNaN();
      else expect(ev.trueProbabilities[i]).toBeCloseTo(softmaxRow(Z, i * K, K)[LABELS[i]!]!, 6);
    }
    const a = ev.accuracy!;
    // labelled: 0,1,2,3,5; predictions 0,1,2,2,1 vs labels 0,1,2,2,1 -> all right except none: 5/5.
    expect(a.labelled).toBe(5);
    expect(a.correct).toBe(5);
    expect(a.top1).toBe(1);
    expect(a.top1Interval).toEqual(wilsonInterval(5, 5));
    expect(a.topK).toEqual({ k: 2, correct: 5, accuracy: 1 });
    let sum = 0;
    for (const i of [0, 1, 2, 3, 5]) sum += softmaxRow(Z, i * K, K)[LABELS[i]!]!;
    expect(a.meanTrueProb).toBeCloseTo(sum / 5, 6);
    expect(a.perClass).toEqual([
      { class: 0, count: 1, correct: 1, accuracy: 1 },
      { class: 1, count: 2, correct: 2, accuracy: 1 },
      { class: 2, count: 2, correct: 2, accuracy: 1 },
    ]);
    expect(a.confusion).toEqual([
      { true: 0, pred: 0, count: 1 },
      { true: 1, pred: 1, count: 2 },
      { true: 2, pred: 2, count: 2 },
    ]);
  });

  it('counts mistakes per class and off-diagonal cells; top-5 is null with 3 classes', async () => {
    const labels = [1, 1, 0, 2, 2, 0]; // predictions 0,1,2,2,2,1: right at 1, 3, 4
    const ev = await withModel(SPEC, (c) => evaluateClassifier(c, batches(6, labels)));
    const a = ev.accuracy!;
    expect(a.correct).toBe(3);
    expect(a.top1).toBe(0.5);
    expect(a.topK).toBeNull();
    expect(a.perClass.map((p) => [p.count, p.correct])).toEqual([
      [2, 0],
      [2, 1],
      [2, 2],
    ]);
    expect(a.confusion).toEqual([
      { true: 0, pred: 1, count: 1 },
      { true: 0, pred: 2, count: 1 },
      { true: 1, pred: 0, count: 1 },
      { true: 1, pred: 1, count: 1 },
      { true: 2, pred: 2, count: 2 },
    ]);
    expect(a.top1Interval).toEqual(wilsonInterval(3, 6));
  });

  it('without labels gives predictions and no accuracy', async () => {
    const ev = await withModel(SPEC, (c) => evaluateClassifier(c, batches(5, null)));
    expect(Array.from(ev.predictions)).toEqual(WANT_PRED);
    expect(ev.accuracy).toBeNull();
  });

  it('keeps softmax rows when asked', async () => {
    const ev = await withModel(SPEC, (c) => evaluateClassifier(c, batches(4), { keepProbabilities: true }));
    expect(ev.probabilities!.length).toBe(N * K);
    for (let i = 0; i < N; i++) softmaxRow(Z, i * K, K).forEach((p, c) => expect(ev.probabilities![i * K + c]).toBeCloseTo(p, 6));
  });

  it.each([
    ['a fixed batch of 4 (last run padded)', { batch: 4 }],
    ['a fixed batch of 1', { batch: 1 }],
    ['float16 input, weights and output', { type: 'float16' as const }],
    ['a Softmax output (probabilities)', { head: 'softmax' as const }],
    ['a LogSoftmax output', { head: 'logsoftmax' as const }],
    ['an [N, K, 1, 1] output', { head: 'nchw' as const }],
  ])('gives the same predictions and true-class probabilities with %s', async (_name, extra) => {
    const ev = await withModel({ ...SPEC, ...extra }, (c) => evaluateClassifier(c, batches(3)));
    expect(Array.from(ev.predictions)).toEqual(WANT_PRED);
    for (const i of [0, 1, 2, 3, 5]) expect(ev.trueProbabilities[i]).toBeCloseTo(softmaxRow(Z, i * K, K)[LABELS[i]!]!, 6);
    expect(ev.accuracy!.correct).toBe(5);
  });

  it('reads what the output holds from the graph', () => {
    expect(describeClassifier(linearClassifier({ ...SPEC, head: 'softmax' }), { label: 'x' }).scores).toBe('probabilities');
    expect(describeClassifier(linearClassifier({ ...SPEC, head: 'logsoftmax' }), { label: 'x' }).scores).toBe('log-probabilities');
    expect(describeClassifier(linearClassifier({ ...SPEC, type: 'float16', batch: 2 }), { label: 'x' })).toMatchObject({ inputType: 'float16', outputType: 'float16', batch: 2, scores: 'logits' });
  });

  it('refuses an output that is not [batch, classes]', () => {
    expect(classesOf([4, 10], 'y', 'm')).toBe(10);
    expect(classesOf([4, 10, 1, 1], 'y', 'm')).toBe(10);
    expect(() => classesOf([4, 2, 10], 'y', 'm')).toThrow(/not \[batch, classes\]/);
    expect(() => classesOf([4], 'y', 'm')).toThrow(/not \[batch, classes\]/);
  });
});

describe('compareClassifiers', () => {
  it('a model against itself: agreement 1, KL 0, no probability difference, paired difference 0 with p = 1', async () => {
    const r = await withModel(SPEC, async (c) => compareClassifiers(c, c, batches(4)));
    expect(r.comparison.agreed).toBe(N);
    expect(r.comparison.agreement).toBe(1);
    expect(r.comparison.meanKl).toBe(0);
    expect(r.comparison.maxAbsProbDiff).toBe(0);
    expect(r.comparison.paired).toMatchObject({ n: 5, referenceOnly: 0, modelOnly: 0, difference: 0, interval: { low: 0, high: 0 }, mcnemarP: 1 });
  });

  it('a changed model: agreement, mean KL(reference || model), max |Δp| and the discordant pairs by hand', async () => {
    // Damage: class 1's weight on pixel 1 goes from 2 to 0, so images 1 and 5 (pixel 1 lit) change.
    const damaged: LinearSpec = { ...SPEC, W: SPEC.W.map((row, j) => (j === 1 ? [0, 0, 0] : row)) };
    const Zd = linearLogits(damaged, X, N);
    const predD = Array.from({ length: N }, (_, i) => {
      const row = [Zd[i * K]!, Zd[i * K + 1]!, Zd[i * K + 2]!];
      return row.indexOf(Math.max(...row));
    });
    let agreed = 0;
    let kl = 0;
    let maxAbs = 0;
    let b = 0;
    let c = 0;
    for (let i = 0; i < N; i++) {
      if (predD[i] === WANT_PRED[i]) agreed++;
      const p = softmaxRow(Zd, i * K, K);
      const q = softmaxRow(Z, i * K, K);
      for (let j = 0; j < K; j++) {
        kl += q[j]! * Math.log(q[j]! / p[j]!);
        maxAbs = Math.max(maxAbs, Math.abs(p[j]! - q[j]!));
      }
      if (LABELS[i]! >= 0) {
        const mOk = predD[i] === LABELS[i];
        const rOk = WANT_PRED[i] === LABELS[i];
        if (rOk && !mOk) b++;
        if (mOk && !rOk) c++;
      }
    }
    expect(agreed).toBeLessThan(N); // the damage changes a prediction
    const model = linearClassifier(damaged);
    const ref = linearClassifier(SPEC);
    const io = describeClassifier(model, { label: 'm' });
    const [sm, sr] = await Promise.all([createSession(encodeModel(model), { provider: 'cpu', threads: 1 }), createSession(encodeModel(ref), { provider: 'cpu', threads: 1 })]);
    try {
      const r = await compareClassifiers(sessionClassifier(sm, io, { batchSize: 2, label: 'm' }), sessionClassifier(sr, io, { batchSize: 8, label: 'r' }), batches(4));
      expect(r.comparison.agreed).toBe(agreed);
      expect(r.comparison.meanKl).toBeCloseTo(kl / N, 6);
      expect(r.comparison.maxAbsProbDiff).toBeCloseTo(maxAbs, 6);
      const pd = r.comparison.paired!;
      expect([pd.referenceOnly, pd.modelOnly]).toEqual([b, c]);
      expect(pd.difference).toBeCloseTo((c - b) / 5, 15);
      expect(pd.difference).toBeCloseTo(r.model.accuracy!.top1 - r.reference.accuracy!.top1, 15);
      expect(pd.mcnemarP).toBe(mcnemarExactP(b, c));
    } finally {
      await Promise.all([sm.release(), sr.release()]);
    }
  });

  it('refuses models with different class counts', async () => {
    const two: LinearSpec = { W: SPEC.W.map((r) => r.slice(0, 2)), b: [0, 0] };
    const m3 = linearClassifier(SPEC);
    const m2 = linearClassifier(two);
    const [s3, s2] = await Promise.all([createSession(encodeModel(m3), { provider: 'cpu' }), createSession(encodeModel(m2), { provider: 'cpu' })]);
    try {
      const io = describeClassifier(m3, { label: 'm' });
      await expect(compareClassifiers(sessionClassifier(s3, io, { batchSize: 8, label: 'a' }), sessionClassifier(s2, io, { batchSize: 8, label: 'b' }), batches(6), { names: ['a.onnx', 'b.onnx'] })).rejects.toThrow(
        /b\.onnx has 2 classes but a\.onnx has 3/,
      );
    } finally {
      await Promise.all([s3.release(), s2.release()]);
    }
  });
});
