// trace-path's per-chunk work and run-level aggregation, independent of files and ONNX Runtime:
// clean pass -> targets -> path search -> baselines -> JAS of every path -> manipulations.
import type { NeuronOracle } from '../analysis/oracle.js';
import { searchPaths, scorePaths, type ImageContext, type LayerChoice } from '../analysis/pathSearch.js';
import { beamSearch, type Prefilter, type SearchScore } from '../analysis/beamSearch.js';
import { countingOracle, type SampleCount } from '../analysis/countingOracle.js';
import { quadrature, type QuadratureRule } from '../analysis/quadrature.js';
import { activationPath, igLayerPaths, imageKey, influencePaths, randomPath, type BaselineName } from '../analysis/baselines.js';
import { manipulatePaths } from '../analysis/manipulate.js';
import { aggregateByClass } from '../analysis/classAggregate.js';
import { argmax, mean, median, softmax } from '../analysis/stats.js';
import type { JasForm } from '../analysis/jas.js';

export type TargetChoice = 'auto' | 'label' | 'pred' | number;
/** Other searches a run can report beside its path, as fixed presets (see searchPreset). */
export const SEARCH_BASELINES = ['greedy', 'beam', 'effect'] as const;
export type SearchBaseline = (typeof SEARCH_BASELINES)[number];
export type MethodName = 'path' | BaselineName | SearchBaseline;
export type SearchStrategy = 'greedy' | 'beam' | 'effect';

/** A search: strategy, what it ranks by, beam width, effect candidates and their pre-filter. */
export interface SearchSpec {
  strategy: SearchStrategy;
  score: SearchScore;
  beam: number;
  candidates: number;
  prefilter: Prefilter;
}

export const DEFAULT_BEAM = 4;
export const DEFAULT_CANDIDATES = 16;

/**
 * The search behind a search baseline: `greedy` is the paper's (JAS product), `beam` the beam of the
 * run's width on JAS sum, `effect` the greedy effect search with the run's candidates.
 */
export function searchPreset(name: SearchBaseline, run: Pick<SearchSpec, 'beam' | 'candidates' | 'prefilter'>): SearchSpec {
  if (name === 'greedy') return { strategy: 'greedy', score: 'product', beam: 1, candidates: run.candidates, prefilter: run.prefilter };
  if (name === 'beam') return { strategy: 'beam', score: 'sum', beam: run.beam, candidates: run.candidates, prefilter: run.prefilter };
  return { strategy: 'effect', score: 'effect', beam: 1, candidates: run.candidates, prefilter: run.prefilter };
}

/** Whether two searches find the same paths (same strategy class, score, width and candidates). */
export function sameSearch(a: SearchSpec, b: SearchSpec): boolean {
  const width = (s: SearchSpec) => (s.strategy === 'beam' ? s.beam : 1);
  return a.score === b.score && width(a) === width(b) && (a.score !== 'effect' || (a.candidates === b.candidates && a.prefilter === b.prefilter));
}

export interface TraceSettings {
  steps: number;
  /** Integration rule of every integrated gradient (default left, the paper's). */
  rule?: QuadratureRule;
  /** The path's search (default: the paper's greedy on `jas`). */
  search?: SearchSpec;
  jas: JasForm;
  objective: 'prob' | 'logit';
  target: TargetChoice;
  baselines: (BaselineName | SearchBaseline)[];
  topK: number;
  seed: number;
}

export interface MethodResult {
  method: MethodName;
  /** One neuron per searched layer. */
  path: number[];
  activations: number[];
  jasProduct: number;
  jasSum: number;
  /** F(clean) - F(path zeroed), which jasSum approaches as steps grow. */
  completenessGap: number;
  removeRatio: number;
  enhanceRatio: number;
  removePred: number;
  enhancePred: number;
  /** Samples evaluated to find this path for this image: gradient-graph and forward-only. */
  gradSamples: number;
  forwardSamples: number;
}

export interface ImageResult {
  /** Position of the image in the (sharded, limited) input list. */
  index: number;
  id: string;
  label: number | null;
  pred: number;
  target: number;
  /** Objective F at the clean input (probability or logit of the target). */
  fBase: number;
  /** Softmax probability of the target class at the clean input. */
  pBase: number;
  /** The influential path's per-layer choices with their scores and top candidates. */
  layers: (LayerChoice & { zeroActivation: boolean })[];
  methods: MethodResult[];
}

export interface ChunkInput {
  /** Model input [n, ...] flattened. */
  input: Float32Array;
  ids: string[];
  labels: (number | null)[];
  /** Position of each image in the input list. */
  indices: number[];
}

function resolveTarget(choice: TargetChoice, label: number | null, pred: number, id: string): number {
  if (typeof choice === 'number') return choice;
  if (choice === 'pred') return pred;
  if (choice === 'label' || (choice === 'auto' && label !== null)) {
    if (label === null) throw new Error(`image ${id} has no label but --target label was asked for`);
    return label;
  }
  return pred;
}

