// trace-path on the real vit-mnist model (../shared; skipped when absent):
//  - completeness: over the first 100 MNIST test images, JAS(sum) of the found path is within a
//    few percent of F(clean) - F(path zeroed) at m = 20;
//  - every recorded score (top-5 candidates per layer, JAS of the path and of the baselines, the
//    completeness gap, remove/enhance ratios, the ig-layer and influence choices) agrees with the
//    slow, independent reference in ./reference.ts (forward passes + 4-point finite differences,
//    no gradient graph) on a few images;
//  - determinism (same report twice, timings aside) and batch independence (batch 1 vs 3 vs 16).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { readIdx, idxImages } from '../../src/data/idx.js';
import { tracePath, type TracePathOptions } from '../../src/services/tracePath.js';
import type { ImageResult } from '../../src/services/traceCore.js';
import { ForwardReference, editedProbability, igLayerScores, influenceScores, pathJas, searchScores } from './reference.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');
const IMAGES = path.resolve(ROOT, '../shared/data/mnist/t10k-images-idx3-ubyte.gz');
const M = 20;
/** Finite-difference step on a neuron row entry (activations are O(1)); see the tolerance note below. */
const H = 0.03;
/**
 * Relative tolerance between the report (float32 gradient graph, sums in float64) and the
 * reference (float64 softmax of float32 logits, 4-point differences). The reference's error is
 * the O(h^4) truncation plus the logits' float32 rounding (~1e-6 absolute) amplified by 1/h; at
 * h = 0.03 both stay below ~5e-4 of the scores here (measured: at h = 0.003 the rounding term
 * dominates, ~2e-3; at h = 0.01, ~1e-3; at h = 0.03, <= 4e-4). 2e-3 leaves a 4x margin and is still
 * well below the gaps between candidates that decide the path (typically >= 1e-2 relative).
 */
const RTOL = 2e-3;

const close = (got: number, want: number, rtol = RTOL, atol = 1e-9) => Math.abs(got - want) <= rtol * Math.abs(want) + atol;

function expectClose(got: number, want: number, what: string, rtol = RTOL, atol = 1e-9): void {
  if (!close(got, want, rtol, atol)) throw new Error(`${what}: report ${got} vs independent ${want} (rel ${((got - want) / want).toExponential(2)})`);
}

let tmp: string;
const base = (over: Partial<TracePathOptions>): TracePathOptions => ({
  model: MODEL,
  images: IMAGES,
  target: 'auto',
  objective: 'prob',
  steps: M,
  jas: 'product',
  baselines: ['activation', 'influence', 'ig-layer', 'random'],
  topK: 5,
  batch: 16,
  seed: 0,
  resume: false,
  force: true,
  provider: 'cpu',
  deviceId: 0,
  threads: 1,
  preprocess: {},
  ...over,
});

