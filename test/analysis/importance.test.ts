// Neuron importance criteria against hand values: a fake oracle with F = Σ_l Σ_j w_lj R_lj² (so
// dF/dR = 2wR, Taylor = 2wa², per-layer IG = w a² exactly under the midpoint rule and
// w a² (m-1)/m under the left rule), hand-built weights for magnitude, path counts for frequency;
// on ONNX Runtime (digits-vit) per-layer IG obeys completeness: Σ_j IG_lj = F(clean) − F(row l zeroed).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EditQuery, EditResult, NeuronOracle } from '../../src/analysis/oracle.js';
import type { ImageContext } from '../../src/analysis/pathSearch.js';
import { createImportance, layerIntegratedGradients, magnitudeScores, pathFrequency, randomScores } from '../../src/analysis/importance.js';
import { quadrature } from '../../src/analysis/quadrature.js';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import { buildContexts } from '../../src/services/traceCore.js';
import { mulberry32 } from '../../src/random.js';

const W = [
  [0.5, -1, 2],
  [1.5, 0.25, -0.75],
];
const ACTS = [
  [
    [1, -2, 0.5],
    [3, 1, -1],
  ],
  [
    [-1, 0.5, 2],
    [0.25, -3, 1],
  ],
];

/** F = Σ w R², R = row ⊙ scale + offset with row the image's clean activations. */
function quadraticOracle(): NeuronOracle & { images: ImageContext[] } {
  const F = 3;
  const L = 2;
  const images: ImageContext[] = ACTS.map((acts, i) => ({ input: Float32Array.of(i), acts: acts.map((a) => Float32Array.from(a)), target: 0, fClean: 0 }));
  return {
    layers: [0, 1],
    ffn: F,
    numClasses: 1,
    inputSize: 1,
    images,
    async clean() {
      throw new Error('not used');
    },
    async evaluate(q: EditQuery): Promise<EditResult> {
      const S = q.samples;
      const out: EditResult = { F: new Float32Array(S), logits: new Float32Array(S), grads: [new Float32Array(S * F), new Float32Array(S * F)] };
      for (let s = 0; s < S; s++) {
        const acts = ACTS[q.input[s]!]!;
        let f = 0;
        for (let l = 0; l < L; l++) for (let j = 0; j < F; j++) {
          const r = acts[l]![j]! * (q.scale[l] ? q.scale[l]![s * F + j]! : 1) + (q.offset[l] ? q.offset[l]![s * F + j]! : 0);
          f += W[l]![j]! * r * r;
          out.grads![l]![s * F + j] = 2 * W[l]![j]! * r;
        }
        out.F[s] = f;
      }
      return out;
    },
  };
}

const mean2 = (f: (i: number, l: number, j: number) => number) => [0, 1].map((l) => [0, 1, 2].map((j) => (Math.abs(f(0, l, j)) + Math.abs(f(1, l, j))) / 2));