/** Clean pass of a chunk: each image's context (clean rows, target, F), prediction and probabilities. */
export async function buildContexts(oracle: NeuronOracle, chunk: Pick<ChunkInput, 'input' | 'ids' | 'labels'>, targetChoice: TargetChoice, objective: 'prob' | 'logit'): Promise<{ ctxs: ImageContext[]; preds: number[]; probs: Float64Array }> {
  const n = chunk.ids.length;
  const C = oracle.numClasses;
  const F = oracle.ffn;
  const clean = await oracle.clean(chunk.input, n);
  const probs = softmax(clean.logits, n, C);
  const ctxs: ImageContext[] = [];
  const preds: number[] = [];
  for (let i = 0; i < n; i++) {
    const pred = argmax(clean.logits, i * C, (i + 1) * C);
    preds.push(pred);
    const target = resolveTarget(targetChoice, chunk.labels[i]!, pred, chunk.ids[i]!);
    const fClean = objective === 'prob' ? probs[i * C + target]! : clean.logits[i * C + target]!;
    ctxs.push({
      input: chunk.input.subarray(i * oracle.inputSize, (i + 1) * oracle.inputSize),
      acts: clean.acts.map((a) => a.subarray(i * F, (i + 1) * F)),
      target,
      fClean,
    });
  }
  return { ctxs, preds, probs };
}

/** Milliseconds per phase of traceChunk (clean, search, influence, ig-layer, score, manipulate), accumulated. */
export type PhaseTimes = Record<string, number>;

/** Trace one chunk of images (batched through the oracle); `phases` accumulates time per phase. */
export async function traceChunk(oracle: NeuronOracle, chunk: ChunkInput, s: TraceSettings, phases?: PhaseTimes): Promise<ImageResult[]> {
  const n = chunk.ids.length;
  const C = oracle.numClasses;
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    if (phases) phases[name] = (phases[name] ?? 0) + performance.now() - t;
    return r;
  };
  const { ctxs, preds, probs } = await timed('clean', () => buildContexts(oracle, chunk, s.target, s.objective));
  const rule = quadrature(s.rule ?? 'left', s.steps);
  const spec: SearchSpec = s.search ?? { strategy: 'greedy', score: s.jas, beam: 1, candidates: DEFAULT_CANDIDATES, prefilter: 'taylor' };
  let firstPass: Float64Array[] | undefined;
  const costs = new Map<MethodName, SampleCount>();
  /** Run one search on a counting view of the oracle; the paper's greedy runs its own code. */
  const runSearch = async (name: MethodName, sp: SearchSpec, keepFirst: boolean): Promise<LayerChoice[][]> => {
    const counted = countingOracle(oracle);
    const onFirstPass = keepFirst ? (g: Float64Array[]) => (firstPass = g) : undefined;
    const found =
      sp.score !== 'effect' && (sp.strategy === 'greedy' || sp.beam === 1)
        ? await searchPaths(counted, ctxs, { steps: rule, jas: sp.score, topK: s.topK, onFirstPass })
        : await beamSearch(counted, ctxs, { steps: rule, score: sp.score, beam: sp.strategy === 'beam' ? sp.beam : 1, candidates: sp.candidates, prefilter: sp.prefilter, topK: s.topK, onFirstPass });
    costs.set(name, counted.count);
    return found;
  };
  const found = await timed('search', () => runSearch('path', spec, true));
  const methods: MethodName[] = ['path', ...s.baselines];
  const pathsBy = new Map<MethodName, number[][]>();
  pathsBy.set('path', found.map((f) => f.map((c) => c.neuron)));
  for (const b of s.baselines) {
    if (b === 'greedy' || b === 'beam' || b === 'effect') {
      const sp = searchPreset(b, spec);
      const other = await timed(`search:${b}`, () => runSearch(b, sp, firstPass === undefined));
      pathsBy.set(b, other.map((f) => f.map((c) => c.neuron)));
    }
  }
  const counted = async <T>(name: MethodName, f: (o: NeuronOracle) => Promise<T>): Promise<T> => {
    const c = countingOracle(oracle);
    const r = await f(c);
    costs.set(name, c.count);
    return r;
  };
  if (s.baselines.includes('activation')) pathsBy.set('activation', ctxs.map(activationPath));
  if (s.baselines.includes('influence')) pathsBy.set('influence', await timed('influence', () => counted('influence', (o) => influencePaths(o, ctxs, rule))));
  if (s.baselines.includes('ig-layer')) pathsBy.set('ig-layer', await timed('ig-layer', () => counted('ig-layer', (o) => igLayerPaths(o, ctxs, rule, firstPass))));
  if (s.baselines.includes('random')) pathsBy.set('random', chunk.ids.map((id) => randomPath(F, L, s.seed, imageKey(id))));
  const perImage = ctxs.map((_, i) => methods.map((m) => pathsBy.get(m)![i]!));
  const scores = await timed('score', () => scorePaths(oracle, ctxs, perImage, rule));
  const manip = await timed('manipulate', () => manipulatePaths(oracle, ctxs, perImage, preds));
  return ctxs.map((c, i) => ({
    index: chunk.indices[i]!,
    id: chunk.ids[i]!,
    label: chunk.labels[i]!,
    pred: preds[i]!,
    target: c.target,
    fBase: c.fClean,
    pBase: probs[i * C + c.target]!,
    layers: found[i]!.map((ch) => ({ ...ch, zeroActivation: ch.activation === 0 })),
    methods: methods.map((m, q) => ({
      method: m,
      path: scores[i]![q]!.path,
      activations: scores[i]![q]!.activations,
      jasProduct: scores[i]![q]!.jasProduct,
      jasSum: scores[i]![q]!.jasSum,
      completenessGap: scores[i]![q]!.completenessGap,
      removeRatio: manip[i]![q]!.removeRatio,
      enhanceRatio: manip[i]![q]!.enhanceRatio,
      removePred: manip[i]![q]!.removePred,
      enhancePred: manip[i]![q]!.enhancePred,
      gradSamples: (costs.get(m)?.gradSamples ?? 0) / n,
      forwardSamples: (costs.get(m)?.forwardSamples ?? 0) / n,
    })),
  }));
}

