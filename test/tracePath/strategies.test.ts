// Every search strategy on hand-built models with a known answer: the planted-path models (class token and
// mean pooling) and the negative-activation decoy model (decoy.ts), through the trace-path service on
// ONNX Runtime. Greedy with JAS product misses the decoy model's planted path; the sum form and the effect
// search find it; beam of width 1 reproduces the paper's greedy on the real graph; search baselines and
// their costs appear in the report.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPlantedVit, plantedImage, PLANTED } from './planted.js';
import { buildDecoyVit, DECOY_GREEDY, DECOY_PLANTED } from './decoy.js';
import { saveModel, loadModel } from '../../src/onnx/model.js';
import { encodePng } from '../../src/data/png.js';
import { tracePath, type TracePathOptions } from '../../src/services/tracePath.js';
import type { ImageResult } from '../../src/services/traceCore.js';
import { buildContexts } from '../../src/services/traceCore.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import { locateVit } from '../../src/vit/locate.js';
import { searchPaths } from '../../src/analysis/pathSearch.js';
import { beamSearch } from '../../src/analysis/beamSearch.js';
import { VitpathError } from '../../src/errors.js';

let tmp: string;
const BRIGHT = [250, 225, 200];

function options(model: string, out: string, over: Partial<TracePathOptions> = {}): TracePathOptions {
  return {
    model: path.join(tmp, model),
    images: path.join(tmp, 'images'),
    target: 'auto',
    objective: 'prob',
    steps: 20,
    jas: 'product',
    baselines: [],
    topK: 5,
    batch: 4,
    seed: 0,
    resume: false,
    out: path.join(tmp, out),
    force: true,
    provider: 'cpu',
    deviceId: 0,
    threads: 1,
    preprocess: {},
    ...over,
  };
}

const bright = (rs: ImageResult[]) => rs.filter((r) => r.label === 0);
const method = (r: ImageResult, m: string) => r.methods.find((x) => x.method === m)!;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-strategies-'));
  saveModel(buildPlantedVit('cls').model, path.join(tmp, 'planted.onnx'));
  saveModel(buildPlantedVit('mean').model, path.join(tmp, 'planted-mean.onnx'));
  saveModel(buildDecoyVit().model, path.join(tmp, 'decoy.onnx'));
  fs.mkdirSync(path.join(tmp, 'images/0'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'images/1'), { recursive: true });
  BRIGHT.forEach((v, i) => fs.writeFileSync(path.join(tmp, `images/0/b${i}.png`), encodePng(8, 8, 1, plantedImage(v, i))));
  fs.writeFileSync(path.join(tmp, 'images/1/black.png'), encodePng(8, 8, 1, plantedImage(0, 0)));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const STRATEGIES: [string, Partial<TracePathOptions>][] = [
  ['greedy product', { search: 'greedy', score: 'product' }],
  ['greedy sum', { search: 'greedy', score: 'sum' }],
  ['beam 3 (sum, its default)', { search: 'beam', beam: 3 }],
  ['beam 3 sum', { search: 'beam', beam: 3, score: 'sum' }],
  ['effect, 3 candidates', { search: 'effect', candidates: 3 }],
  ['effect, every neuron', { search: 'effect', candidates: 8 }],
  ['effect, ig pre-filter', { search: 'effect', candidates: 2, prefilter: 'ig' }],
  ['beam 2 on effect', { search: 'beam', beam: 2, score: 'effect', candidates: 4 }],
  ['greedy on effect', { search: 'greedy', score: 'effect', candidates: 2 }],
];

describe('every strategy finds the planted path', () => {
  for (const model of ['planted.onnx', 'planted-mean.onnx']) {
    for (const [name, over] of STRATEGIES) {
      it(`${model}: ${name}`, async () => {
        const { report } = await tracePath(options(model, `${model}-${name}`, over));
        const rs = bright(report.results.images as ImageResult[]);
        expect(rs).toHaveLength(BRIGHT.length);
        for (const r of rs) {
          expect(r.layers.map((c) => c.neuron)).toEqual(PLANTED);
          expect(method(r, 'path').removeRatio).toBeLessThan(0.1);
        }
      }, 60_000);
    }
  }
});

describe('the product form of JAS under a wider search', () => {
  it('beam on product ranks the activation decoy (large activation, no way out) above the planted neuron', async () => {
    // (Σw)(Σg) rewards a neuron with a large activation and zero gradient through the other neurons'
    // gradients; greedy escapes by myopia, a beam keeping the decoy's partial path finds the higher product.
    const { report } = await tracePath(options('planted.onnx', 'beam-product', { search: 'beam', beam: 3, score: 'product', baselines: ['greedy'] }));
    for (const r of bright(report.results.images as ImageResult[])) {
      const b = method(r, 'path');
      const g = method(r, 'greedy');
      expect(g.path).toEqual(PLANTED);
      expect(b.path).not.toEqual(PLANTED);
      expect(b.jasProduct).toBeGreaterThan(g.jasProduct); // the beam did maximise its score ...
      expect(b.removeRatio).toBeGreaterThan(g.removeRatio); // ... and the path matters less
      expect(b.jasSum).toBeLessThan(g.jasSum);
    }
  }, 60_000);
});