describe.skipIf(!fs.existsSync(MODEL) || !fs.existsSync(IMAGES))('trace-path on vit-mnist', () => {
  let full: ImageResult[]; // 100 images, path only, batch 16
  let small: { report: Awaited<ReturnType<typeof tracePath>>['report'] }; // 6 images, all baselines, batch 3
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-trace-mnist-'));
    full = (await tracePath(base({ limit: 100, baselines: [], out: path.join(tmp, 'full') }))).report.results.images;
    small = await tracePath(base({ limit: 6, batch: 3, out: path.join(tmp, 'small') }));
  }, 240_000);
  afterAll(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  it('completeness: JAS(sum) of the path is within a few percent of F(clean) - F(path zeroed) at m = 20', () => {
    expect(full).toHaveLength(100);
    const paths = full.map((r) => r.methods[0]!);
    const errSum = paths.reduce((a, p) => a + Math.abs(p.jasSum - p.completenessGap), 0);
    const gapSum = paths.reduce((a, p) => a + Math.abs(p.completenessGap), 0);
    // Aggregate relative error over the run, and per image wherever the gap is not negligible.
    expect(errSum / gapSum).toBeLessThan(0.05);
    const big = paths.filter((p) => Math.abs(p.completenessGap) > 1e-4);
    expect(big.length).toBeGreaterThan(20);
    const rel = big.map((p) => Math.abs(p.jasSum - p.completenessGap) / Math.abs(p.completenessGap)).sort((a, b) => a - b);
    expect(rel[Math.floor(rel.length / 2)]!).toBeLessThan(0.05);
    // The left Riemann sum is a first-order approximation: it is not exact (the test can fail).
    expect(errSum).toBeGreaterThan(0);
  });

  it('every score agrees with forward-only finite differences (top-5 per layer, JAS, gap, manipulations, baselines)', async () => {
    const loaded = loadModel(MODEL);
    const layout = await locateVit(loaded.proto, { label: MODEL });
    const ref = await ForwardReference.create(loaded.proto, layout, 28 * 28);
    const idx = idxImages(readIdx(IMAGES));
    try {
      for (const i of [0, 1, 2]) {
        const r = small.report.results.images[i]!;
        const x = Float32Array.from(idx.data.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
        const clean = await ref.run(x, [{ rows: [null, null, null, null] }]);
        const acts = clean.acts.map((a) => Float64Array.from(a));
        const p0 = ref.probs(clean.logits, r.target)[0]!;
        expectClose(r.pBase, p0, `image ${i} p_base`, 1e-6);
        const path = r.layers.map((c) => c.neuron);
        for (let l = 0; l < 4; l++) {
          const choice = r.layers[l]!;
          expect(choice.activation).toBe(Math.fround(acts[l]![choice.neuron]!));
          // The top 5 plus two outsiders: the largest activation and a fixed neuron not in the top 5.
          const top = choice.top.map((t) => t.neuron);
          const outsiders = [argmaxExcept(acts[l]!, top), [7, 8, 9].find((j) => !top.includes(j))!].filter((j, q, a) => a.indexOf(j) === q && !top.includes(j));
          const cands = [...top, ...outsiders];
          const s = await searchScores(ref, x, r.target, acts, path, l, cands, M, H);
          choice.top.forEach((t, c) => expectClose(t.score, s.product[c]!, `image ${i} layer ${l} candidate ${t.neuron}`));
          // The chosen neuron is the reference's argmax wherever the reference can tell them apart.
          for (let c = 1; c < cands.length; c++) {
            if (s.product[c]! > s.product[0]! + 2 * RTOL * Math.abs(s.product[0]!)) throw new Error(`image ${i} layer ${l}: candidate ${cands[c]} beats the chosen ${cands[0]} in the reference`);
          }
          // Outsiders score no better than the 5th recorded candidate.
          outsiders.forEach((_, q) => expect(s.product[top.length + q]!).toBeLessThanOrEqual(choice.top[4]!.score + 2 * RTOL * Math.abs(choice.top[4]!.score)));
        }
        for (const m of r.methods) {
          const j = await pathJas(ref, x, r.target, acts, m.path, M, H);
          expectClose(m.jasProduct, j.product, `image ${i} ${m.method} JAS product`, RTOL, 1e-8);
          expectClose(m.jasSum, j.sum, `image ${i} ${m.method} JAS sum`, RTOL, 1e-8);
          // The gap is a difference of two probabilities near 1: float32 F limits it to ~1e-7.
          expectClose(m.completenessGap, j.gap, `image ${i} ${m.method} gap`, 1e-3, 3e-7);
          expectClose(m.removeRatio, (await editedProbability(ref, x, r.target, m.path, 0)) / p0, `image ${i} ${m.method} remove`, 1e-5);
          expectClose(m.enhanceRatio, (await editedProbability(ref, x, r.target, m.path, 2)) / p0, `image ${i} ${m.method} enhance`, 1e-5);
        }
        const method = (name: string) => r.methods.find((m) => m.method === name)!.path;
        expect(method('activation')).toEqual(acts.map((a) => argmaxExcept(a, [])));
        // ig-layer and influence: the chosen neuron beats the path's top-5 candidates at that layer.
        for (let l = 0; l < 4; l++) {
          for (const [name, score] of [
            ['ig-layer', (c: number[]) => igLayerScores(ref, x, r.target, acts, l, c, M, H)],
            ['influence', (c: number[]) => influenceScores(ref, x, r.target, l, c, M, H)],
          ] as const) {
            const chosen = method(name)[l]!;
            const others = r.layers[l]!.top.map((t) => t.neuron).filter((j) => j !== chosen);
            const sc = await score([chosen, ...others]);
            for (let c = 1; c < sc.length; c++) {
              if (sc[c]! > sc[0]! + 2 * RTOL * Math.abs(sc[0]!) + 1e-12) throw new Error(`image ${i} ${name} layer ${l}: neuron ${others[c - 1]} beats the chosen ${chosen}`);
            }
          }
        }
      }
    } finally {
      await ref.release();
    }
  }, 120_000);

  it('--objective logit: the search scores agree with finite differences of the target logit', async () => {
    const rep = (await tracePath(base({ limit: 1, baselines: [], objective: 'logit', out: path.join(tmp, 'logit') }))).report;
    const r = rep.results.images[0]!;
    const loaded = loadModel(MODEL);
    const layout = await locateVit(loaded.proto, { label: MODEL });
    const ref = await ForwardReference.create(loaded.proto, layout, 28 * 28);
    ref.objective = 'logit';
    try {
      const x = Float32Array.from(idxImages(readIdx(IMAGES)).data.subarray(0, 784), (v) => v / 255);
      const clean = await ref.run(x, [{ rows: [null, null, null, null] }]);
      expectClose(r.fBase, clean.logits[r.target]!, 'f_base (the logit)', 1e-6);
      const acts = clean.acts.map((a) => Float64Array.from(a));
      const p = r.layers.map((c) => c.neuron);
      for (const l of [0, 3]) {
        const s = await searchScores(ref, x, r.target, acts, p, l, r.layers[l]!.top.map((t) => t.neuron), M, H);
        r.layers[l]!.top.forEach((t, c) => expectClose(t.score, s.product[c]!, `logit layer ${l} candidate ${t.neuron}`));
      }
      const j = await pathJas(ref, x, r.target, acts, p, M, H);
      expectClose(r.methods[0]!.jasSum, j.sum, 'logit JAS sum');
      expectClose(r.methods[0]!.completenessGap, j.gap, 'logit gap', 1e-4, 1e-5);
    } finally {
      await ref.release();
    }
  }, 120_000);

  it('is deterministic: the same run twice gives the same report apart from timings', async () => {
    const again = await tracePath(base({ limit: 6, batch: 3, out: path.join(tmp, 'small-again') }));
    const strip = (rep: typeof small.report) => {
      const { timings: _t, options: o, ...rest } = rep;
      const { imagesPerSecond: _s, ...results } = rest.results;
      return { ...rest, options: { ...o, out: undefined }, results };
    };
    expect(strip(again.report)).toEqual(strip(small.report));
    for (const f of ['paths.csv', 'images.csv', 'classes.csv', 'similarity.csv']) {
      expect(fs.readFileSync(path.join(tmp, 'small-again', f), 'utf8')).toBe(fs.readFileSync(path.join(tmp, 'small', f), 'utf8'));
    }
  }, 120_000);

  it('is batch independent: batch 1, 3 and 16 give each image the same path and scores', async () => {
    const one = (await tracePath(base({ limit: 6, batch: 1, out: path.join(tmp, 'batch1') }))).report.results.images;
    const three = small.report.results.images;
    for (let i = 0; i < 6; i++) {
      for (const other of [three[i]!, full[i]!]) {
        expect(other.id).toBe(one[i]!.id);
        expect(other.layers.map((c) => c.neuron)).toEqual(one[i]!.layers.map((c) => c.neuron));
        other.layers.forEach((c, l) => c.top.forEach((t, q) => expectClose(t.score, one[i]!.layers[l]!.top[q]!.score, `image ${i} layer ${l} top ${q}`, 1e-5)));
        expectClose(other.methods[0]!.jasProduct, one[i]!.methods[0]!.jasProduct, `image ${i} JAS`, 1e-5);
      }
      three[i]!.methods.forEach((m, q) => {
        expect(m.path).toEqual(one[i]!.methods[q]!.path);
        expectClose(m.removeRatio, one[i]!.methods[q]!.removeRatio, `image ${i} ${m.method} remove`, 1e-5);
      });
    }
  }, 120_000);
});

function argmaxExcept(a: ArrayLike<number>, skip: number[]): number {
  let best = -1;
  for (let j = 0; j < a.length; j++) if (!skip.includes(j) && (best < 0 || a[j]! > a[best]!)) best = j;
  return best;
}
