// End to end on the trained vit-mnist model: gradients of F w.r.t. every block's class-token neuron
// overrides, run in ONNX Runtime, against central finite differences of the forward model; IG
// completeness; and batch independence. Skips when ../shared is absent.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { NeuronGradientEngine, type CleanResult } from '../../src/engine/gradientEngine.js';
import type { ViTLayout } from '../../src/vit/types.js';
import { VIT_MNIST } from '../rewrite/layouts.js';
import { MNIST_IMAGES, mnistImages } from '../rewrite/data.js';
import { ForwardF, probeNeurons, worstError } from './e2e-helpers.js';

// Numerical reference: Richardson-extrapolated central differences (4 D(h/2) - D(h)) / 3 with
// h = 0.4 (steps 0.4 and 0.2). The float32 forward adds ~1e-7 relative rounding noise to F, so plain
// central differences trade noise (~1e-7 F / h) against truncation (~h^2 F''' / 6) and bottom out at
// ~1.5e-3 worst error near h = 0.1..0.2 (2-6e-2 at h = 1e-2). Extrapolation removes the h^2 term, so
// a large step keeps the noise small: measured worst errors are 3e-4..1.1e-3 here and <= 2.8e-3 on
// every fixture (neurons are O(1): GELU outputs ~0.1..3). TOL = 1e-2 leaves a >= 3.5x margin; a
// wrong rule (a missing term, a transposed operand) gives errors of order 1.
const STEP = 0.4;
const TOL = 1e-2;
const FFN = 128;
const N = 4;

