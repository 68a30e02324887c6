// trace-path's per-chunk work and run-level aggregation, independent of files and ONNX Runtime:
// clean pass -> targets -> path search -> baselines -> JAS of every path -> manipulations.
import type { NeuronOracle } from '../analysis/oracle.js';
import { searchPaths, scorePaths, type ImageContext, type LayerChoice } from '../analysis/pathSearch.js';
import { activationPath, igLayerPaths, imageKey, influencePaths, randomPath, type BaselineName } from '../analysis/baselines.js';
import { manipulatePaths } from '../analysis/manipulate.js';
import { aggregateByClass } from '../analysis/classAggregate.js';
import { argmax, mean, median, softmax } from '../analysis/stats.js';
import type { JasForm } from '../analysis/jas.js';

export type TargetChoice = 'auto' | 'label' | 'pred' | number;
export type MethodName = 'path' | BaselineName;

export interface TraceSettings {
  steps: number;
  jas: JasForm;
  objective: 'prob' | 'logit';
  target: TargetChoice;
  baselines: BaselineName[];
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
  const clean = await timed('clean', () => oracle.clean(chunk.input, n));
  const probs = softmax(clean.logits, n, C);
  const ctxs: ImageContext[] = [];
  const preds: number[] = [];
  for (let i = 0; i < n; i++) {
    const pred = argmax(clean.logits, i * C, (i + 1) * C);
    preds.push(pred);
    const target = resolveTarget(s.target, chunk.labels[i]!, pred, chunk.ids[i]!);
    const fClean = s.objective === 'prob' ? probs[i * C + target]! : clean.logits[i * C + target]!;
    ctxs.push({
      input: chunk.input.subarray(i * oracle.inputSize, (i + 1) * oracle.inputSize),
      acts: clean.acts.map((a) => a.subarray(i * F, (i + 1) * F)),
      target,
      fClean,
    });
  }
  let firstPass: Float64Array[] | undefined;
  const found = await timed('search', () => searchPaths(oracle, ctxs, { steps: s.steps, jas: s.jas, topK: s.topK, onFirstPass: (g) => (firstPass = g) }));
  const methods: MethodName[] = ['path', ...s.baselines];
  const pathsBy = new Map<MethodName, number[][]>();
  pathsBy.set('path', found.map((f) => f.map((c) => c.neuron)));
  if (s.baselines.includes('activation')) pathsBy.set('activation', ctxs.map(activationPath));
  if (s.baselines.includes('influence')) pathsBy.set('influence', await timed('influence', () => influencePaths(oracle, ctxs, s.steps)));
  if (s.baselines.includes('ig-layer')) pathsBy.set('ig-layer', await timed('ig-layer', () => igLayerPaths(oracle, ctxs, s.steps, firstPass)));
  if (s.baselines.includes('random')) pathsBy.set('random', chunk.ids.map((id) => randomPath(F, L, s.seed, imageKey(id))));
  const perImage = ctxs.map((_, i) => methods.map((m) => pathsBy.get(m)![i]!));
  const scores = await timed('score', () => scorePaths(oracle, ctxs, perImage, s.steps));
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
    };
  });
}

/** Per-class neuron frequency of the influential path, grouped by each image's target class. */
export function classSummary(results: ImageResult[], classes: number, layers: number, ffn: number) {
  const paths = results.map((r) => r.methods.find((m) => m.method === 'path')!.path);
  return aggregateByClass(paths, results.map((r) => r.target), classes, layers, ffn);
}
