// probe-layers on models with known structure: blocks whose attention and MLP add nothing show
// redundancy 0, no ablation drop, zero IG mass and an unchanged logit lens; the lens at the last
// layer equals the model's own output (class-token, mean-pooled, and row readouts); the linear probe
// sits at chance on shuffled labels and near 100% on linearly separable features.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scoreLogits } from '../../src/analysis/classify.js';
import { analyseLayers, labelledSource, type AnalyseResult, type ImageBatch } from '../../src/services/probeLayers.js';
import { majorityChance, probeFeatures, tokenRows } from '../../src/services/probeMetrics.js';
import { layersCsvRows, layersChartSvg } from '../../src/services/probeFiles.js';
import { encodeModel, type LoadedModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { buildSyntheticVit, synthWeightSpecs, type SynthVitConfig } from '../../src/vit/synth.js';
import { locateVit } from '../../src/vit/locate.js';
import { createSession } from '../../src/runtime/session.js';
import { mulberry32, randomNormal, shuffleInPlace } from '../../src/analysis/stats.js';
import { VitpathError } from '../../src/errors.js';

function loadedOf(model: ModelProto): LoadedModel {
  const bytes = encodeModel(model);
  return { proto: model, path: '<memory>', sha256: createHash('sha256').update(bytes).digest('hex'), sizeBytes: bytes.length, externalFiles: [] };
}

function images(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * 784 }, () => r());
}

function batchesOf(data: Float32Array, labels: Int32Array, size: number): ImageBatch[] {
  const n = labels.length;
  const out: ImageBatch[] = [];
  for (let s = 0; s < n; s += size) {
    const c = Math.min(size, n - s);
    out.push({ data: data.slice(s * 784, (s + c) * 784), dims: [c, 1, 28, 28], labels: labels.slice(s, s + c) });
  }
  return out;
}

async function modelLogits(model: ModelProto, data: Float32Array, n: number): Promise<Float32Array> {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    return (await s.run({ input: { data, dims: [n, 1, 28, 28] } }, ['logits'])).logits!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** Weights of `cfg` with the attention projection and fc2 of `blocks` set to zero (those blocks add nothing). */
function identityBlocks(cfg: Partial<SynthVitConfig>, blocks: number[]): Record<string, Float32Array> {
  const base = buildSyntheticVit(cfg).weights;
  const w = { ...base };
  const dims = new Map(synthWeightSpecs(cfg).map((s) => [s.name, s.dims]));
  for (const l of blocks) {
    for (const p of [`block.${l}.attn.proj`, `block.${l}.fc2`]) {
      for (const s of ['weight', 'bias']) w[`${p}.${s}`] = new Float32Array(dims.get(`${p}.${s}`)!.reduce((a, b) => a * b, 1));
    }
  }
  return w;
}

const RT = { provider: 'cpu' as const, threads: 1 };

describe('a model whose later blocks are identity', () => {
  const cfg: Partial<SynthVitConfig> = { depth: 4, width: 32, ffn: 64, seed: 21 };
  const sv = buildSyntheticVit({ ...cfg, weights: identityBlocks(cfg, [2, 3]) });
  const layout = locateVit(sv.model);
  const n = 30;
  const data = images(n, 4);

  it('shows redundancy 0, no ablation drop, no IG mass and a constant lens for those blocks', async () => {
    // Labels: the model's own predictions for half, random for the rest (accuracy well inside (0, 1)).
    const logits = await modelLogits(sv.model, data, n);
    const r = mulberry32(9);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? argmaxRow(logits, i, 10) : Math.floor(r() * 10)));
    const a = await analyseLayers(loadedOf(sv.model), layout, batchesOf(data, labels, 8), n, { ...{ runtime: RT }, folds: 3, igSteps: 8, batch: 8 });
    const L = a.results.layers;
    expect(L).toHaveLength(4);
    for (const l of [0, 1]) {
      expect(L[l]!.redundancy.attention).toBeGreaterThan(1e-3);
      expect(L[l]!.redundancy.mlp).toBeGreaterThan(1e-3);
      expect(L[l]!.neurons.igMass!).toBeGreaterThan(0);
    }
    // Ablating a real branch changes the true-class probability of some images.
    expect(Math.max(...[0, 1].flatMap((l) => [Math.abs(L[l]!.ablation.attention.trueProbDrop), Math.abs(L[l]!.ablation.mlp.trueProbDrop)]))).toBeGreaterThan(1e-4);
    for (const l of [2, 3]) {
      const x = L[l]!;
      expect(x.redundancy.attention).toBeLessThan(1e-6);
      expect(x.redundancy.mlp).toBeLessThan(1e-6);
      expect(x.redundancy.block).toBeLessThan(1e-6);
      expect(x.ablation.attention.accuracyDrop).toBe(0);
      expect(x.ablation.mlp.accuracyDrop).toBe(0);
      expect(Math.abs(x.ablation.attention.trueProbDrop)).toBeLessThan(1e-6);
      expect(Math.abs(x.ablation.mlp.trueProbDrop)).toBeLessThan(1e-6);
      expect(x.neurons.igMass).toBe(0); // fc2 = 0: the neurons cannot move the output
      expect(x.logitLens.accuracy).toBe(L[1]!.logitLens.accuracy);
      expect(x.logitLens.meanTrueProb).toBeCloseTo(L[1]!.logitLens.meanTrueProb, 6);
      expect(x.probe.accuracy).toBe(L[1]!.probe.accuracy); // same features, same folds
    }
    // The lens at the last layer is the model's own output.
    const own = scoreLogits(logits, n, 10, labels);
    expect(L[3]!.logitLens.accuracy).toBe(own.correct / n);
    expect(L[3]!.logitLens.meanTrueProb).toBeCloseTo(own.probSum / n, 6);
    expect(L[3]!.logitLens.meanKl).toBeLessThan(1e-9);
    expect(a.results.model.accuracy).toBe(own.correct / n);
    expect(a.results.ablationBaseline.accuracy).toBe(own.correct / n);
    // IG completeness: sum_j IG_j ~ P(row) - P(0) (8 right-Riemann steps).
    for (const l of [0, 1]) expect(L[l]!.neurons.completenessGap!).toBeLessThan(0.25 * Math.abs(L[l]!.neurons.igSum!) + 1e-4);
    // Files: one CSV row per layer and family; the chart has one polyline per curve at least.
    const rows = layersCsvRows(a.results);
    expect(rows).toHaveLength(4 * 9);
    expect(rows.filter((x) => x.family === 'redundancy_block').map((x) => x.layer)).toEqual([0, 1, 2, 3]);
    const svg = await layersChartSvg(a.results);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('logit-lens accuracy');
    // One line mark per curve (6 series), one point per finite value.
    expect((svg.match(/<path[^>]*aria-roledescription="line mark"/g) ?? []).length).toBe(6);
  });
});

