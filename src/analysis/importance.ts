// Neuron importance: one call, per-layer score vectors (higher = more important), for every
// criterion prune ranks FFN neurons by. Attribution criteria run through the NeuronOracle (the
// neuron row at the analysed token, as everywhere in vitpath); weight and random criteria need none.
//
//   activation  mean_i |a_ij|                                    clean rows
//   taylor      mean_i |a_ij · dF/da_ij|                          one gradient pass at the clean point
//   ig          mean_i |IG_ij|, IG_ij = a_ij Σ_k c_k dF/da_ij(α_k a_i·) with layer l's row scaled
//               alone (the ig-layer baseline's integral; the rule is a parameter)
//   path        frequency of (layer, neuron) on the images' influential paths (Wang et al.'s greedy
//               search, or paths read from a trace-path run); ties (most neurons are on no path) are
//               broken by the search's mean candidate score at that layer when the search ran here,
//               by magnitude when the paths were read from a run
//   magnitude   ‖fc1 column j‖₂ · ‖fc2 row j‖₂                   weights only
//   random      seeded uniform                                   nothing
import { evaluateLayerAloneByEvaluate, type LayerAloneQuery, type NeuronOracle } from './oracle.js';
import { asQuadrature, searchPaths, type ImageContext, type StepsOrRule } from './pathSearch.js';
import { mulberry32 } from '../random.js';

export const CRITERIA = ['path', 'ig', 'taylor', 'activation', 'magnitude', 'random'] as const;
export type Criterion = (typeof CRITERIA)[number];

/** Criteria that need images run through the model. */
export function needsImages(c: Criterion): boolean {
  return c === 'path' || c === 'ig' || c === 'taylor' || c === 'activation';
}

export interface NeuronScores {
  criterion: Criterion;
  /** Model block indices the scores are for, ascending. */
  layers: number[];
  /** Per layer (in `layers` order) one score per neuron. */
  scores: Float64Array[];
  /** Images the scores came from (0 for magnitude and random). */
  images: number;
  /** path: each image's path (one neuron per layer) and target class. */
  paths?: { paths: number[][]; targets: number[] };
}

/** One FFN's weights as [in, F] for fc1 (columns = neurons) and [F, out] for fc2 (rows = neurons). */
export interface FfnWeights {
  fc1: Float32Array;
  fc1In: number;
  fc2: Float32Array;
  fc2Out: number;
  ffn: number;
}

export interface ImportanceSources {
  /** Block indices scored (ascending); for oracle criteria they must be the oracle's layers. */
  layers: number[];
  /** Neurons per scored layer. */
  widths: number[];
  oracle?: NeuronOracle;
  /** The scoring images' contexts (clean rows, targets) from the oracle. */
  images?: ImageContext[];
  /** Per scored layer, for magnitude (and path tie-breaks from a run). */
  weights?: FfnWeights[];
  /** Paths read from a trace-path run (instead of searching). */
  tracedPaths?: { paths: number[][]; targets: number[] };
}

