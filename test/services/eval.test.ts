// The eval service on fixtures: the report against its schema and against evaluateClassifier run
// directly, float16 and int8 QDQ copies of a model (precision, agreement), fixed batch sizes (no
// batch-1 latency), unlabelled images, the checks, and inputs refused before any output exists.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkEvalOptions, checkFailure, classRows, confusionRows, evaluateChecks, evaluateModels, metricRows, runEval, type EvalOptions } from '../../src/services/eval.js';
import { evalResultsSchema } from '../../src/services/evalSchema.js';
import { evaluateClassifier, sessionClassifier } from '../../src/services/evaluate.js';
import { describeClassifier } from '../../src/onnx/classifier.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { createSession } from '../../src/runtime/session.js';
import { discoverImages } from '../../src/data/sources.js';
import { iterateBatches } from '../../src/data/dataset.js';
import { inferPreprocess } from '../../src/data/preprocess.js';
import { wilsonInterval } from '../../src/analysis/intervals.js';
import { buildSyntheticVit } from '../../src/vit/synth.js';
import { withFloat16Weights, withInt8QdqWeights } from '../helpers/precision.js';

const ROOT = path.resolve(__dirname, '../..');
const DIGITS_VIT = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
const DIGITS = path.join(ROOT, 'fixtures/digits');
const FIXTURE = path.join(ROOT, 'fixtures/models/erf-ln-matmul.onnx');
const IMAGES = path.join(ROOT, 'fixtures/images');
const RT = { provider: 'cpu' as const, threads: 1 };
const FAST: Partial<EvalOptions> = { runtime: RT, warmup: 1, repeat: 2, batch: 8 };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-eval-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function save(name: string, m: Parameters<typeof saveModel>[0]): string {
  const p = path.join(tmp, name);
  saveModel(m, p, { force: true });
  return p;
}