function argmaxRow(a: Float32Array, i: number, k: number): number {
  let b = 0;
  for (let c = 1; c < k; c++) if (a[i * k + c]! > a[i * k + b]!) b = c;
  return b;
}

describe('the logit lens at the last layer is the model output', () => {
  const cases = [
    { name: 'class token, tokens input', cfg: { head: 'cls' as const, seed: 2 }, token: undefined, lens: 'tokens' },
    { name: 'mean pooling, tokens input', cfg: { head: 'mean' as const, seed: 3, linear: 'gemm' as const }, token: undefined, lens: 'tokens' },
    { name: 'class token read as row 0', cfg: { head: 'cls' as const, seed: 4 }, token: 0, lens: 'row' },
  ];
  it.each(cases)('$name', async ({ cfg, token, lens }) => {
    const sv = buildSyntheticVit({ ...cfg, depth: 2, width: 32, ffn: 64 });
    const layout = locateVit(sv.model);
    const n = 12;
    const data = images(n, 7);
    const logits = await modelLogits(sv.model, data, n);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? (argmaxRow(logits, i, 10) + 1) % 10 : argmaxRow(logits, i, 10)));
    const a = await analyseLayers(loadedOf(sv.model), layout, batchesOf(data, labels, 5), n, { runtime: RT, folds: 2, attribution: false, batch: 5, token });
    expect(a.results.lensInput).toBe(lens);
    const last = a.results.layers[1]!.logitLens;
    const own = scoreLogits(logits, n, 10, labels);
    expect(last.accuracy).toBe(own.correct / n);
    expect(last.meanTrueProb).toBeCloseTo(own.probSum / n, 6);
    expect(last.meanKl).toBeLessThan(1e-9);
    expect(a.results.layers[0]!.logitLens.meanKl).toBeGreaterThan(1e-4);
    expect(a.results.neuronSettings.igSteps).toBeNull();
    expect(a.results.layers[0]!.neurons.igMass).toBeNull();
  });
});

/**
 * Six synthetic images (3 per batch) on a synthetic ViT of `depth` blocks: a run of the attribution
 * (3 IG steps, 2 probe folds) with the given engine options.
 */