export interface ScoreOptions {
  /** Integration rule (or left-Riemann steps) of ig and the path search; default 20 left steps. */
  steps?: StepsOrRule;
  /** Seed of random. */
  seed?: number;
  /** Images per oracle call for ig and path (bounds memory); default 64. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The one interface prune (and anything ranking neurons) talks to. */
export interface NeuronImportance {
  readonly layers: number[];
  score(criterion: Criterion, o?: ScoreOptions): Promise<NeuronScores>;
}

export function createImportance(src: ImportanceSources): NeuronImportance {
  return { layers: src.layers, score: (c, o = {}) => scoreNeurons(c, src, o) };
}

function need<T>(v: T | undefined, what: string, c: Criterion): T {
  if (v === undefined) throw new Error(`importance ${c}: needs ${what}`);
  return v;
}

export async function scoreNeurons(c: Criterion, src: ImportanceSources, o: ScoreOptions = {}): Promise<NeuronScores> {
  const base = { criterion: c, layers: [...src.layers] };
  switch (c) {
    case 'random':
      return { ...base, scores: randomScores(src.widths, o.seed ?? 0), images: 0 };
    case 'magnitude':
      return { ...base, scores: need(src.weights, 'the FFN weights', c).map(magnitudeScores), images: 0 };
    case 'activation': {
      const ims = need(src.images, 'scoring images', c);
      return { ...base, scores: meanAbs(ims.map((im) => im.acts), src.widths), images: ims.length };
    }
    case 'taylor': {
      const oracle = need(src.oracle, 'a neuron oracle', c);
      const ims = need(src.images, 'scoring images', c);
      const per: Float64Array[][] = [];
      await chunked(ims, o, async (part) => {
        per.push(...(await taylorPerImage(oracle, part)));
      });
      return { ...base, scores: meanAbs(per, src.widths), images: ims.length };
    }
    case 'ig': {
      const oracle = need(src.oracle, 'a neuron oracle', c);
      const ims = need(src.images, 'scoring images', c);
      const per: Float64Array[][] = [];
      await chunked(ims, o, async (part) => {
        per.push(...(await layerIntegratedGradients(oracle, part, o.steps ?? 20)));
      });
      return { ...base, scores: meanAbs(per, src.widths), images: ims.length };
    }
    case 'path': {
      if (src.tracedPaths) {
        const tie = src.weights ? src.weights.map(magnitudeScores) : src.widths.map((w) => new Float64Array(w));
        return { ...base, scores: pathFrequency(src.tracedPaths.paths, src.widths, tie), images: src.tracedPaths.paths.length, paths: src.tracedPaths };
      }
      const oracle = need(src.oracle, 'a neuron oracle or paths from a trace-path run', c);
      const ims = need(src.images, 'scoring images', c);
      const paths: number[][] = [];
      const cand = src.widths.map((w) => new Float64Array(w));
      await chunked(ims, o, async (part) => {
        const found = await searchPaths(oracle, part, { steps: o.steps ?? 20, jas: 'product', topK: Math.max(...src.widths) });
        for (const f of found) {
          paths.push(f.map((ch) => ch.neuron));
          f.forEach((ch, l) => {
            for (const t of ch.top) cand[l]![t.neuron]! += t.score / ims.length;
          });
        }
      });
      const targets = ims.map((im) => im.target);
      return { ...base, scores: pathFrequency(paths, src.widths, cand), images: ims.length, paths: { paths, targets } };
    }
  }
}

async function chunked(ims: ImageContext[], o: ScoreOptions, f: (part: ImageContext[]) => Promise<void>): Promise<void> {
  const size = Math.max(1, o.chunk ?? 64);
  for (let s = 0; s < ims.length; s += size) {
    await f(ims.slice(s, s + size));
    o.onProgress?.(Math.min(ims.length, s + size), ims.length);
  }
}

/** Per layer, the mean over images of |v| (values per image per layer). */
export function meanAbs(perImage: ArrayLike<number>[][], widths: number[]): Float64Array[] {
  const out = widths.map((w) => new Float64Array(w));
  for (const im of perImage) {
    im.forEach((v, l) => {
      const o = out[l]!;
      for (let j = 0; j < o.length; j++) o[j]! += Math.abs(v[j]!);
    });
  }
  const n = perImage.length;
  if (n > 0) for (const o of out) for (let j = 0; j < o.length; j++) o[j]! /= n;
  return out;
}

/** Seeded uniform scores in [0, 1) per neuron (layer by layer, neuron by neuron). */
export function randomScores(widths: number[], seed: number): Float64Array[] {
  const rnd = mulberry32(seed);
  return widths.map((w) => Float64Array.from({ length: w }, () => rnd()));
}

/** ‖fc1 column j‖₂ · ‖fc2 row j‖₂ for every neuron j. */
export function magnitudeScores(w: FfnWeights): Float64Array {
  const F = w.ffn;
  const a = new Float64Array(F);
  for (let i = 0; i < w.fc1In; i++) for (let j = 0; j < F; j++) a[j]! += w.fc1[i * F + j]! ** 2;
  const out = new Float64Array(F);
  for (let j = 0; j < F; j++) {
    let b = 0;
    for (let k = 0; k < w.fc2Out; k++) b += w.fc2[j * w.fc2Out + k]! ** 2;
    out[j] = Math.sqrt(a[j]!) * Math.sqrt(b);
  }
  return out;
}

/**
 * Frequency of each neuron on the paths (count / images), ties broken by `tie` (any scale): it is
 * mapped into [0, 0.5/images), below one path count, so the frequency order is never changed.
 */
export function pathFrequency(paths: number[][], widths: number[], tie: Float64Array[]): Float64Array[] {
  const n = Math.max(1, paths.length);
  const out = widths.map((w) => new Float64Array(w));
  for (const p of paths) p.forEach((j, l) => {
    if (l < out.length && j >= 0 && j < out[l]!.length) out[l]![j]! += 1 / n;
  });
  tie.forEach((t, l) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of t) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi - lo;
    if (!(span > 0)) return;
    for (let j = 0; j < t.length; j++) out[l]![j]! += (0.5 / n) * 0.999 * ((t[j]! - lo) / span);
  });
  return out;
}

