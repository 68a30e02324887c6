// The layer-progressive search for the influential neuron path (Wang et al., ICLR 2025) and the
// JAS evaluation of any path, run in batches of images through a NeuronOracle. The integration rule
// (left Riemann in the paper) is a parameter (quadrature.ts).
import type { NeuronOracle } from './oracle.js';
import { jasForms, topK, type JasForm } from './jas.js';
import { quadrature, type Quadrature } from './quadrature.js';
import { argmax } from './stats.js';

/** An integration rule, or a number of steps of the paper's left Riemann sum. */
export type StepsOrRule = number | Quadrature;

export function asQuadrature(s: StepsOrRule): Quadrature {
  return typeof s === 'number' ? quadrature('left', s) : s;
}

export interface SearchOptions {
  /** Steps of the left Riemann sum, or an integration rule with its steps. */
  steps: StepsOrRule;
  jas: JasForm;
  /** Candidates recorded per layer (at least 5). */
  topK: number;
  /**
   * Receives, per image, the rule-weighted sum over the steps of dF/d(row) at the first searched layer
   * (Σ_k c_k g(α_k)) from the first pass. That pass scales only that layer's row by α_k, so it is
   * exactly the ig-layer baseline's pass for the layer: igLayerPaths takes these sums instead of recomputing.
   */
  onFirstPass?: (gradSums: Float64Array[]) => void;
}

export interface LayerChoice {
  layer: number;
  neuron: number;
  activation: number;
  score: number;
  top: { neuron: number; score: number }[];
}

export interface PathScore {
  path: number[];
  activations: number[];
  jasProduct: number;
  jasSum: number;
  /** F(clean) - F(path zeroed): what jasSum approaches as the steps grow (completeness). */
  completenessGap: number;
  /** Objective with the path zeroed (alpha = 0). */
  fZeroed: number;
}

/** Per image of a chunk: its clean rows (per layer [ffn]) and its target. */
export interface ImageContext {
  input: Float32Array; // one image, inputSize values
  acts: Float32Array[]; // per oracle layer, [ffn]
  target: number;
  fClean: number;
}

/** Each image's input repeated `perImage` times, [n * perImage, inputSize]. */
/**
 * One sample's offset row at a searched layer: below the layer being chosen, the clean row with only
 * the path's neuron there scaled by alpha; at and above it, the whole row scaled by alpha.
 */
export function fillSampleRow(row: Float32Array, a: ArrayLike<number>, pathNeuron: number | undefined, alpha: number): void {
  if (pathNeuron !== undefined) {
    row.set(a);
    row[pathNeuron] = alpha * a[pathNeuron]!;
  } else {
    for (let j = 0; j < row.length; j++) row[j] = alpha * a[j]!;
  }
}

export function repeatInputs(images: ImageContext[], perImage: number, inputSize: number): Float32Array {
  const out = new Float32Array(images.length * perImage * inputSize);
  images.forEach((im, i) => {
    for (let k = 0; k < perImage; k++) out.set(im.input, (i * perImage + k) * inputSize);
  });
  return out;
}

/** Each image's target repeated `perImage` times. */
export function targetsFor(images: ImageContext[], perImage: number): Int32Array {
  const t = new Int32Array(images.length * perImage);
  images.forEach((im, i) => t.fill(im.target, i * perImage, (i + 1) * perImage));
  return t;
}

/**
 * Layer-progressive search over the oracle's layers for a chunk of images: one batched
 * forward+backward pass of m samples per image and layer. At layer l the row is scaled by α_k as a
 * whole and the neurons chosen before by α_k alone (the other neurons of their rows held at their
 * clean values); candidate j scores the JAS of {chosen} ∪ {j} computed from that pass:
 *   product: (Σ w) · Σ_k c_k (g_j(k) + Σ_chosen g(k)),   sum: w_j Σ_k c_k g_j(k) + Σ_chosen w Σ_k c_k g(k).
 */