describe('evaluateModels on the digits ViT and its 40 held-out digits', () => {
  it('reports what evaluateClassifier computes directly, with the Wilson interval, per-class rows and model facts', async () => {
    const { report, evaluations } = await evaluateModels(DIGITS_VIT, { images: DIGITS, ...FAST });
    expect(evalResultsSchema.safeParse(report.results).success).toBe(true);
    const r = report.results;
    // Direct: the same images through a session and evaluateClassifier.
    const loaded = loadModel(DIGITS_VIT);
    const io = describeClassifier(loaded.proto, { label: 'm' });
    const src = discoverImages(DIGITS);
    const s = await createSession(DIGITS_VIT, RT);
    const direct = await evaluateClassifier(sessionClassifier(s, io, { batchSize: 40, label: 'm' }), iterateBatches(src.items, inferPreprocess(io.inputDims), 40));
    await s.release();
    const a = r.model.accuracy!;
    expect(a.correct).toBe(direct.accuracy!.correct);
    expect(a.labelled).toBe(40);
    expect(a.top1Interval).toEqual(wilsonInterval(a.correct, 40));
    expect(a.meanTrueProb).toBe(direct.accuracy!.meanTrueProb);
    expect(Array.from(evaluations[0]!.predictions)).toEqual(Array.from(direct.predictions));
    expect(r.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(a.perClass.map((c) => c.count)).toEqual(Array(10).fill(4));
    expect(r.model.facts).toMatchObject({ precision: 'float32', batch: 'dynamic', input: { name: 'input', type: 'float32' }, output: { name: 'logits', scores: 'logits' } });
    expect(r.model.facts.bytes.total).toBe(fs.statSync(DIGITS_VIT).size);
    // Latency: warm-up 1, 2 timed runs at batch 1 and at batch 8.
    const l = r.model.latency!;
    expect(l.batch1!.runs).toBe(2);
    expect(l.batched.batch).toBe(8);
    expect(l.batched.imagesPerSecond).toBeCloseTo(8 / (l.batched.medianMs / 1000), 9);
    expect(r.reference).toBeNull();
    expect(r.checks).toEqual([]);
    // Files: one metric row per model and metric, 10 class rows, confusion cells summing to 40.
    const rows = metricRows(r);
    expect(rows.find((x) => x.metric === 'top1')).toMatchObject({ model: 'model', value: a.top1, ci_low: a.top1Interval.low, ci_high: a.top1Interval.high });
    expect(classRows(r)).toHaveLength(10);
    expect(classRows(r)[3]).toMatchObject({ model: 'model', class: 3, name: '3', count: 4 });
    expect(confusionRows(evaluations).reduce((t, c) => t + Number(c.count), 0)).toBe(40);
  });

  it('its parameter count is the trained model\'s recorded one', async () => {
    const info = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures/models/digits-vit.json'), 'utf8'));
    const { report } = await evaluateModels(DIGITS_VIT, { images: DIGITS, ...FAST, latency: false });
    expect(report.results.model.facts.parameters).toBe(info.parameters);
    expect(report.results.model.latency).toBeNull();
  });

  it('evaluates float16 and int8 QDQ copies against the float32 model', async () => {
    const f32 = loadModel(DIGITS_VIT).proto;
    for (const [name, m, precision] of [
      ['f16.onnx', withFloat16Weights(f32), 'float16'],
      ['int8.onnx', withInt8QdqWeights(f32), 'int8-qdq'],
    ] as const) {
      const file = save(name, m);
      const { report } = await evaluateModels(file, { images: DIGITS, compare: DIGITS_VIT, ...FAST, latency: false });
      const r = report.results;
      expect(r.model.facts.precision).toBe(precision);
      expect(r.reference!.facts.precision).toBe('float32');
      expect(r.model.facts.parameters).toBe(r.reference!.facts.parameters);
      expect(r.model.facts.bytes.total).toBeLessThan(r.reference!.facts.bytes.total);
      const c = r.comparison!;
      expect(c.agreement).toBeGreaterThanOrEqual(0.95);
      expect(c.meanKl).toBeGreaterThan(0); // the weights did change
      expect(c.maxAbsProbDiff).toBeGreaterThan(0);
      const d = c.accuracyDifference!;
      expect(d.difference).toBeCloseTo(r.model.accuracy!.top1 - r.reference!.accuracy!.top1, 15);
    }
  });
});

describe('evaluateModels on real torchvision exports whose stored shapes break batches (services/prepareModel.ts)', () => {
  const TV = path.join(ROOT, 'fixtures/exports/torchvision');
  const LABELS = path.join(IMAGES, 'labels.csv');
  // [file, what the preparation finds, what runs]: stale batch-1 value_info, shape constants baked at
  // batch 1 (rewritten), a reshape vitpath cannot rewrite (one image at a time), and a clean export.
  const cases = [
    ['tv-vit-op14-stale.onnx', 'dynamic', 'prepared'],
    ['tv-vit-op17-baked.onnx', 'rewritten', 'prepared'],
    ['tv-vit-op14-flat.onnx', 'one-at-a-time', 'prepared'],
    ['tv-vit-op14.onnx', 'dynamic', 'file'],
  ] as const;
  it.each(cases)('%s at --batch 4: the probabilities of one-image runs of the file itself (batch %s, runs the %s)', async (name, batch, ran) => {
    const file = path.join(TV, name);
    const notices: string[] = [];
    const { report, evaluations } = await evaluateModels(file, { images: IMAGES, labels: LABELS, ...FAST, batch: 4, latency: false, notice: (l) => notices.push(l) });
    const r = report.results;
    expect(evalResultsSchema.safeParse(r).success).toBe(true);
    expect(r.model.preparation).toMatchObject({ batch, ran });
    expect(notices.some((l) => l.includes(name) && /prepared copy|one image at a time/.test(l))).toBe(ran === 'prepared');
    // Independent: the file as it is in a plain session, one image per run (which every export allows).
    const loaded = loadModel(file);
    const io = describeClassifier(loaded.proto, { label: name });
    const src = discoverImages(IMAGES, { labels: LABELS });
    const spec = inferPreprocess(io.inputDims);
    const s = await createSession(file, RT);
    try {
      const direct = await evaluateClassifier(sessionClassifier(s, io, { batchSize: 1, label: name }), iterateBatches(src.items, spec, 1));
      expect(Array.from(evaluations[0]!.predictions)).toEqual(Array.from(direct.predictions));
      for (let i = 0; i < direct.count; i++) expect(Math.abs(evaluations[0]!.trueProbabilities[i]! - direct.trueProbabilities[i]!)).toBeLessThan(1e-6);
      expect(r.model.accuracy!.correct).toBe(direct.accuracy!.correct);
      expect(r.model.sha256).toBe(loaded.sha256);
      if (ran === 'prepared') {
        // The file as it is fails on a batch of 4 in ONNX Runtime, which is why the prepared copy runs.
        const four = (await iterateBatches(src.items.slice(0, 4), spec, 4).next()).value!;
        await expect(sessionClassifier(s, io, { batchSize: 4, label: name }).logits({ data: four.data, dims: four.dims })).rejects.toThrow();
      }
    } finally {
      await s.release();
    }
  });
});

describe('evaluateModels: batch sizes, labels and refusals', () => {
  it('a fixed batch of 4: evaluates every image, no batch-1 latency, throughput at batch 4, a notice', async () => {
    const file = save('fixed4.onnx', buildSyntheticVit({ batch: 4, seed: 5 }).model);
    const dyn = save('dyn.onnx', buildSyntheticVit({ batch: 'dynamic', seed: 5 }).model);
    const notices: string[] = [];
    const { report } = await evaluateModels(file, { images: DIGITS, limit: 10, compare: dyn, ...FAST, notice: (l) => notices.push(l) });
    const r = report.results;
    expect(r.model.facts.batch).toBe(4);
    expect(r.model.latency!.batch1).toBeNull();
    expect(r.model.latency!.batched.batch).toBe(4);
    expect(r.reference!.latency!.batched.batch).toBe(8);
    expect(notices.some((l) => /fixed batch size of 4/.test(l))).toBe(true);
    // Same weights, fixed vs dynamic batch: the same predictions on all 10 images (10 = 4 + 4 + 2 padded).
    expect(r.comparison!.agreed).toBe(10);
    expect(r.comparison!.maxAbsProbDiff).toBeLessThan(1e-5);
    expect(r.comparison!.speedup).toBeGreaterThan(0);
  });

  it('unlabelled images: no accuracy, a notice, comparison without the paired difference', async () => {
    const notices: string[] = [];
    const { report } = await evaluateModels(FIXTURE, { images: IMAGES, compare: FIXTURE, ...FAST, latency: false, notice: (l) => notices.push(l) });
    const r = report.results;
    expect(r.images.labelled).toBe(0);
    expect(r.model.accuracy).toBeNull();
    expect(r.comparison).toMatchObject({ agreed: r.images.count, agreement: 1, meanKl: 0, maxAbsProbDiff: 0, accuracyDifference: null });
    expect(notices.some((l) => /carry no labels/.test(l))).toBe(true);
  });

  it('partly labelled images: accuracy over the labelled ones, with a notice', async () => {
    const csv = path.join(tmp, 'some.csv');
    fs.writeFileSync(csv, 'file,label\ngray-28x28-bar.png,1\ngray-28x28-ring.png,0\n');
    const notices: string[] = [];
    const { report } = await evaluateModels(FIXTURE, { images: IMAGES, labels: csv, ...FAST, latency: false, notice: (l) => notices.push(l) });
    expect(report.results.model.accuracy!.labelled).toBe(2);
    expect(notices.some((l) => /6 of the 8 images have no label/.test(l))).toBe(true);
  });

  it('refuses, before any output: --max-drop without --compare (1), a check without labels (2), different input sizes (2), bad labels (2)', async () => {
    const out = path.join(tmp, 'never');
    const run = (o: Partial<EvalOptions>, model = FIXTURE) => runEval(model, { images: IMAGES, ...FAST, out, ...o });
    await expect(run({ maxDrop: 1 })).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/--max-drop needs --compare/) });
    await expect(run({ minAccuracy: 50 })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/carries no labels, so --min-accuracy cannot be checked/) });
    await expect(run({ compare: path.join(ROOT, 'fixtures/models/decomposed-gemm-tanh.onnx') })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/takes 1x16x16 images but .* takes 1x28x28/) });
    const bad = path.join(tmp, 'bad.csv');
    fs.writeFileSync(bad, 'gray-28x28-bar.png,12\n');
    await expect(run({ labels: bad })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/label 12, outside the model's classes 0..9/) });
    expect(fs.existsSync(out)).toBe(false);
  });

  it('checks option values', () => {
    expect(checkEvalOptions({ images: 'x' })).toEqual({ batch: 32, warmup: 3, repeat: 20, latency: true });
    expect(() => checkEvalOptions({ images: 'x', repeat: 0 })).toThrow(/--repeat/);
    expect(() => checkEvalOptions({ images: 'x', minAccuracy: 101 })).toThrow(/--min-accuracy/);
  });
});