describe('the negative-activation decoy', () => {
  it('greedy with JAS product picks the decoy; its removal does nothing beyond the first neuron', async () => {
    const { report } = await tracePath(options('decoy.onnx', 'decoy-greedy', { baselines: ['effect'] }));
    for (const r of bright(report.results.images as ImageResult[])) {
      expect(r.pred).toBe(0);
      expect(r.layers.map((c) => c.neuron)).toEqual(DECOY_GREEDY);
      expect(r.layers[0]!.activation).toBeLessThan(0);
      expect(r.layers[1]!.activation).toBeLessThan(0); // the decoy sits on GELU's negative side
      const g = method(r, 'path');
      const e = method(r, 'effect');
      expect(e.path).toEqual(DECOY_PLANTED);
      // The planted path removes more of the target probability and has the larger JAS(sum).
      expect(e.removeRatio).toBeLessThan(g.removeRatio - 0.05);
      expect(e.jasSum).toBeGreaterThan(g.jasSum);
      // ... while the product form ranks the decoy path higher: the reason greedy chose it.
      expect(g.jasProduct).toBeGreaterThan(e.jasProduct);
    }
  }, 60_000);

  for (const [name, over] of [
    ['effect search', { search: 'effect' }],
    ['effect search, 2 candidates', { search: 'effect', candidates: 2 }],
    ['greedy on JAS sum', { score: 'sum' }],
  ] as [string, Partial<TracePathOptions>][]) {
    it(`${name} finds the planted path`, async () => {
      const { report } = await tracePath(options('decoy.onnx', `decoy-${name}`, over));
      for (const r of bright(report.results.images as ImageResult[])) expect(r.layers.map((c) => c.neuron)).toEqual(DECOY_PLANTED);
    }, 60_000);
  }

  it('beam of width 1 equals the paper greedy on the real gradient graph (ONNX Runtime)', async () => {
    const loaded = loadModel(path.join(tmp, 'decoy.onnx'));
    const layout = locateVit(loaded.proto, { label: 'decoy' });
    const oracle = await OrtNeuronOracle.create(loaded, layout, { layers: [0, 1], token: 'cls', objective: 'prob', provider: 'cpu', threads: 1 });
    try {
      const x = new Float32Array(BRIGHT.length * 64);
      BRIGHT.forEach((v, i) => plantedImage(v, i).forEach((b, j) => (x[i * 64 + j] = b / 255)));
      const { ctxs } = await buildContexts(oracle, { input: x, ids: BRIGHT.map(String), labels: BRIGHT.map(() => 0) }, 'label', 'prob');
      for (const jas of ['product', 'sum'] as const) {
        const g = await searchPaths(oracle, ctxs, { steps: 10, jas, topK: 5 });
        const b = await beamSearch(oracle, ctxs, { steps: 10, score: jas, beam: 1, topK: 5 });
        expect(b.map((p) => p.map((c) => [c.neuron, c.score]))).toEqual(g.map((p) => p.map((c) => [c.neuron, c.score])));
      }
    } finally {
      await oracle.release();
    }
  }, 60_000);
});

describe('search options in the report', () => {
  it('records the search, compares search baselines like with like, and counts their samples', async () => {
    const { report } = await tracePath(options('planted.onnx', 'report', { search: 'effect', candidates: 3, baselines: ['greedy', 'beam', 'ig-layer'], beam: 2 }));
    const s = report.results.settings;
    expect(s.search).toEqual({ strategy: 'effect', score: 'effect', beam: 2, candidates: 3, prefilter: 'taylor' });
    expect(report.results.summary.map((m) => m.method)).toEqual(['path', 'greedy', 'beam', 'ig-layer']);
    const byMethod = Object.fromEntries(report.results.summary.map((m) => [m.method, m]));
    // 3 layers, m = 20: greedy 60 gradient samples; beam 2: 20 + 2·2·20; effect: 1 gradient + 3 ablations per layer.
    expect(byMethod.greedy!.meanGradSamples).toBe(60);
    expect(byMethod.beam!.meanGradSamples).toBe(100);
    expect(s.jas).toBe('product');
    expect(byMethod.path!.meanGradSamples).toBe(3);
    expect(byMethod.path!.meanForwardSamples).toBe(9);
    // ig-layer reuses the effect run's nothing (no first pass): L·m samples... minus the first layer taken from greedy's pass.
    expect(byMethod['ig-layer']!.meanGradSamples).toBe(40);
  }, 60_000);

  it('refuses contradictions with a usage error', async () => {
    await expect(tracePath(options('planted.onnx', 'bad1', { search: 'effect', score: 'product' }))).rejects.toThrow(/--search effect ranks neurons/);
    await expect(tracePath(options('planted.onnx', 'bad2', { search: 'greedy', baselines: ['greedy'] }))).rejects.toThrow(/is the path's own search/);
    await expect(tracePath(options('planted.onnx', 'bad3', { rule: 'trapezoid', steps: 1 }))).rejects.toThrow(VitpathError);
    await expect(tracePath(options('planted.onnx', 'bad4', { maxError: 0.1 }))).rejects.toThrow(/--max-error goes with --steps auto/);
  });
});