export async function searchPaths(oracle: NeuronOracle, images: ImageContext[], opts: SearchOptions): Promise<LayerChoice[][]> {
  const q = asQuadrature(opts.steps);
  const m = q.steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const n = images.length;
  const S = n * m;
  const al = q.alphas;
  const c = q.weights;
  const input = repeatInputs(images, m, oracle.inputSize);
  const target = targetsFor(images, m);
  const choices: LayerChoice[][] = images.map(() => []);
  for (let li = 0; li < L; li++) {
    const scale: (Float32Array | undefined)[] = new Array(L).fill(undefined);
    const offset: (Float32Array | undefined)[] = new Array(L).fill(undefined);
    for (let lj = 0; lj <= li; lj++) {
      const sc = new Float32Array(S * F); // zeros: do-intervention
      const of = new Float32Array(S * F);
      for (let i = 0; i < n; i++) {
        const a = images[i]!.acts[lj]!;
        for (let k = 0; k < m; k++) {
          const row = of.subarray((i * m + k) * F, (i * m + k + 1) * F);
          fillSampleRow(row, a, lj < li ? choices[i]![lj]!.neuron : undefined, al[k]!);
        }
      }
      scale[lj] = sc;
      offset[lj] = of;
    }
    const res = await oracle.evaluate({ input, samples: S, scale, offset, target, grads: true });
    const grads = res.grads!;
    const firstSums: Float64Array[] = [];
    for (let i = 0; i < n; i++) {
      const a = images[i]!.acts[li]!;
      // Weighted step sums of the candidate gradients, and of the chosen neurons' gradients.
      const G = new Float64Array(F);
      const gl = grads[li]!;
      for (let k = 0; k < m; k++) {
        const base = (i * m + k) * F;
        const ck = c[k]!;
        for (let j = 0; j < F; j++) G[j]! += ck * gl[base + j]!;
      }
      if (li === 0) firstSums.push(G);
      let gPrev = 0;
      let wPrev = 0;
      let sumPrev = 0;
      for (let lj = 0; lj < li; lj++) {
        const p = choices[i]![lj]!.neuron;
        const w = images[i]!.acts[lj]![p]!;
        let gs = 0;
        for (let k = 0; k < m; k++) gs += c[k]! * grads[lj]![(i * m + k) * F + p]!;
        gPrev += gs;
        wPrev += w;
        sumPrev += w * gs;
      }
      const score = new Float64Array(F);
      for (let j = 0; j < F; j++) {
        score[j] = opts.jas === 'product' ? (G[j]! + gPrev) * (a[j]! + wPrev) : a[j]! * G[j]! + sumPrev;
      }
      const best = argmax(score);
      choices[i]!.push({
        layer: oracle.layers[li]!,
        neuron: best,
        activation: a[best]!,
        score: score[best]!,
        top: topK(score, Math.max(5, opts.topK)).map((t) => ({ neuron: t.index, score: t.value })),
      });
    }
    if (li === 0) opts.onFirstPass?.(firstSums);
  }
  return choices;
}

/**
 * JAS (both forms) and completeness gap of given paths: one pass of m samples per (image, distinct path)
 * in which every layer's row is the clean row with the path neuron scaled by α_k (plus one sample
 * at α = 0 when the rule has no node there). paths[i][q] is the q-th path of image i.
 */
export async function scorePaths(oracle: NeuronOracle, images: ImageContext[], paths: number[][][], steps: StepsOrRule): Promise<PathScore[][]> {
  const q = asQuadrature(steps);
  const m = q.steps;
  const per = q.zeroIndex >= 0 ? m : m + 1; // the extra sample (last) is α = 0
  const al = Float64Array.from({ length: per }, (_, k) => (k < m ? q.alphas[k]! : 0));
  const F = oracle.ffn;
  const L = oracle.layers.length;
  // One job per distinct path of an image: methods that chose the same path (the search and
  // ig-layer often agree) share its samples and get the same scores.
  const jobs: { i: number; q: number }[] = [];
  const jobOf = paths.map((ps, i) => {
    const seen = new Map<string, number>();
    return ps.map((p, qi) => {
      const key = p.join(',');
      let j = seen.get(key);
      if (j === undefined) {
        seen.set(key, (j = jobs.length));
        jobs.push({ i, q: qi });
      }
      return j;
    });
  });
  const S = jobs.length * per;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale: Float32Array[] = [];
  const offset: Float32Array[] = [];
  for (let l = 0; l < L; l++) {
    scale.push(new Float32Array(S * F));
    offset.push(new Float32Array(S * F));
  }
  jobs.forEach(({ i, q: qi }, jIdx) => {
    const im = images[i]!;
    const path = paths[i]![qi]!;
    for (let k = 0; k < per; k++) {
      const s = jIdx * per + k;
      input.set(im.input, s * oracle.inputSize);
      target[s] = im.target;
      for (let l = 0; l < L; l++) {
        const row = offset[l]!.subarray(s * F, (s + 1) * F);
        row.set(im.acts[l]!);
        row[path[l]!] = al[k]! * im.acts[l]![path[l]!]!;
      }
    }
  });
  const res = S > 0 ? await oracle.evaluate({ input, samples: S, scale, offset, target, grads: true }) : undefined;
  const scored = jobs.map(({ i, q: qi }, jIdx): PathScore => {
    const im = images[i]!;
    const path = paths[i]![qi]!;
    const w = path.map((p, l) => im.acts[l]![p]!);
    const gw = path.map((p, l) => {
      let g = 0;
      for (let k = 0; k < m; k++) g += q.weights[k]! * res!.grads![l]![(jIdx * per + k) * F + p]!;
      return g;
    });
    const { product, sum } = jasForms(w, gw);
    const fZeroed = res!.F[jIdx * per + (q.zeroIndex >= 0 ? q.zeroIndex : m)]!;
    return { path, activations: w, jasProduct: product, jasSum: sum, completenessGap: im.fClean - fZeroed, fZeroed };
  });
  return paths.map((ps, i) => ps.map((p, qi) => ({ ...scored[jobOf[i]![qi]!]!, path: p, activations: [...scored[jobOf[i]![qi]!]!.activations] })));
}