describe('evaluateChecks / checkFailure', () => {
  const model = (correct: number, n: number) => ({ accuracy: { top1: correct / n } }) as never;
  const cmp = (d: number) => ({ accuracyDifference: { difference: d } }) as never;
  it('min-accuracy is in percent and passes at equality (9773/10000 vs 97.73)', () => {
    expect(evaluateChecks({ minAccuracy: 97.73 }, { model: model(9773, 10000), comparison: null })).toEqual([{ check: 'min-accuracy', threshold: 97.73, value: (9773 / 10000) * 100, passed: true }]);
    expect(evaluateChecks({ minAccuracy: 97.74 }, { model: model(9773, 10000), comparison: null })[0]!.passed).toBe(false);
  });
  it('max-drop is in points of reference minus model and passes at equality', () => {
    expect(evaluateChecks({ maxDrop: 0 }, { model: model(1, 2), comparison: cmp(0) })[0]).toMatchObject({ value: 0, passed: true });
    expect(evaluateChecks({ maxDrop: 0.5 }, { model: model(1, 2), comparison: cmp(-0.005) })[0]).toMatchObject({ passed: true });
    expect(evaluateChecks({ maxDrop: 0.49 }, { model: model(1, 2), comparison: cmp(-0.005) })[0]).toMatchObject({ passed: false });
    expect(evaluateChecks({ maxDrop: 0 }, { model: model(1, 2), comparison: cmp(0.01) })[0]).toMatchObject({ value: -1, passed: true }); // a gain
  });
  it('a failed check is exit 5 naming the model and the numbers', () => {
    const report = { model: { path: 'm.onnx' }, results: { checks: [{ check: 'max-drop', threshold: 0.1, value: 0.25, passed: false }] } } as never;
    const e = checkFailure(report, 'out/')!;
    expect(e.exitCode).toBe(5);
    expect(e.message).toBe('m.onnx: top-1 accuracy dropped 0.25 points against the reference, more than --max-drop 0.1 (reports in out/)');
    expect(checkFailure({ model: { path: 'm' }, results: { checks: [{ passed: true }] } } as never)).toBeNull();
  });
});
