// Neuron-path searches beyond the paper's greedy one: a beam over partial paths (keep the B best per
// layer) ranked by a score — the paper's JAS in either form, or the measured removal effect — with an
// attribution pre-filter for the effect score. Greedy is the beam of width 1 (the paper's own greedy is
// pathSearch.searchPaths; beam B = 1 with a JAS score reproduces it, which the tests check).
//
// Scores of a partial path P ∪ {j} at layer l:
//   product | sum  the JAS form computed from the layer-progressive pass of P (row l scaled by α as a
//                  whole, P's neurons by α alone; see pathSearch.searchPaths), m gradient samples per entry
//   effect         F(clean) − F(P and j removed): the same edit as trace-path's remove (the computed
//                  neurons multiplied by 0 at every layer of the path, everything downstream recomputed),
//                  one forward-only sample per candidate. Only the `candidates` best neurons by an
//                  attribution of removing them (given P removed) are ablated: 'taylor' r_j·dF/dr_j at
//                  one gradient sample, or 'ig' r_j·Σ_k c_k dF/dr_j(α_k) with row l scaled by α.
import type { NeuronOracle } from './oracle.js';
import { topK, type JasForm } from './jas.js';
import { asQuadrature, fillSampleRow, repeatInputs, targetsFor, type ImageContext, type LayerChoice, type StepsOrRule } from './pathSearch.js';

export type SearchScore = JasForm | 'effect';
export type Prefilter = 'taylor' | 'ig';

export interface BeamOptions {
  steps: StepsOrRule;
  score: SearchScore;
  /** Partial paths kept per layer (1 = greedy). */
  beam: number;
  /** Effect score: neurons ablated per entry and layer, the best by the pre-filter (>= ffn: all, no pre-filter). */
  candidates?: number;
  /** Effect score: the attribution that picks the candidates (default 'taylor'). */
  prefilter?: Prefilter;
  /** Candidates recorded per layer (at least 5). */
  topK: number;
  /** As SearchOptions.onFirstPass (JAS scores only: their first pass is the ig-layer pass of layer 0). */
  onFirstPass?: (gradSums: Float64Array[]) => void;
}

/** Samples a search evaluated, per kind (what its cost is counted in). */
export interface SearchCost {
  gradSamples: number;
  forwardSamples: number;
}

interface Entry {
  path: number[];
  choices: LayerChoice[];
  score: number;
}

/** A candidate extension: entry b of an image extended by neuron j with a score. */
interface Extension {
  b: number;
  j: number;
  score: number;
}

/** The B best extensions by score (descending; ties: earlier entry, then lower neuron). */
function bestExtensions(ext: Extension[], B: number): Extension[] {
  return [...ext].sort((x, y) => y.score - x.score || x.b - y.b || x.j - y.j).slice(0, B);
}

/**
 * Beam search over the oracle's layers for a chunk of images; returns per image the best full path's
 * per-layer choices (score = the score of the partial path ending at that layer, top = that layer's
 * best candidates for the entry the path extended). `cost` accumulates the samples evaluated.
 */
export async function beamSearch(oracle: NeuronOracle, images: ImageContext[], o: BeamOptions, cost?: SearchCost): Promise<LayerChoice[][]> {
  if (!Number.isInteger(o.beam) || o.beam < 1) throw new Error(`beamSearch: beam width must be a positive integer (got ${o.beam})`);
  const L = oracle.layers.length;
  const n = images.length;
  let beams: Entry[][] = images.map(() => [{ path: [], choices: [], score: 0 }]);
  for (let li = 0; li < L; li++) {
    const scored = o.score === 'effect' ? await effectLayer(oracle, images, beams, li, o, cost) : await jasLayer(oracle, images, beams, li, o, cost);
    beams = beams.map((entries, i) => {
      const best = bestExtensions(scored.ext[i]!, o.beam);
      return best.map(({ b, j, score }) => {
        const parent = entries[b]!;
        const list = scored.top[i]![b]!;
        const choice: LayerChoice = { layer: oracle.layers[li]!, neuron: j, activation: images[i]!.acts[li]![j]!, score, top: list };
        return { path: [...parent.path, j], choices: [...parent.choices, choice], score };
      });
    });
  }
  void n;
  return beams.map((entries) => entries[0]!.choices);
}