describe('importance criteria on a quadratic oracle', () => {
  const oracle = quadraticOracle();
  const imp = createImportance({ layers: [0, 1], widths: [3, 3], oracle, images: oracle.images });
  const a = (i: number, l: number, j: number) => ACTS[i]![l]![j]!;

  it('activation: mean |a|', async () => {
    const s = await imp.score('activation');
    s.scores.forEach((v, l) => expect([...v]).toEqual(mean2(a)[l]));
  });

  it('taylor: mean |a · dF/da| = mean |2 w a²|', async () => {
    const s = await imp.score('taylor');
    const want = mean2((i, l, j) => 2 * W[l]![j]! * a(i, l, j) ** 2);
    s.scores.forEach((v, l) => [...v].forEach((x, j) => expect(x).toBeCloseTo(want[l]![j]!, 5)));
  });

  it('ig: w a² under the midpoint rule (exact for a linear integrand), (m-1)/m of it under left', async () => {
    const mid = await imp.score('ig', { steps: quadrature('midpoint', 4) });
    const left = await imp.score('ig', { steps: quadrature('left', 4) });
    const want = mean2((i, l, j) => W[l]![j]! * a(i, l, j) ** 2);
    mid.scores.forEach((v, l) => [...v].forEach((x, j) => expect(x).toBeCloseTo(want[l]![j]!, 5)));
    left.scores.forEach((v, l) => [...v].forEach((x, j) => expect(x).toBeCloseTo((want[l]![j]! * 3) / 4, 5)));
    // Per image, completeness: Σ_j IG_lj = F(clean) − F(row l zeroed) = Σ_j w a² for the exact rule.
    const per = await layerIntegratedGradients(oracle, oracle.images, quadrature('midpoint', 3));
    per.forEach((layers, i) => layers.forEach((ig, l) => expect(ig.reduce((s, x) => s + x, 0)).toBeCloseTo(W[l]!.reduce((s, w, j) => s + w * a(i, l, j) ** 2, 0), 5)));
  });

  it('magnitude: ‖fc1 column‖ · ‖fc2 row‖', () => {
    // fc1 [in=2, F=2], fc2 [F=2, out=3]
    const s = magnitudeScores({ fc1: Float32Array.of(3, 1, 4, -2), fc1In: 2, fc2: Float32Array.of(1, 2, 2, 0, -1, 0), fc2Out: 3, ffn: 2 });
    expect(s[0]).toBeCloseTo(5 * 3, 10);
    expect(s[1]).toBeCloseTo(Math.sqrt(5) * 1, 10);
  });

  it('path: frequency on paths, ties broken below one count', () => {
    const paths = [
      [0, 2],
      [0, 1],
      [1, 1],
      [0, 1],
    ];
    const s = pathFrequency(paths, [3, 3], [Float64Array.of(0, 0, 9), Float64Array.of(5, 0, 1)]);
    // layer 0: counts 3,1,0 -> the tie-break (neuron 2 highest) never lifts 2 above 1.
    expect(s[0]![0]! > s[0]![1]! && s[0]![1]! > s[0]![2]!).toBe(true);
    expect(s[0]![2]! > 0).toBe(true);
    expect(Math.floor(s[0]![0]! * 4 + 1e-9)).toBe(3);
    // layer 1: neuron 0 is on no path, but wins the tie against nothing; 1 (3 paths) > 2 (1 path) > 0.
    expect(s[1]![1]! > s[1]![2]! && s[1]![2]! > s[1]![0]!).toBe(true);
  });

  it('random: seeded', () => {
    expect(randomScores([4, 2], 3)).toEqual(randomScores([4, 2], 3));
    expect(randomScores([4, 2], 3)).not.toEqual(randomScores([4, 2], 4));
  });
});

describe('per-layer IG completeness on ONNX Runtime (digits-vit)', () => {
  it('Σ_j IG_lj matches F(clean) − F(row l zeroed) under the gauss rule', async () => {
    const file = path.resolve(__dirname, '../../fixtures/models/digits-vit.onnx');
    const loaded = loadModel(file);
    const layout = locateVit(loaded.proto, { label: file });
    const oracle = await OrtNeuronOracle.create(loaded, layout, { layers: [0, 1, 2, 3], token: 'cls', objective: 'prob', provider: 'cpu', threads: 1 });
    try {
      const rnd = mulberry32(5);
      const n = 3;
      const x = Float32Array.from({ length: n * oracle.inputSize }, () => rnd());
      const { ctxs } = await buildContexts(oracle, { input: x, ids: ['a', 'b', 'c'], labels: [null, null, null] }, 'pred', 'prob');
      const ig = await layerIntegratedGradients(oracle, ctxs, quadrature('gauss', 12));
      const L = 4;
      const F = oracle.ffn;
      // F with layer l's row zeroed (do-intervention: scale 0, offset 0), one sample per (l, image).
      const S = L * n;
      const input = new Float32Array(S * oracle.inputSize);
      const target = new Int32Array(S);
      const scale = Array.from({ length: L }, () => new Float32Array(S * F).fill(1));
      for (let l = 0; l < L; l++) for (let i = 0; i < n; i++) {
        const s = l * n + i;
        input.set(ctxs[i]!.input, s * oracle.inputSize);
        target[s] = ctxs[i]!.target;
        scale[l]!.fill(0, s * F, (s + 1) * F);
      }
      const zeroed = await oracle.evaluate({ input, samples: S, scale, offset: new Array(L).fill(undefined), target, grads: false });
      let worst = 0;
      for (let l = 0; l < L; l++) for (let i = 0; i < n; i++) {
        const sum = ig[i]![l]!.reduce((a, b) => a + b, 0);
        const gap = ctxs[i]!.fClean - zeroed.F[l * n + i]!;
        worst = Math.max(worst, Math.abs(sum - gap));
        expect(Math.abs(gap)).toBeGreaterThan(0); // the check is not vacuous
      }
      expect(worst).toBeLessThan(2e-4);
    } finally {
      await oracle.release();
    }
  }, 60_000);
});