/** Per image, per oracle layer a_j · dF/da_j at the clean point (one gradient pass). */
export async function taylorPerImage(oracle: NeuronOracle, images: ImageContext[]): Promise<Float64Array[][]> {
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const n = images.length;
  const input = new Float32Array(n * oracle.inputSize);
  const target = new Int32Array(n);
  images.forEach((im, i) => {
    input.set(im.input, i * oracle.inputSize);
    target[i] = im.target;
  });
  const res = await oracle.evaluate({ input, samples: n, scale: new Array(L).fill(undefined), offset: new Array(L).fill(undefined), target, grads: true });
  return images.map((im, i) =>
    oracle.layers.map((_, l) => {
      const g = res.grads![l]!;
      const out = new Float64Array(F);
      for (let j = 0; j < F; j++) out[j] = im.acts[l]![j]! * g[i * F + j]!;
      return out;
    }),
  );
}

/**
 * Per-layer integrated gradients of every image: for each layer independently its whole row goes
 * from 0 to the clean row (a do-intervention: row = α_k · a, other layers as computed), and
 * IG_j = a_j · Σ_k c_k dF/da_j(α_k). Σ_j IG_j approaches F(clean) − F(layer row zeroed) as the rule
 * converges (completeness). `firstLayerGradSums` (per image Σ_k c_k dF/da at the first layer, the
 * path search's first pass) replaces the first layer's evaluation, which is the same computation.
 * The samples leave every layer but one clean: on an oracle with layer-alone evaluations they start
 * from each image's clean state at their layer (same numbers, less work), else they run whole.
 */
export async function layerIntegratedGradients(oracle: NeuronOracle, images: ImageContext[], steps: StepsOrRule, firstLayerGradSums?: Float64Array[]): Promise<Float64Array[][]> {
  const q = asQuadrature(steps);
  const m = q.steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const n = images.length;
  if (firstLayerGradSums && firstLayerGradSums.length !== n) throw new Error(`igLayerPaths: ${firstLayerGradSums.length} first-layer gradient sums for ${n} images`);
  const l0 = firstLayerGradSums ? 1 : 0; // first layer evaluated here
  // One group per layer from l0 on: sample (i, k) of layer l has row l = α_k · a_l(i).
  const input = new Float32Array(n * oracle.inputSize);
  images.forEach((im, i) => input.set(im.input, i * oracle.inputSize));
  const target = Int32Array.from(images, (im) => im.target);
  const groups: LayerAloneQuery['groups'] = [];
  for (let l = l0; l < L; l++) {
    const image = new Int32Array(n * m);
    const offset = new Float32Array(n * m * F);
    images.forEach((im, i) => {
      const a = im.acts[l]!;
      for (let k = 0; k < m; k++) {
        image[i * m + k] = i;
        for (let j = 0; j < F; j++) offset[(i * m + k) * F + j] = q.alphas[k]! * a[j]!;
      }
    });
    groups.push({ layer: l, image, scale: new Float32Array(n * m * F), offset });
  }
  const query = { input, images: n, target, groups };
  const res = n === 0 || groups.length === 0 ? undefined : oracle.evaluateLayerAlone ? await oracle.evaluateLayerAlone(query) : await evaluateLayerAloneByEvaluate(oracle, query);
  return images.map((im, i) =>
    oracle.layers.map((_, l) => {
      let ig: Float64Array;
      if (l < l0) ig = Float64Array.from(firstLayerGradSums![i]!);
      else {
        ig = new Float64Array(F);
        const g = res!.grads[l - l0]!;
        for (let k = 0; k < m; k++) {
          const base = (i * m + k) * F;
          const ck = q.weights[k]!;
          for (let j = 0; j < F; j++) ig[j]! += ck * g[base + j]!;
        }
      }
      for (let j = 0; j < F; j++) ig[j] = im.acts[l]![j]! * ig[j]!;
      return ig;
    }),
  );
}

/**
 * Per-head Taylor scores from per-image gradients of the loss w.r.t. a gate on every feature of
 * the projection input (head h = features [h*d, (h+1)*d)): mean_i |Σ_{j in h} g_i[j]|, the
 * |dL/dξ_h| of a gate ξ_h shared by the head's features (Michel et al., 2019).
 */
export function headScores(perImage: readonly ArrayLike<number>[], heads: number, headDim: number): Float64Array {
  const out = new Float64Array(heads);
  for (const g of perImage) {
    for (let h = 0; h < heads; h++) {
      let s = 0;
      for (let j = 0; j < headDim; j++) s += g[h * headDim + j]!;
      out[h]! += Math.abs(s);
    }
  }
  if (perImage.length) for (let h = 0; h < heads; h++) out[h]! /= perImage.length;
  return out;
}