interface LayerScores {
  /** Per image, every scored extension. */
  ext: Extension[][];
  /** Per image and entry, the best candidates recorded. */
  top: { neuron: number; score: number }[][][];
}

/** JAS scores of every extension of every entry: the layer-progressive pass of each entry's path. */
async function jasLayer(oracle: NeuronOracle, images: ImageContext[], beams: Entry[][], li: number, o: BeamOptions, cost?: SearchCost): Promise<LayerScores> {
  const q = asQuadrature(o.steps);
  const m = q.steps;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const al = q.alphas;
  const c = q.weights;
  // Sample (entry e, step k) with entries numbered across images.
  const owners: { i: number; b: number }[] = [];
  beams.forEach((entries, i) => entries.forEach((_, b) => owners.push({ i, b })));
  const E = owners.length;
  const S = E * m;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  owners.forEach(({ i }, e) => {
    for (let k = 0; k < m; k++) input.set(images[i]!.input, (e * m + k) * oracle.inputSize);
    target.fill(images[i]!.target, e * m, (e + 1) * m);
  });
  const scale: (Float32Array | undefined)[] = new Array(L).fill(undefined);
  const offset: (Float32Array | undefined)[] = new Array(L).fill(undefined);
  for (let lj = 0; lj <= li; lj++) {
    const sc = new Float32Array(S * F);
    const of = new Float32Array(S * F);
    owners.forEach(({ i, b }, e) => {
      const a = images[i]!.acts[lj]!;
      for (let k = 0; k < m; k++) {
        const row = of.subarray((e * m + k) * F, (e * m + k + 1) * F);
        fillSampleRow(row, a, lj < li ? beams[i]![b]!.path[lj]! : undefined, al[k]!);
      }
    });
    scale[lj] = sc;
    offset[lj] = of;
  }
  const res = await oracle.evaluate({ input, samples: S, scale, offset, target, grads: true });
  if (cost) cost.gradSamples += S;
  const grads = res.grads!;
  const ext: Extension[][] = images.map(() => []);
  const top: { neuron: number; score: number }[][][] = images.map(() => []);
  const firstSums: Float64Array[] = [];
  owners.forEach(({ i, b }, e) => {
    const a = images[i]!.acts[li]!;
    const G = new Float64Array(F);
    const gl = grads[li]!;
    for (let k = 0; k < m; k++) {
      const base = (e * m + k) * F;
      const ck = c[k]!;
      for (let j = 0; j < F; j++) G[j]! += ck * gl[base + j]!;
    }
    if (li === 0) firstSums.push(G);
    const path = beams[i]![b]!.path;
    let gPrev = 0;
    let wPrev = 0;
    let sumPrev = 0;
    for (let lj = 0; lj < li; lj++) {
      const p = path[lj]!;
      const w = images[i]!.acts[lj]![p]!;
      let gs = 0;
      for (let k = 0; k < m; k++) gs += c[k]! * grads[lj]![(e * m + k) * F + p]!;
      gPrev += gs;
      wPrev += w;
      sumPrev += w * gs;
    }
    const score = new Float64Array(F);
    for (let j = 0; j < F; j++) score[j] = o.score === 'product' ? (G[j]! + gPrev) * (a[j]! + wPrev) : a[j]! * G[j]! + sumPrev;
    for (let j = 0; j < F; j++) ext[i]!.push({ b, j, score: score[j]! });
    top[i]![b] = topK(score, Math.max(5, o.topK)).map((t) => ({ neuron: t.index, score: t.value }));
  });
  if (li === 0) o.onFirstPass?.(firstSums);
  return { ext, top };
}