describe.skipIf(!fs.existsSync(VIT_MNIST) || !fs.existsSync(MNIST_IMAGES))('vit-mnist gradients end to end', () => {
  let loaded: LoadedModel;
  let layout: ViTLayout;
  let engine: NeuronGradientEngine;
  let images: Float32Array;
  let labels: number[];
  let clean: CleanResult;

  beforeAll(async () => {
    loaded = loadModel(VIT_MNIST);
    layout = locateVit(loaded.proto);
    engine = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu' });
    ({ images, labels } = mnistImages(N));
    clean = await engine.clean(images, N);
  });
  afterAll(async () => engine?.release());

  /** The most likely class other than the label: F is then far from 0 and 1 relative to float32 noise. */
  const runnerUp = (b: number) => {
    let best = -1;
    for (let k = 0; k < 10; k++) if (k !== labels[b] && (best < 0 || clean.logits[b * 10 + k]! > clean.logits[b * 10 + best]!)) best = k;
    return best;
  };
  const scaled = (alpha: number) => Object.fromEntries(engine.layers.map((l) => [l, clean.activations[l]!.map((x) => x * alpha)]));

  it('clean overrides reproduce the model: logits and F match the clean pass', async () => {
    const r = await engine.run(images, N, labels, clean.activations);
    // Not bit for bit: ONNX Runtime fuses ops (e.g. GELU, bias adds) in the clean graph that it
    // cannot fuse in the gradient graph, whose backward pass reads their intermediates. The
    // intervention rewrite itself is exact (test/rewrite/intervene.test.ts).
    const close = (a: Float32Array, b: Float32Array) => {
      const scale = Math.max(...b.map(Math.abs));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * scale);
    };
    close(r.logits, clean.logits);
    for (const l of engine.layers) close(r.activations[l]!, clean.activations[l]!);
    // F is the softmax probability of the label (the model classifies these digits correctly).
    for (let b = 0; b < N; b++) {
      const z = Array.from(clean.logits.subarray(b * 10, b * 10 + 10));
      const mx = Math.max(...z);
      const p = Math.exp(z[labels[b]!]! - mx) / z.reduce((s, v) => s + Math.exp(v - mx), 0);
      expect(r.F[b]).toBeCloseTo(p, 6);
    }
  });

  it.each([
    { name: 'prob, runner-up class, overrides at 0.6 x clean', kind: 'prob' as const, alpha: 0.6 },
    { name: 'logit, label class, overrides at 0.3 x clean', kind: 'logit' as const, alpha: 0.3 },
  ])('gradients of all 4 blocks agree with finite differences ($name)', async ({ kind, alpha }) => {
    const eng = kind === 'prob' ? engine : await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', objective: 'logit' });
    const targets = kind === 'prob' ? labels.map((_, b) => runnerUp(b)) : labels;
    const ov = scaled(alpha);
    const r = await eng.run(images, N, targets, ov);
    const fwd = await ForwardF.create(loaded, layout, { layers: [0, 1, 2, 3], objective: kind });
    // The independent forward model gives the same F.
    const f = await fwd.eval(images, N, targets, ov);
    for (let b = 0; b < N; b++) expect(r.F[b]).toBeCloseTo(f[b]!, 6);
    const probes = probeNeurons([0, 1, 2, 3], FFN, 8);
    const nd = await fwd.richardson(images, N, targets, ov, probes, STEP);
    await fwd.release();
    if (eng !== engine) await eng.release();
    console.log(`vit-mnist ${kind}: F ${Array.from(r.F).map((x) => x.toExponential(2))}; worst finite-difference error per sample (32 neurons)`);
    const errs: string[] = [];
    for (let b = 0; b < N; b++) {
      const an = probes.map((p) => r.grads[p.layer]![b * FFN + p.index]!);
      const err = worstError(an, nd[b]!);
      errs.push(err.toExponential(2));
      expect(err, `sample ${b}: analytic ${an.slice(0, 4)} numeric ${nd[b]!.slice(0, 4)}`).toBeLessThan(TOL);
      // Every block carries a non-zero gradient.
      for (const l of [0, 1, 2, 3]) expect(Math.max(...r.grads[l]!.subarray(b * FFN, (b + 1) * FFN).map(Math.abs))).toBeGreaterThan(0);
    }
    console.log(`  ${errs.join(' ')}`);
  });

  it('completeness: IG over a neuron set approaches F(clean) - F(set at zero) as m grows', async () => {
    // The set: in every block, the 32 neurons with the largest clean activation of the image.
    const rows: string[] = [];
    for (const img of [0, 1]) {
      const one = images.subarray(img * 784, (img + 1) * 784);
      const base: Record<number, Float32Array> = {};
      const set: Record<number, number[]> = {};
      for (const l of engine.layers) {
        base[l] = clean.activations[l]!.slice(img * FFN, (img + 1) * FFN);
        set[l] = Array.from({ length: FFN }, (_, i) => i)
          .sort((a, b) => base[l]![b]! - base[l]![a]!)
          .slice(0, 32);
      }
      const errs: Record<string, number[]> = { right: [], midpoint: [] };
      let delta = 0;
      for (const m of [20, 50, 200]) {
        for (const rule of ['right', 'midpoint'] as const) {
          const alphas = Array.from({ length: m }, (_, k) => (rule === 'right' ? (k + 1) / m : (k + 0.5) / m));
          const all = [...alphas, 1, 0]; // the last two rows give F(clean) and F(set at zero)
          const B = all.length;
          const imgs = new Float32Array(B * 784);
          const ov: Record<number, Float32Array> = {};
          for (const l of engine.layers) ov[l] = new Float32Array(B * FFN);
          all.forEach((a, b) => {
            imgs.set(one, b * 784);
            for (const l of engine.layers) {
              ov[l]!.set(base[l]!, b * FFN);
              for (const i of set[l]!) ov[l]![b * FFN + i] = a * base[l]![i]!;
            }
          });
          const r = await engine.run(imgs, B, Array(B).fill(labels[img]), ov);
          let ig = 0;
          for (let b = 0; b < m; b++) for (const l of engine.layers) for (const i of set[l]!) ig += (base[l]![i]! * r.grads[l]![b * FFN + i]!) / m;
          delta = r.F[m]! - r.F[m + 1]!;
          errs[rule]!.push(Math.abs(ig - delta));
          rows.push(`image ${img} (label ${labels[img]}) m=${m} ${rule}: IG ${ig.toExponential(4)}  dF ${delta.toExponential(4)}  |err| ${Math.abs(ig - delta).toExponential(2)}  rel ${(Math.abs(ig - delta) / Math.abs(delta)).toExponential(2)}`);
        }
      }
      expect(Math.abs(delta)).toBeGreaterThan(1e-4); // the set matters
      // Right Riemann sums converge like 1/m, midpoint sums like 1/m^2.
      const [r20, r50, r200] = errs.right as [number, number, number];
      expect(r50).toBeLessThan(r20);
      expect(r200).toBeLessThan(r50);
      expect(r200).toBeLessThan(0.03 * Math.abs(delta));
      expect(r200 * 200).toBeGreaterThan(0.3 * r20 * 20);
      expect(r200 * 200).toBeLessThan(3 * r20 * 20);
      expect(errs.midpoint![2]!).toBeLessThan(1e-3 * Math.abs(delta) + 1e-6);
    }
    console.log(['IG completeness on vit-mnist (prob of the label, 32 top neurons per block):', ...rows].join('\n'));
  });

  it('batch independence: one image alone and among others gets the same gradients', async () => {
    const ov = scaled(0.5);
    const targets = labels.map((_, b) => runnerUp(b));
    const all = await engine.run(images, N, targets, ov);
    let worst = 0;
    for (const b of [0, 2]) {
      const one = await engine.run(
        images.slice(b * 784, (b + 1) * 784),
        1,
        [targets[b]!],
        Object.fromEntries(engine.layers.map((l) => [l, ov[l]!.slice(b * FFN, (b + 1) * FFN)])),
      );
      expect(one.F[0]).toBeCloseTo(all.F[b]!, 6);
      for (const l of engine.layers) {
        const a = all.grads[l]!.subarray(b * FFN, (b + 1) * FFN);
        const s = one.grads[l]!;
        const scale = Math.max(...a.map(Math.abs));
        for (let i = 0; i < FFN; i++) worst = Math.max(worst, Math.abs(a[i]! - s[i]!) / scale);
      }
    }
    // Same math per sample; only kernel blocking may differ with the batch size (float32 rounding).
    expect(worst).toBeLessThan(1e-4);
    // And the other samples really do differ (the check is not vacuous).
    expect(Array.from(all.grads[3]!.subarray(0, FFN))).not.toEqual(Array.from(all.grads[3]!.subarray(FFN, 2 * FFN)));
  });
});
