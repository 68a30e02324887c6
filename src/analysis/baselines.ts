// Baseline paths the influential path is compared with: activation, influence-pattern,
// per-layer integrated gradients (knowledge-neuron style) and seeded random.
import type { NeuronOracle } from './oracle.js';
import { asQuadrature, type ImageContext, type StepsOrRule } from './pathSearch.js';
import { argmax, mulberry32 } from './stats.js';
import { layerIntegratedGradients } from './importance.js';

export const BASELINES = ['activation', 'influence', 'ig-layer', 'random'] as const;
export type BaselineName = (typeof BASELINES)[number];

/** Per layer, the neuron with the largest clean activation. */
export function activationPath(im: ImageContext): number[] {
  return im.acts.map((a) => argmax(a));
}

/**
 * Seeded uniform neuron per layer; the seed is mixed with a key of the image (use `imageKey(id)`,
 * so an image gets the same random path whatever --shard/--limit/--resume selected around it).
 */
export function randomPath(ffn: number, layers: number, seed: number, imageKey: number): number[] {
  const rnd = mulberry32((seed * 0x9e3779b1 + imageKey * 0x85ebca6b) >>> 0);
  return Array.from({ length: layers }, () => Math.min(ffn - 1, Math.floor(rnd() * ffn)));
}

/** FNV-1a hash of an image id: the per-image key of the random baseline. */
export function imageKey(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Influence-pattern baseline: scale the (normalized) input by alpha_k (baseline = zero
 * tensor), and per layer take the argmax over neurons of the rule-weighted mean over steps of dF/da.
 */
export async function influencePaths(oracle: NeuronOracle, images: ImageContext[], steps: StepsOrRule): Promise<number[][]> {
  const q = asQuadrature(steps);
  const m = q.steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const S = images.length * m;
  const al = q.alphas;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  images.forEach((im, i) => {
    for (let k = 0; k < m; k++) {
      const s = i * m + k;
      const dst = input.subarray(s * oracle.inputSize, (s + 1) * oracle.inputSize);
      for (let j = 0; j < oracle.inputSize; j++) dst[j] = al[k]! * im.input[j]!;
      target[s] = im.target;
    }
  });
  const res = await oracle.evaluate({ input, samples: S, scale: new Array(L).fill(undefined), offset: new Array(L).fill(undefined), target, grads: true });
  return images.map((_, i) =>
    oracle.layers.map((_, l) => {
      const mean = new Float64Array(F);
      for (let k = 0; k < m; k++) {
        const g = res.grads![l]!;
        const base = (i * m + k) * F;
        const ck = q.weights[k]!;
        for (let j = 0; j < F; j++) mean[j]! += ck * g[base + j]!;
      }
      return argmax(mean);
    }),
  );
}

/**
 * Per-layer integrated gradients: for each layer independently, scale that layer's whole row
 * by alpha_k (other layers untouched) and take argmax_j of a_j * Σ_k c_k dF/da_j(α_k).
 * `firstLayerGradSums` (per image, Σ_k c_k dF/da at the first layer, as searchPaths' onFirstPass
 * reports them with the same rule) replaces the first layer's pass, which is the same computation.
 */
export async function igLayerPaths(oracle: NeuronOracle, images: ImageContext[], steps: StepsOrRule, firstLayerGradSums?: Float64Array[]): Promise<number[][]> {
  const ig = await layerIntegratedGradients(oracle, images, steps, firstLayerGradSums);
  return ig.map((layers) => layers.map((v) => argmax(v)));
}