function igRun(depth: number, seed: number, dataSeed: number) {
  const sv = buildSyntheticVit({ depth, width: 32, ffn: 64, seed });
  const layout = locateVit(sv.model);
  const n = 6;
  const data = images(n, dataSeed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  return (o: { igEngines: 'per-layer' | 'shared'; igImages?: number }) =>
    analyseLayers(loadedOf(sv.model), layout, batchesOf(data, labels, 3), n, { runtime: RT, folds: 2, igSteps: 3, batch: 3, ...o });
}

describe('attribution engines', () => {
  it('one gradient graph per block gives the same IG as one graph for all blocks', async () => {
    const run = igRun(3, 12, 13);
    const [a, b] = await Promise.all([run({ igEngines: 'per-layer' }), run({ igEngines: 'shared' })]);
    expectSameIg(a, b, 3);
  });
});

/** The attribution figures of two analyses agree layer by layer (and are not all zero). */
function expectSameIg(a: AnalyseResult, b: AnalyseResult, layers: number): void {
  for (let l = 0; l < layers; l++) {
    const x = a.results.layers[l]!.neurons;
    const y = b.results.layers[l]!.neurons;
    expect(x.igMass!).toBeGreaterThan(0);
    expect(x.igMass!).toBeCloseTo(y.igMass!, 6);
    expect(x.igSum!).toBeCloseTo(y.igSum!, 6);
    expect(x.completenessGap!).toBeCloseTo(y.completenessGap!, 6);
  }
}

describe('attribution run size', () => {
  it('attribution runs of one image give the IG of runs of the whole batch (igImages)', async () => {
    const run = igRun(2, 21, 17);
    expectSameIg(await run({ igEngines: 'shared', igImages: 1 }), await run({ igEngines: 'shared', igImages: 3 }), 2);
  });
});

describe('linear probe', () => {
  function blobs(n: number, d: number, classes: number, sep: number, seed: number) {
    const r = mulberry32(seed);
    const centers = Array.from({ length: classes }, () => Array.from({ length: d }, () => randomNormal(r) * sep));
    const y = Int32Array.from({ length: n }, (_, i) => i % classes);
    const X = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = centers[y[i]!]![j]! + randomNormal(r);
    return { X, y };
  }

  it('reaches near 100% on linearly separable features', () => {
    const { X, y } = blobs(300, 16, 5, 4, 1);
    const p = probeFeatures(X, y, 300, 16, 5, { folds: 5, seed: 0, l2: 1e-3 });
    expect(p.accuracy).toBeGreaterThan(0.98);
    expect(p.folds).toHaveLength(5);
  });

  it('sits at chance on shuffled labels', () => {
    const { X, y } = blobs(500, 16, 5, 4, 2);
    const shuffled = shuffleInPlace(Int32Array.from(y), mulberry32(3));
    const p = probeFeatures(X, shuffled, 500, 16, 5, { folds: 5, seed: 0, l2: 1e-3 });
    const chance = majorityChance(shuffled, 5);
    expect(chance).toBeCloseTo(0.2, 6);
    expect(Math.abs(p.accuracy - chance)).toBeLessThan(0.06);
  });

  it('is deterministic by seed', () => {
    const { X, y } = blobs(100, 8, 4, 1, 5);
    const a = probeFeatures(X, y, 100, 8, 4, { folds: 4, seed: 7, l2: 1e-3 });
    const b = probeFeatures(X, y, 100, 8, 4, { folds: 4, seed: 7, l2: 1e-3 });
    expect(a).toEqual(b);
  });
});

describe('helpers', () => {
  it('tokenRows takes one row or the mean of rows', () => {
    // b=2, T=3, D=2: x[i,t,j] = 100 i + 10 t + j
    const x = Float32Array.from({ length: 12 }, (_, k) => 100 * Math.floor(k / 6) + 10 * Math.floor((k % 6) / 2) + (k % 2));
    expect(Array.from(tokenRows(x, 2, 3, 2, { kind: 'row', row: 1 }))).toEqual([10, 11, 110, 111]);
    expect(Array.from(tokenRows(x, 2, 3, 2, { kind: 'mean', rows: [1, 2] }))).toEqual([15, 16, 115, 116]);
  });

  it('labels are required: unlabelled images are exit 2 with the fix in the message', () => {
    let err: unknown;
    try {
      labelledSource({ images: 'fixtures/images' }, 10);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/fixtures\/images carries no labels.*--labels/);
    const src = labelledSource({ images: 'fixtures/images', labels: 'fixtures/images/labels.csv', limit: 5 }, 10);
    expect(src.items).toHaveLength(5);
    expect(() => labelledSource({ images: 'fixtures/images', labels: 'fixtures/images/labels.csv' }, 5)).toThrow(/outside the model's classes/);
  });
});
