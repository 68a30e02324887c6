// The layer-progressive search for the influential neuron path (Wang et al., ICLR 2025) and the
// JAS evaluation of any path, run in batches of images through a NeuronOracle.
import type { NeuronOracle } from './oracle.js';
import { alphas, jasForms, topK, type JasForm } from './jas.js';
import { argmax } from './stats.js';

export interface SearchOptions {
  steps: number;
  jas: JasForm;
  /** Candidates recorded per layer (at least 5). */
  topK: number;
  /**
   * Receives, per image, the sum over the m steps of dF/d(row) at the first searched layer from
   * the first pass. That pass scales only that layer's row by alpha_k, so it is exactly the
   * ig-layer baseline's pass for the layer: igLayerPaths takes these sums instead of recomputing.
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

function repeatInputs(images: ImageContext[], perImage: number, inputSize: number, scaleBy?: (k: number) => number): Float32Array {
  const out = new Float32Array(images.length * perImage * inputSize);
  images.forEach((im, i) => {
    for (let k = 0; k < perImage; k++) {
      const dst = out.subarray((i * perImage + k) * inputSize, (i * perImage + k + 1) * inputSize);
      dst.set(im.input);
      if (scaleBy) {
        const a = scaleBy(k);
        for (let j = 0; j < inputSize; j++) dst[j]! *= a;
      }
    }
  });
  return out;
}

function targetsFor(images: ImageContext[], perImage: number): Int32Array {
  const t = new Int32Array(images.length * perImage);
  images.forEach((im, i) => t.fill(im.target, i * perImage, (i + 1) * perImage));
  return t;
}

/**
 * Layer-progressive search over the oracle's layers for a chunk of images: one batched
 * forward+backward pass of m samples per image and layer.
 */
export async function searchPaths(oracle: NeuronOracle, images: ImageContext[], opts: SearchOptions): Promise<LayerChoice[][]> {
  const m = opts.steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const n = images.length;
  const S = n * m;
  const al = alphas(m);
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
          if (lj < li) {
            row.set(a);
            const p = choices[i]![lj]!.neuron;
            row[p] = al[k]! * a[p]!;
          } else {
            for (let j = 0; j < F; j++) row[j] = al[k]! * a[j]!;
          }
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
      // Sum over steps of the candidate gradients, and of the chosen neurons' gradients.
      const G = new Float64Array(F);
      const gl = grads[li]!;
      for (let k = 0; k < m; k++) {
        const base = (i * m + k) * F;
        for (let j = 0; j < F; j++) G[j]! += gl[base + j]!;
      }
      if (li === 0) firstSums.push(G);
      let gPrev = 0;
      let wPrev = 0;
      let sumPrev = 0;
      for (let lj = 0; lj < li; lj++) {
        const p = choices[i]![lj]!.neuron;
        const w = images[i]!.acts[lj]![p]!;
        let gs = 0;
        for (let k = 0; k < m; k++) gs += grads[lj]![(i * m + k) * F + p]!;
        gPrev += gs;
        wPrev += w;
        sumPrev += (w / m) * gs;
      }
      const score = new Float64Array(F);
      for (let j = 0; j < F; j++) {
        score[j] = opts.jas === 'product' ? (G[j]! + gPrev) * ((a[j]! + wPrev) / m) : (a[j]! / m) * G[j]! + sumPrev;
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
 * JAS (both forms) and completeness gap of given paths: one pass of m samples per (image, path)
 * in which every layer's row is the clean row with the path neuron scaled by alpha_k.
 * paths[i][q] is the q-th path of image i (one neuron per oracle layer).
 */
export async function scorePaths(oracle: NeuronOracle, images: ImageContext[], paths: number[][][], steps: number): Promise<PathScore[][]> {
  const m = steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const al = alphas(m);
  const jobs: { i: number; q: number }[] = [];
  paths.forEach((ps, i) => ps.forEach((_, q) => jobs.push({ i, q })));
  const S = jobs.length * m;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale: Float32Array[] = [];
  const offset: Float32Array[] = [];
  for (let l = 0; l < L; l++) {
    scale.push(new Float32Array(S * F));
    offset.push(new Float32Array(S * F));
  }
  jobs.forEach(({ i, q }, jIdx) => {
    const im = images[i]!;
    const path = paths[i]![q]!;
    for (let k = 0; k < m; k++) {
      const s = jIdx * m + k;
      input.set(im.input, s * oracle.inputSize);
      target[s] = im.target;
      for (let l = 0; l < L; l++) {
        const row = offset[l]!.subarray(s * F, (s + 1) * F);
        row.set(im.acts[l]!);
        row[path[l]!] = al[k]! * im.acts[l]![path[l]!]!;
      }
    }
  });
  const res = await oracle.evaluate({ input, samples: S, scale, offset, target, grads: true });
  const out: PathScore[][] = paths.map(() => []);
  jobs.forEach(({ i, q }, jIdx) => {
    const im = images[i]!;
    const path = paths[i]![q]!;
    const w = path.map((p, l) => im.acts[l]![p]!);
    const gsum = path.map((p, l) => {
      let g = 0;
      for (let k = 0; k < m; k++) g += res.grads![l]![(jIdx * m + k) * F + p]!;
      return g;
    });
    const { product, sum } = jasForms(w, gsum, m);
    const fZeroed = res.F[jIdx * m]!; // alpha_0 = 0
    out[i]![q] = { path, activations: w, jasProduct: product, jasSum: sum, completenessGap: im.fClean - fZeroed, fZeroed };
  });
  return out;
}