/**
 * Effect scores: per entry, pre-filter the layer's neurons by an attribution of removing them (the
 * path so far removed), then ablate the `candidates` best one by one in forward-only samples.
 */
async function effectLayer(oracle: NeuronOracle, images: ImageContext[], beams: Entry[][], li: number, o: BeamOptions, cost?: SearchCost): Promise<LayerScores> {
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const C = Math.min(F, Math.max(1, o.candidates ?? F));
  const owners: { i: number; b: number }[] = [];
  beams.forEach((entries, i) => entries.forEach((_, b) => owners.push({ i, b })));
  const E = owners.length;
  // Candidate lists per entry.
  let cands: number[][];
  if (C >= F) cands = owners.map(() => Array.from({ length: F }, (_, j) => j));
  else {
    const q = asQuadrature(o.steps);
    const useIg = o.prefilter === 'ig';
    const per = useIg ? q.steps : 1;
    const S = E * per;
    const input = new Float32Array(S * oracle.inputSize);
    const target = new Int32Array(S);
    const scale: (Float32Array | undefined)[] = new Array(L).fill(undefined);
    for (let l = 0; l <= li; l++) scale[l] = new Float32Array(S * F).fill(1);
    owners.forEach(({ i, b }, e) => {
      for (let k = 0; k < per; k++) {
        const s = e * per + k;
        input.set(images[i]!.input, s * oracle.inputSize);
        target[s] = images[i]!.target;
        beams[i]![b]!.path.forEach((p, l) => (scale[l]![s * F + p] = 0));
        if (useIg) scale[li]!.fill(q.alphas[k]!, s * F, (s + 1) * F);
      }
    });
    const res = await oracle.evaluate({ input, samples: S, scale, offset: new Array(L).fill(undefined), target, grads: true, rows: true });
    if (cost) cost.gradSamples += S;
    cands = owners.map(({ i }, e) => {
      const attr = new Float64Array(F);
      const rows = res.rows?.[li];
      for (let k = 0; k < per; k++) {
        const s = e * per + k;
        const w = useIg ? q.weights[k]! : 1;
        for (let j = 0; j < F; j++) {
          const r = rows ? rows[s * F + j]! : images[i]!.acts[li]![j]!;
          attr[j]! += w * r * res.grads![li]![s * F + j]!;
        }
      }
      return topK(attr, C).map((t) => t.index);
    });
  }
  // Ablations: one forward sample per (entry, candidate).
  const jobs: { e: number; j: number }[] = [];
  cands.forEach((list, e) => list.forEach((j) => jobs.push({ e, j })));
  const S = jobs.length;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale: (Float32Array | undefined)[] = new Array(L).fill(undefined);
  for (let l = 0; l <= li; l++) scale[l] = new Float32Array(S * F).fill(1);
  jobs.forEach(({ e, j }, s) => {
    const { i, b } = owners[e]!;
    input.set(images[i]!.input, s * oracle.inputSize);
    target[s] = images[i]!.target;
    beams[i]![b]!.path.forEach((p, l) => (scale[l]![s * F + p] = 0));
    scale[li]![s * F + j] = 0;
  });
  const res = await oracle.evaluate({ input, samples: S, scale, offset: new Array(L).fill(undefined), target, grads: false });
  if (cost) cost.forwardSamples += S;
  const ext: Extension[][] = images.map(() => []);
  const top: { neuron: number; score: number }[][][] = images.map(() => []);
  const perEntry: { neuron: number; score: number }[][] = owners.map(() => []);
  jobs.forEach(({ e, j }, s) => {
    const { i, b } = owners[e]!;
    const score = images[i]!.fClean - res.F[s]!;
    ext[i]!.push({ b, j, score });
    perEntry[e]!.push({ neuron: j, score });
  });
  owners.forEach(({ i, b }, e) => {
    top[i]![b] = perEntry[e]!.sort((x, y) => y.score - x.score || x.neuron - y.neuron).slice(0, Math.max(5, o.topK));
  });
  return { ext, top };
}
