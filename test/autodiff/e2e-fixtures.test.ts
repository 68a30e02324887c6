// End to end on every fixture model (export styles, opsets 9..21, btf and flat neuron tensors,
// fixed batch, mean pooling, external data): gradients of F w.r.t. every block's token-row
// overrides, under interventions, against central finite differences of the forward model.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { NeuronGradientEngine } from '../../src/engine/gradientEngine.js';
import type { InterventionMode } from '../../src/onnx/rewrite/intervene.js';
import type { TokenChoice } from '../../src/vit/tokens.js';
import { FIXTURE_DIR, fixtureManifest } from '../rewrite/layouts.js';
import { randomImages } from '../rewrite/data.js';
import { ForwardF, probeNeurons, worstError } from './e2e-helpers.js';

// Same reference (Richardson-extrapolated central differences, h = 0.4) and tolerance as the
// vit-mnist test; see the reasoning there.
const STEP = 0.4;
const TOL = 1e-2;

interface Case {
  file: string;
  token?: TokenChoice;
  mode?: InterventionMode;
  objective?: 'prob' | 'logit';
  layers?: number[];
}

const cases: Case[] = [
  ...Object.keys(fixtureManifest()).map((file) => ({ file })),
  { file: 'erf-ln-matmul.onnx', token: 5, objective: 'logit' },
  { file: 'decomposed-gemm-tanh.onnx', token: 3, mode: 'scale', layers: [0, 2] },
  { file: 'mean-pool.onnx', token: 'mean', mode: 'scale' },
  { file: 'mean-pool.onnx', token: 7 },
  { file: 'rgb-nonsquare-gemm.onnx', mode: 'affine' },
  { file: 'mean-pool.onnx', token: 'mean', mode: 'affine' },
];

describe.each(cases)('gradients on $file (token $token, mode $mode, objective $objective)', ({ file, token, mode, objective, layers }) => {
  it('agree with finite differences, for every block, under interventions', async () => {
    const loaded = loadModel(path.join(FIXTURE_DIR, file));
    const layout = locateVit(loaded.proto);
    const engine = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', token, mode, objective, layers });
    const B = 3;
    const ffn = engine.ffn;
    const images = randomImages(B, engine.imageSize, 21);
    const clean = await engine.clean(images, B);
    // Overrides away from the clean point: 0.7 x clean rows (override) or factors 0.4..1.3 (scale).
    const ov: Record<number, Float32Array> = {};
    // Affine: row * s + o with s in 0.3..1.2 and o = 0.2 x clean (d F / d o is d F / d edited row).
    const sc: Record<number, Float32Array> = {};
    if (mode === 'affine') for (const l of engine.layers) sc[l] = Float32Array.from({ length: B * ffn }, (_, i) => 0.3 + ((i * 53) % 10) / 10);
    for (const l of engine.layers) {
      ov[l] = mode === 'affine' ? clean.activations[l]!.map((x) => 0.2 * x) : mode === 'scale' ? Float32Array.from({ length: B * ffn }, (_, i) => 0.4 + ((i * 37) % 10) / 10) : clean.activations[l]!.map((x) => 0.7 * x);
    }
    const targets = [1, 4, 8];
    const r = await engine.run(images, B, targets, ov, sc);
    const fwd = await ForwardF.create(loaded, layout, { layers: [...engine.layers], token: engine.token, mode, objective });
    fwd.scales = sc;
    const f = await fwd.eval(images, B, targets, ov);
    for (let b = 0; b < B; b++) expect(r.F[b]).toBeCloseTo(f[b]!, 6);
    const probes = probeNeurons([...engine.layers], ffn, 6);
    const nd = await fwd.richardson(images, B, targets, ov, probes, STEP);
    await fwd.release();
    let worst = 0;
    for (let b = 0; b < B; b++) {
      const an = probes.map((p) => r.grads[p.layer]![b * ffn + p.index]!);
      worst = Math.max(worst, worstError(an, nd[b]!));
      expect(worstError(an, nd[b]!), `sample ${b}: analytic ${an.slice(0, 4)} numeric ${nd[b]!.slice(0, 4)}`).toBeLessThan(TOL);
    }
    console.log(`${file} token ${engine.token} ${mode ?? 'override'} ${objective ?? 'prob'}: worst finite-difference error ${worst.toExponential(2)}`);
    // Batch independence: the middle sample alone gives the same F and gradients.
    const one = await engine.run(
      images.slice(engine.imageSize, 2 * engine.imageSize),
      1,
      [targets[1]!],
      Object.fromEntries(engine.layers.map((l) => [l, ov[l]!.slice(ffn, 2 * ffn)])),
      mode === 'affine' ? Object.fromEntries(engine.layers.map((l) => [l, sc[l]!.slice(ffn, 2 * ffn)])) : undefined,
    );
    expect(one.F[0]).toBeCloseTo(r.F[1]!, 6);
    for (const l of engine.layers) {
      const a = r.grads[l]!.subarray(ffn, 2 * ffn);
      const scale = Math.max(...a.map(Math.abs));
      for (let i = 0; i < ffn; i++) expect(Math.abs(one.grads[l]![i]! - a[i]!)).toBeLessThanOrEqual(1e-4 * scale);
    }
    await engine.release();
  });
});

describe('affine mode', () => {
  it('at scale 0 it is the override form: same F and gradients', async () => {
    const file = 'erf-ln-matmul.onnx';
    const loaded = loadModel(path.join(FIXTURE_DIR, file));
    const layout = locateVit(loaded.proto);
    const aff = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', mode: 'affine' });
    const ovr = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', mode: 'override' });
    const B = 2;
    const images = randomImages(B, aff.imageSize, 5);
    const clean = await ovr.clean(images, B);
    const o = Object.fromEntries(aff.layers.map((l) => [l, clean.activations[l]!.map((x, i) => x * (0.2 + (i % 7) / 10))]));
    const zero = Object.fromEntries(aff.layers.map((l) => [l, new Float32Array(B * aff.ffn)]));
    const a = await aff.run(images, B, [2, 6], o, zero);
    const b = await ovr.run(images, B, [2, 6], o);
    expect(Array.from(a.F)).toEqual(Array.from(b.F));
    for (const l of aff.layers) {
      const scale = Math.max(...b.grads[l]!.map(Math.abs));
      for (let i = 0; i < b.grads[l]!.length; i++) expect(Math.abs(a.grads[l]![i]! - b.grads[l]![i]!)).toBeLessThanOrEqual(1e-6 * scale);
    }
    await expect(aff.run(images, B, [2, 6], o)).rejects.toThrow(/scale for block/);
    await aff.release();
    await ovr.release();
  });
});