export interface MethodSummary {
  method: MethodName;
  images: number;
  meanJasProduct: number;
  meanJasSum: number;
  meanCompletenessGap: number;
  /** Mean |jasSum - completenessGap| (how far the Riemann sum is from completeness). */
  meanCompletenessError: number;
  meanRemoveRatio: number;
  medianRemoveRatio: number;
  meanEnhanceRatio: number;
  medianEnhanceRatio: number;
  /** Fraction of images whose top-1 prediction changed. */
  removeTop1Changed: number;
  enhanceTop1Changed: number;
  /** Top-1 accuracy after the edit minus before (labelled images only; null without labels). */
  removeAccuracyDeviation: number | null;
  enhanceAccuracyDeviation: number | null;
  meanGradSamples: number;
  meanForwardSamples: number;
}

export function summarizeMethods(results: ImageResult[], methods: MethodName[]): MethodSummary[] {
  const labelled = results.filter((r) => r.label !== null);
  const accBefore = labelled.length ? labelled.filter((r) => r.pred === r.label).length / labelled.length : null;
  return methods.map((m) => {
    const rs = results.map((r) => r.methods.find((x) => x.method === m)!);
    const lab = labelled.map((r) => r.methods.find((x) => x.method === m)!);
    const accAfter = (key: 'removePred' | 'enhancePred') => (labelled.length ? labelled.filter((r, i) => lab[i]![key] === r.label).length / labelled.length : null);
    const ra = accAfter('removePred');
    const ea = accAfter('enhancePred');
    return {
      method: m,
      images: rs.length,
      meanJasProduct: mean(rs.map((r) => r.jasProduct)),
      meanJasSum: mean(rs.map((r) => r.jasSum)),
      meanCompletenessGap: mean(rs.map((r) => r.completenessGap)),
      meanCompletenessError: mean(rs.map((r) => Math.abs(r.jasSum - r.completenessGap))),
      meanRemoveRatio: mean(rs.map((r) => r.removeRatio)),
      medianRemoveRatio: median(rs.map((r) => r.removeRatio)),
      meanEnhanceRatio: mean(rs.map((r) => r.enhanceRatio)),
      medianEnhanceRatio: median(rs.map((r) => r.enhanceRatio)),
      removeTop1Changed: mean(results.map((r, i) => (rs[i]!.removePred !== r.pred ? 1 : 0))),
      enhanceTop1Changed: mean(results.map((r, i) => (rs[i]!.enhancePred !== r.pred ? 1 : 0))),
      removeAccuracyDeviation: ra === null || accBefore === null ? null : ra - accBefore,
      enhanceAccuracyDeviation: ea === null || accBefore === null ? null : ea - accBefore,
      meanGradSamples: mean(rs.map((r) => r.gradSamples ?? 0)),
      meanForwardSamples: mean(rs.map((r) => r.forwardSamples ?? 0)),
    };
  });
}

/** Per-class neuron frequency of the influential path, grouped by each image's target class. */
export function classSummary(results: ImageResult[], classes: number, layers: number, ffn: number) {
  const paths = results.map((r) => r.methods.find((m) => m.method === 'path')!.path);
  return aggregateByClass(paths, results.map((r) => r.target), classes, layers, ffn);
}
