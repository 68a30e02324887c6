// The `probe-layers` service: a per-layer picture of a ViT over labelled images — logit lens,
// cross-validated linear probes (residual row and FFN neurons), Block Influence redundancy,
// attention/MLP ablation, and neuron statistics with integrated-gradient mass — from one forward
// pass with every needed intermediate exposed, one batched tail run, and batched gated ablations.
//
// Per image batch: (1) the exposed model gives logits, every block's residual streams [B,T,D] and
// neuron rows [B,F]; (2) the extracted tail (final norm + pooling + head) reads each block's output
// (all L layers in one batched run); (3) the gated model runs every (image, ablation) pair, with the
// all-gates-on row as the ablation baseline; (4) with attribution, the gradient engine scales one
// block's neuron row by alpha in 0, 1/m, ..., 1 and accumulates dP(true)/d alpha (integrated
// gradients). After the loop, the probes are fitted on the collected rows.
import * as path from 'node:path';
import * as z from 'zod';
import { loadModel, encodeModel, type LoadedModel } from '../onnx/model.js';
import { prepareLoaded } from './prepareModel.js';
import type { ModelProto } from '../onnx/proto.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { exposeNeuronRows } from '../onnx/rewrite/intervene.js';
import { defaultToken, resolveToken, type ResolvedToken, type TokenChoice } from '../vit/tokens.js';
import { extractTail, type TailInput } from '../onnx/rewrite/tail.js';
import { gateBranches, gateColumn } from '../onnx/rewrite/ablate.js';
import { assertFloatModel, prepareVitModel, precisionNote } from './vitModel.js';
import type { HeadChoice, ViTLayout } from '../vit/types.js';
import { createSession, type ModelSession, type RuntimeOptions, type Feed } from '../runtime/session.js';
import { fixedBatchOf, runBatched } from '../runtime/batching.js';
import { discoverImages, checkLabelRange, describeSource, type DataSource } from '../data/sources.js';
import { iterateBatches, loadBatchSkipping } from '../data/dataset.js';
import { inferPreprocess, describePreprocess, type PreprocessOverrides } from '../data/preprocess.js';
import { NeuronGradientEngine } from '../analysis/gradientEngine.js';
import { crossValidateProbe } from '../analysis/linearProbe.js';
import { blockInfluence, klDivergenceFromLogits } from '../analysis/stats.js';
import { scoreLogits } from '../analysis/classify.js';
import { renderSvg, writeChart, type ChartSpec } from '../report/charts.js';
import { runtimeInfo, type Envelope, type ModelInfo } from '../report/envelope.js';
import { registerReportSchema } from '../report/schema.js';
import type { CsvRow } from '../report/csv.js';
import type { OutDir } from '../report/outdir.js';
import { CommandRun, runCommand, type RunHooks } from './commandRun.js';
import { badInput, usageError } from '../errors.js';

export const COMMAND = 'probe-layers';
export const FILES = { report: 'report.json', csv: 'layers.csv', chart: 'layers.svg', chartSpec: 'layers.vl.json' } as const;

/** Largest model size x blocks for which the attribution uses one gradient graph per block. */
export const PER_LAYER_ENGINE_BUDGET = 1024 ** 3;

export const DEFAULTS = { folds: 5, igSteps: 20, batch: 32, seed: 0, l2: 1e-3, deadThreshold: 1e-3 } as const;

// ---------------------------------------------------------------------------------------------
// Results schema

const num = z.number();
const probeSchema = z.object({
  accuracy: num.describe('Mean held-out accuracy over the folds.'),
  std: num.describe('Population std of the fold accuracies.'),
  folds: z.array(num),
  converged: z.boolean().describe('Whether L-BFGS met its tolerance in every fold.'),
});
const ablationSchema = z.object({
  accuracy: num,
  meanTrueProb: num,
  accuracyDrop: num.describe('Baseline accuracy minus accuracy with the branch removed.'),
  trueProbDrop: num.describe('Baseline mean true-class probability minus the ablated one.'),
});
export const layerResultSchema = z.object({
  layer: z.int().nonnegative(),
  logitLens: z.object({
    accuracy: num,
    meanTrueProb: num,
    meanKl: num.describe('Mean KL(final output distribution || lens distribution), nats.'),
  }),
  probe: probeSchema.describe('Linear probe on the block output row (the token, or the patch mean).'),
  neuronProbe: probeSchema.describe("Linear probe on the block's FFN neuron row."),
  redundancy: z.object({
    attention: num.describe('Mean over images and tokens of 1 - cos(block input, input + attention).'),
    mlp: num.describe('Mean of 1 - cos(after attention, block output).'),
    block: num.describe('Mean of 1 - cos(block input, block output): the Block Influence.'),
  }),
  ablation: z.object({ attention: ablationSchema, mlp: ablationSchema }),
  neurons: z.object({
    meanActivation: num.describe('Mean over images and neurons of the neuron row.'),
    deadFraction: num.describe('Fraction of neurons with |activation| <= deadThreshold on every image.'),
    igMass: num.nullable().describe('Mean over images of sum_j |IG_j| for the true-class probability; null without attribution.'),
    igSum: num.nullable().describe('Mean over images of sum_j IG_j (completeness: about P(row) - P(row = 0)).'),
    completenessGap: num.nullable().describe('Mean over images of |sum_j IG_j - (P(row) - P(row = 0))|.'),
  }),
});
export const probeLayersResultsSchema = z.object({
  images: z.object({
    count: z.int().nonnegative(),
    source: z.record(z.string(), z.unknown()),
    preprocess: z.record(z.string(), z.unknown()),
    skipped: z
      .array(z.object({ id: z.string(), reason: z.string() }))
      .optional()
      .describe('With --skip-bad-images: the images that could not be read or decoded, and why (absent without the flag).'),
  }),
  token: z.union([z.literal('cls'), z.literal('mean'), z.int()]),
  lensInput: z.enum(['tokens', 'row']).describe("'tokens': the tail reads the whole residual stream as the model's head does; 'row': the chosen row broadcast to every token."),
  classes: z.int().positive(),
  chance: z.object({ uniform: num, majority: num.describe('Accuracy of always predicting the most frequent label.') }),
  model: z.object({ accuracy: num, meanTrueProb: num }),
  ablationBaseline: z.object({ accuracy: num, meanTrueProb: num }).describe('The gated model with every branch on (the reference for the drops).'),
  probeSettings: z.object({ folds: z.int(), l2: num, seed: z.int(), standardized: z.literal(true) }),
  neuronSettings: z.object({ deadThreshold: num, igSteps: z.int().nullable(), objective: z.literal('prob') }),
  layers: z.array(layerResultSchema),
});
export type LayerResult = z.infer<typeof layerResultSchema>;
export type ProbeLayersResults = z.infer<typeof probeLayersResultsSchema>;
export type ProbeLayersReport = Envelope<ProbeLayersResults>;

registerReportSchema(COMMAND, probeLayersResultsSchema);

// ---------------------------------------------------------------------------------------------
// Options

export interface ProgressEvent {
  phase: 'images' | 'probes';
  done: number;
  total: number;
}

export interface AnalyseOptions {
  /** Row of the residual stream and neuron tensor: 'cls', 'mean' or an index; default by pooling. */
  token?: TokenChoice;
  folds?: number;
  seed?: number;
  l2?: number;
  /** Integrated-gradient mass per layer (default true). */
  attribution?: boolean;
  igSteps?: number;
  deadThreshold?: number;
  /** Images per run. */
  batch?: number;
  runtime?: RuntimeOptions;
  /** Graph cache folder for the gradient engine. */
  cacheDir?: string;
  /**
   * Gradient graphs for the attribution: one per block ('per-layer': the backward pass stops at that
   * block, about 30% faster on vit-mnist), one for all blocks ('shared': one session instead of L),
   * or 'auto' (per-layer while L copies of the model weights stay under 1 GiB).
   */
  igEngines?: 'auto' | 'per-layer' | 'shared';
  onProgress?: (e: ProgressEvent) => void;
  /** `count` is an upper bound: batches may deliver fewer images (they report the others as skipped). */
  countIsMaximum?: boolean;
}

export interface ProbeLayersOptions extends AnalyseOptions {
  images: string;
  labels?: string;
  limit?: number;
  /** Graph output holding the logits (default: located). */
  output?: string;
  /** Distilled models (DeiT): probe the average of both heads (default) or one head. */
  head?: HeadChoice;
  preprocess?: PreprocessOverrides;
  /** The options as given on the command line, for the report. */
  reportOptions?: Record<string, unknown>;
  /** Called once the model, images, labels and options are checked, before any inference. */
  beforeRun?: () => void;
  /** --skip-bad-images: leave out images that cannot be read, list them in the report (default: stop, naming the file). */
  skipBadImages?: boolean;
}

/** A batch of preprocessed images with labels. */
export interface ImageBatch {
  data: Float32Array;
  /** [b, C, H, W] */
  dims: readonly number[];
  labels: Int32Array;
  /** Images of the input left out while this batch was read (--skip-bad-images); they count as done for progress. */
  skipped?: number;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

/** Rows [b, D] of a residual stream [b, T, D]: one token row, or the mean of the given rows. */
export function tokenRows(x: Float32Array, b: number, T: number, D: number, tok: ResolvedToken): Float32Array {
  const out = new Float32Array(b * D);
  for (let i = 0; i < b; i++) {
    const o = i * D;
    if (tok.kind === 'row') {
      out.set(x.subarray((i * T + tok.row) * D, (i * T + tok.row + 1) * D), o);
    } else {
      const acc = new Float64Array(D);
      for (const r of tok.rows) {
        const base = (i * T + r) * D;
        for (let j = 0; j < D; j++) acc[j] += x[base + j]!;
      }
      for (let j = 0; j < D; j++) out[o + j] = acc[j]! / tok.rows.length;
    }
  }
  return out;
}

/** Accuracy of always predicting the most frequent label. */
export function majorityChance(labels: ArrayLike<number>, classes: number): number {
  const c = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) c[labels[i]!]!++;
  let m = 0;
  for (const v of c) if (v > m) m = v;
  return labels.length ? m / labels.length : NaN;
}

/** Cross-validated probe summary as reported. */
export function probeFeatures(X: Float32Array, y: Int32Array, n: number, d: number, classes: number, o: { folds: number; seed: number; l2: number }): z.infer<typeof probeSchema> {
  const cv = crossValidateProbe(X, y, n, d, classes, { folds: o.folds, seed: o.seed, l2: o.l2 });
  return { accuracy: cv.mean, std: cv.std, folds: cv.foldAccuracies, converged: cv.converged.every(Boolean) };
}

function parseToken(layout: ViTLayout, token: TokenChoice | undefined): { token: TokenChoice; tok: ResolvedToken; lensInput: TailInput } {
  const dflt = defaultToken(layout);
  const t = token ?? dflt;
  const tok = resolveToken(layout, t);
  return { token: t, tok, lensInput: t === dflt ? 'tokens' : 'row' };
}

/** Options with defaults filled in and checked against the model and the image count. */
export function checkOptions(layout: ViTLayout, count: number, opts: AnalyseOptions) {
  const folds = opts.folds ?? DEFAULTS.folds;
  const seed = opts.seed ?? DEFAULTS.seed;
  const l2 = opts.l2 ?? DEFAULTS.l2;
  const igSteps = opts.igSteps ?? DEFAULTS.igSteps;
  const batch = opts.batch ?? DEFAULTS.batch;
  const deadThreshold = opts.deadThreshold ?? DEFAULTS.deadThreshold;
  if (!Number.isInteger(folds) || folds < 2) throw usageError(`--folds must be an integer >= 2 (got ${folds})`);
  if (!Number.isInteger(igSteps) || igSteps < 1) throw usageError(`--steps must be a positive integer (got ${igSteps})`);
  if (!Number.isInteger(batch) || batch < 1) throw usageError(`--batch must be a positive integer (got ${batch})`);
  if (!(deadThreshold >= 0)) throw usageError(`--dead-threshold must be a non-negative number (got ${deadThreshold})`);
  if (!(l2 >= 0)) throw usageError(`--l2 must be a non-negative number (got ${l2})`);
  if (count < folds) throw badInput(`${count} labelled images cannot fill ${folds} probe folds; use at least ${folds} images or fewer --folds`);
  return { folds, seed, l2, igSteps, batch, deadThreshold, ...parseToken(layout, opts.token) };
}

// ---------------------------------------------------------------------------------------------
// The analysis over batches

interface Sessions {
  main: ModelSession;
  tail: ModelSession;
  gated: ModelSession;
  /** One engine for every block, or one per block (index = block); empty without attribution. */
  engines: NeuronGradientEngine[];
  names: { residual: string[]; attnResidual: string[]; output: string[]; neuron: string[]; gates: string; gateColumns: number; tailInput: string; tailOutput: string };
}

async function openSessions(loaded: LoadedModel, layout: ViTLayout, token: TokenChoice, lensInput: TailInput, o: AnalyseOptions): Promise<Sessions> {
  const model: ModelProto = loaded.proto;
  const blocks = layout.blocks;
  const rows = exposeNeuronRows(model, layout, { token });
  const residual = blocks.map((b) => b.input);
  const attnResidual = blocks.map((b) => b.attnResidual);
  const output = blocks.map((b) => b.output);
  const neuron = blocks.map((b) => rows.activations[b.index]!);
  const exposed = exposeOutputs(rows.model, [...residual, ...attnResidual, ...output]);
  const tail = extractTail(model, layout, { input: lensInput });
  const gated = gateBranches(model, layout);
  const rt = o.runtime ?? {};
  const main = await createSession(encodeModel(exposed), rt);
  const tailS = await createSession(encodeModel(tail.model), rt);
  const gatedS = await createSession(encodeModel(gated.model), rt);
  const engines: NeuronGradientEngine[] = [];
  if (o.attribution !== false) {
    const mode = o.igEngines ?? 'auto';
    const perLayer = mode === 'per-layer' || (mode === 'auto' && loaded.sizeBytes * blocks.length <= PER_LAYER_ENGINE_BUDGET);
    const common = { mode: 'scale' as const, token, objective: 'prob' as const, provider: rt.provider, threads: rt.threads, cacheDir: o.cacheDir, notice: rt.notice };
    if (perLayer) for (const b of blocks) engines.push(await NeuronGradientEngine.create(loaded, layout, { ...common, layers: [b.index] }));
    else engines.push(await NeuronGradientEngine.create(loaded, layout, common));
  }
  return {
    main,
    tail: tailS,
    gated: gatedS,
    engines,
    names: { residual, attnResidual, output, neuron, gates: gated.gates, gateColumns: gated.columns, tailInput: tail.input, tailOutput: tail.output },
  };
}

class Accumulator {
  readonly L: number;
  readonly K: number;
  readonly D: number;
  readonly F: number;
  n = 0;
  modelCorrect = 0;
  modelProb = 0;
  readonly lens: { correct: number; prob: number; kl: number }[];
  readonly red: { attn: number; mlp: number; block: number; rows: number }[];
  /** Config 0 = all branches on; config 1 + c = gate column c off. */
  readonly abl: { correct: number; prob: number }[];
  readonly neuronSum: Float64Array;
  readonly neuronMaxAbs: Float64Array[];
  readonly ig: { abs: number; sum: number; gap: number }[];
  readonly features: Float32Array[];
  readonly neurons: Float32Array[];
  readonly labels: Int32Array;

  constructor(layout: ViTLayout, count: number) {
    this.L = layout.blocks.length;
    this.K = layout.facts.numClasses;
    this.D = layout.facts.width;
    this.F = layout.facts.ffnWidth;
    const L = this.L;
    this.lens = Array.from({ length: L }, () => ({ correct: 0, prob: 0, kl: 0 }));
    this.red = Array.from({ length: L }, () => ({ attn: 0, mlp: 0, block: 0, rows: 0 }));
    this.abl = Array.from({ length: 2 * L + 1 }, () => ({ correct: 0, prob: 0 }));
    this.neuronSum = new Float64Array(L);
    this.neuronMaxAbs = Array.from({ length: L }, () => new Float64Array(this.F));
    this.ig = Array.from({ length: L }, () => ({ abs: 0, sum: 0, gap: 0 }));
    this.features = Array.from({ length: L }, () => new Float32Array(count * this.D));
    this.neurons = Array.from({ length: L }, () => new Float32Array(count * this.F));
    this.labels = new Int32Array(count);
  }
}

function copyRows(src: Float32Array, per: number, start: number, count: number): Float32Array {
  return src.slice(start * per, (start + count) * per);
}

type Timed = <T>(phase: string, f: () => Promise<T>) => Promise<T>;

async function processBatch(
  s: Sessions,
  layout: ViTLayout,
  acc: Accumulator,
  batch: ImageBatch,
  tok: ResolvedToken,
  lensInput: TailInput,
  o: Required<Pick<AnalyseOptions, 'batch' | 'igSteps'>>,
  timed: Timed,
): Promise<void> {
  await timed('forward', () => forwardMetrics(s, layout, acc, batch, tok, lensInput, o));
  if (s.engines.length) await timed('attribution', () => integratedGradients(s.engines, acc, batch, o.igSteps));
  acc.n += batch.dims[0]!;
}

/** Steps (1)-(3): exposed forward pass, logit lens, ablations. */
async function forwardMetrics(s: Sessions, layout: ViTLayout, acc: Accumulator, batch: ImageBatch, tok: ResolvedToken, lensInput: TailInput, o: { batch: number }): Promise<void> {
  const { L, K, D, F } = acc;
  const T = layout.facts.tokens;
  const b = batch.dims[0]!;
  const per = batch.data.length / b;
  const imgDims = (c: number) => [c, ...batch.dims.slice(1)];
  const labels = batch.labels;
  const n0 = acc.n;
  acc.labels.set(labels, n0);

  // (1) One forward pass with every intermediate exposed.
  const nm = s.names;
  const fetch = [layout.logits, ...new Set([...nm.residual, ...nm.attnResidual, ...nm.output]), ...nm.neuron];
  const out = await runBatched(s.main, (st, c) => ({ [layout.input]: { data: copyRows(batch.data, per, st, c), dims: imgDims(c) } }), b, {
    batchSize: o.batch,
    fixedBatch: fixedBatchOf(s.main, layout.input),
    outputs: fetch,
  });
  const logits = out[layout.logits]!.data as Float32Array;
  const m = scoreLogits(logits, b, K, labels);
  acc.modelCorrect += m.correct;
  acc.modelProb += m.probSum;

  const lensFeeds: Float32Array[] = [];
  for (let l = 0; l < L; l++) {
    const xin = out[nm.residual[l]!]!.data as Float32Array;
    const xmid = out[nm.attnResidual[l]!]!.data as Float32Array;
    const xout = out[nm.output[l]!]!.data as Float32Array;
    const r = acc.red[l]!;
    r.attn += blockInfluence(xin, xmid, b, T, D) * b * T;
    r.mlp += blockInfluence(xmid, xout, b, T, D) * b * T;
    r.block += blockInfluence(xin, xout, b, T, D) * b * T;
    r.rows += b * T;
    const row = tokenRows(xout, b, T, D, tok);
    acc.features[l]!.set(row, n0 * D);
    lensFeeds.push(lensInput === 'tokens' ? xout : row);
    const a = out[nm.neuron[l]!]!.data as Float32Array;
    acc.neurons[l]!.set(a, n0 * F);
    const mx = acc.neuronMaxAbs[l]!;
    let sum = 0;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < F; j++) {
        const v = a[i * F + j]!;
        sum += v;
        const av = Math.abs(v);
        if (av > mx[j]!) mx[j] = av;
      }
    }
    acc.neuronSum[l] += sum;
  }

  // (2) Logit lens: the model's own tail on every block's output, all layers in one batched run.
  const lensPer = lensInput === 'tokens' ? T * D : D;
  const lensDims = (c: number) => (lensInput === 'tokens' ? [c, T, D] : [c, D]);
  const lensOut = await runBatched(
    s.tail,
    (st, c) => {
      const data = new Float32Array(c * lensPer);
      for (let r = 0; r < c; r++) {
        const idx = st + r;
        const l = Math.floor(idx / b);
        const i = idx % b;
        data.set(lensFeeds[l]!.subarray(i * lensPer, (i + 1) * lensPer), r * lensPer);
      }
      return { [nm.tailInput]: { data, dims: lensDims(c) } };
    },
    L * b,
    { batchSize: o.batch, fixedBatch: fixedBatchOf(s.tail, nm.tailInput), outputs: [nm.tailOutput] },
  );
  const lensLogits = lensOut[nm.tailOutput]!.data as Float32Array;
  for (let l = 0; l < L; l++) {
    const ll = lensLogits.subarray(l * b * K, (l + 1) * b * K);
    const sc = scoreLogits(ll, b, K, labels);
    const kl = klDivergenceFromLogits(logits, ll, b, K);
    const e = acc.lens[l]!;
    e.correct += sc.correct;
    e.prob += sc.probSum;
    for (const v of kl) e.kl += v;
  }

  // (3) Ablations: every (config, image) pair in the batch axis; config 0 keeps every branch.
  const C = 2 * L + 1;
  const cols = nm.gateColumns;
  const ablOut = await runBatched(
    s.gated,
    (st, c) => {
      const data = new Float32Array(c * per);
      const gates = new Float32Array(c * cols).fill(1);
      for (let r = 0; r < c; r++) {
        const idx = st + r;
        const cfg = Math.floor(idx / b);
        const i = idx % b;
        data.set(batch.data.subarray(i * per, (i + 1) * per), r * per);
        if (cfg > 0) gates[r * cols + cfg - 1] = 0;
      }
      return { [layout.input]: { data, dims: imgDims(c) }, [nm.gates]: { data: gates, dims: [c, cols] } };
    },
    C * b,
    { batchSize: o.batch, fixedBatch: fixedBatchOf(s.gated, layout.input), outputs: [layout.logits] },
  );
  const ablLogits = ablOut[layout.logits]!.data as Float32Array;
  for (let cfg = 0; cfg < C; cfg++) {
    const sc = scoreLogits(ablLogits.subarray(cfg * b * K, (cfg + 1) * b * K), b, K, labels);
    acc.abl[cfg]!.correct += sc.correct;
    acc.abl[cfg]!.prob += sc.probSum;
  }
}

/**
 * Step (4): integrated gradients of P(true) w.r.t. each block's neuron row, scaled by alpha = k/m
 * (k = 1..m, right Riemann sum; the engine's scale-mode input u gives dF/du_j = a_j dF/da_j at
 * alpha a, so the mean over k is IG_j). alpha = 0 is run once for the completeness check.
 */
async function integratedGradients(engines: NeuronGradientEngine[], acc: Accumulator, batch: ImageBatch, m: number): Promise<void> {
  const { L, F } = acc;
  const b = batch.dims[0]!;
  const labels = batch.labels;
  const ones = new Float32Array(b * F).fill(1);
  const targets = Array.from(labels);
  for (let l = 0; l < L; l++) {
    const engine = engines.length === 1 ? engines[0]! : engines[l]!;
    const ig = new Float64Array(b * F);
    let p0: Float32Array | undefined;
    let p1: Float32Array | undefined;
    for (let k = 0; k <= m; k++) {
      const overrides: Record<number, Float32Array> = {};
      for (const q of engine.layers) overrides[q] = q === l ? new Float32Array(b * F).fill(k / m) : ones;
      const res = await engine.run(batch.data, b, targets, overrides);
      if (k === 0) p0 = res.F;
      else {
        const g = res.grads[l]!;
        for (let t = 0; t < b * F; t++) ig[t] += g[t]! / m;
        if (k === m) p1 = res.F;
      }
    }
    const e = acc.ig[l]!;
    for (let i = 0; i < b; i++) {
      let absSum = 0;
      let sum = 0;
      for (let j = 0; j < F; j++) {
        const v = ig[i * F + j]!;
        absSum += Math.abs(v);
        sum += v;
      }
      e.abs += absSum;
      e.sum += sum;
      e.gap += Math.abs(sum - (p1![i]! - p0![i]!));
    }
  }
}

export interface AnalyseResult {
  results: ProbeLayersResults;
  provider: ModelSession['provider'];
  inference: { runs: number; runMs: number };
  phases: Record<string, number>;
}

/**
 * Run the whole analysis on `count` labelled images delivered by `batches` (each at most
 * `opts.batch` images, preprocessed for the model). Pure of files: tests feed synthetic batches.
 */
export async function analyseLayers(loaded: LoadedModel, layout: ViTLayout, batches: AsyncIterable<ImageBatch> | Iterable<ImageBatch>, count: number, opts: AnalyseOptions = {}): Promise<AnalyseResult> {
  const { folds, seed, l2, igSteps, batch, deadThreshold, token, tok, lensInput } = checkOptions(layout, count, opts);
  const phases: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      phases[name] = (phases[name] ?? 0) + performance.now() - t0;
    }
  };

  const s = await timed('build', () => openSessions(loaded, layout, token, lensInput, opts));
  const acc = new Accumulator(layout, count);
  let skipped = 0;
  try {
    opts.onProgress?.({ phase: 'images', done: 0, total: count });
    for await (const bt of batches) {
      if (acc.n + bt.dims[0]! + skipped + (bt.skipped ?? 0) > count) throw usageError(`analyseLayers: got more than the ${count} images announced`);
      skipped += bt.skipped ?? 0;
      if (bt.dims[0]! > 0) await processBatch(s, layout, acc, bt, tok, lensInput, { batch, igSteps }, timed);
      opts.onProgress?.({ phase: 'images', done: acc.n + skipped, total: count });
    }
  } finally {
    await Promise.all([s.main.release(), s.tail.release(), s.gated.release(), ...s.engines.map((e) => e.release())]);
  }
  if (opts.countIsMaximum ? acc.n + skipped !== count : acc.n !== count) throw usageError(`analyseLayers: ${count} images announced but ${acc.n} delivered`);
  if (acc.n < folds) throw badInput(`only ${acc.n} of the ${count} images could be read, too few for ${folds} probe folds; fix the unreadable images or use fewer --folds`);

  const n = acc.n;
  const labelsOf = acc.labels.subarray(0, n);
  const { L, K, D, F } = acc;
  const layers: LayerResult[] = [];
  const base = { accuracy: acc.abl[0]!.correct / n, meanTrueProb: acc.abl[0]!.prob / n };
  await timed('probes', async () => {
    opts.onProgress?.({ phase: 'probes', done: 0, total: L });
    for (let l = 0; l < L; l++) {
      const probe = probeFeatures(acc.features[l]!.subarray(0, n * D), labelsOf, n, D, K, { folds, seed, l2 });
      const neuronProbe = probeFeatures(acc.neurons[l]!.subarray(0, n * F), labelsOf, n, F, K, { folds, seed, l2 });
      const abl = (col: number) => {
        const a = acc.abl[col + 1]!;
        const accuracy = a.correct / n;
        const meanTrueProb = a.prob / n;
        return { accuracy, meanTrueProb, accuracyDrop: base.accuracy - accuracy, trueProbDrop: base.meanTrueProb - meanTrueProb };
      };
      const red = acc.red[l]!;
      let dead = 0;
      for (const v of acc.neuronMaxAbs[l]!) if (v <= deadThreshold) dead++;
      const ig = acc.ig[l]!;
      layers.push({
        layer: l,
        logitLens: { accuracy: acc.lens[l]!.correct / n, meanTrueProb: acc.lens[l]!.prob / n, meanKl: acc.lens[l]!.kl / n },
        probe,
        neuronProbe,
        redundancy: { attention: red.attn / red.rows, mlp: red.mlp / red.rows, block: red.block / red.rows },
        ablation: { attention: abl(gateColumn(l, 'attn')), mlp: abl(gateColumn(l, 'mlp')) },
        neurons: {
          meanActivation: acc.neuronSum[l]! / (n * F),
          deadFraction: dead / F,
          igMass: s.engines.length ? ig.abs / n : null,
          igSum: s.engines.length ? ig.sum / n : null,
          completenessGap: s.engines.length ? ig.gap / n : null,
        },
      });
      opts.onProgress?.({ phase: 'probes', done: l + 1, total: L });
    }
  });

  const results: ProbeLayersResults = {
    images: { count: n, source: {}, preprocess: {} },
    token,
    lensInput,
    classes: K,
    chance: { uniform: 1 / K, majority: majorityChance(labelsOf, K) },
    model: { accuracy: acc.modelCorrect / n, meanTrueProb: acc.modelProb / n },
    ablationBaseline: base,
    probeSettings: { folds, l2, seed, standardized: true },
    neuronSettings: { deadThreshold, igSteps: s.engines.length ? igSteps : null, objective: 'prob' },
    layers,
  };
  const stats = [s.main, s.tail, s.gated].reduce((a, x) => ({ runs: a.runs + x.stats.runs, runMs: a.runMs + x.stats.runMs }), { runs: 0, runMs: 0 });
  return { results, provider: s.main.provider, inference: stats, phases };
}

// ---------------------------------------------------------------------------------------------
// Files: CSV rows and the chart

export const CSV_COLUMNS = [
  'layer',
  'family',
  'accuracy',
  'accuracy_std',
  'true_prob',
  'kl',
  'accuracy_drop',
  'true_prob_drop',
  'block_influence',
  'mean_activation',
  'dead_fraction',
  'ig_mass',
  'ig_sum',
] as const;

/** layers.csv: one row per layer and metric family; cells a family does not have stay empty. */
export function layersCsvRows(r: ProbeLayersResults): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const x of r.layers) {
    const layer = x.layer;
    rows.push({ layer, family: 'logit_lens', accuracy: x.logitLens.accuracy, true_prob: x.logitLens.meanTrueProb, kl: x.logitLens.meanKl });
    rows.push({ layer, family: 'probe_residual', accuracy: x.probe.accuracy, accuracy_std: x.probe.std });
    rows.push({ layer, family: 'probe_neurons', accuracy: x.neuronProbe.accuracy, accuracy_std: x.neuronProbe.std });
    rows.push({ layer, family: 'redundancy_attention', block_influence: x.redundancy.attention });
    rows.push({ layer, family: 'redundancy_mlp', block_influence: x.redundancy.mlp });
    rows.push({ layer, family: 'redundancy_block', block_influence: x.redundancy.block });
    for (const [fam, a] of [['ablation_attention', x.ablation.attention], ['ablation_mlp', x.ablation.mlp]] as const) {
      rows.push({ layer, family: fam, accuracy: a.accuracy, true_prob: a.meanTrueProb, accuracy_drop: a.accuracyDrop, true_prob_drop: a.trueProbDrop });
    }
    rows.push({ layer, family: 'neurons', mean_activation: x.neurons.meanActivation, dead_fraction: x.neurons.deadFraction, ig_mass: x.neurons.igMass, ig_sum: x.neurons.igSum });
  }
  return rows;
}

/** The per-layer curves as a vega-lite line chart (one line per metric, blocks on x). */
export function layersChartSpec(r: ProbeLayersResults, title = 'probe-layers'): ChartSpec {
  const series: [string, (x: ProbeLayersResults['layers'][number]) => number | null][] = [
    ['logit-lens accuracy', (x) => x.logitLens.accuracy],
    ['probe accuracy (residual)', (x) => x.probe.accuracy],
    ['probe accuracy (neurons)', (x) => x.neuronProbe.accuracy],
    ['redundancy (1 - cos, block)', (x) => x.redundancy.block],
    ['attention ablation drop', (x) => x.ablation.attention.accuracyDrop],
    ['MLP ablation drop', (x) => x.ablation.mlp.accuracyDrop],
  ];
  const values = r.layers.flatMap((x) => series.map(([name, f]) => ({ block: x.layer, series: name, value: f(x) }))).filter((v) => v.value !== null && Number.isFinite(v.value));
  return {
    title,
    width: 520,
    height: 300,
    data: { values },
    mark: { type: 'line', point: { size: 45, filled: true }, strokeWidth: 2 },
    encoding: {
      x: { field: 'block', type: 'ordinal', title: 'block', axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: 'accuracy / Block Influence / drop' },
      color: { field: 'series', type: 'nominal', title: null, sort: series.map(([n]) => n) },
      shape: { field: 'series', type: 'nominal', title: null, sort: series.map(([n]) => n) },
      tooltip: [{ field: 'series' }, { field: 'block' }, { field: 'value', format: '.4f' }],
    },
  } as ChartSpec;
}

/** The per-layer curves as a standalone SVG. */
export function layersChartSvg(r: ProbeLayersResults, title = 'probe-layers'): Promise<string> {
  return renderSvg(layersChartSpec(r, title));
}

// ---------------------------------------------------------------------------------------------
// The command: files in, report out

/** The labelled images of `opts.images` (limited), or exit 2 when labels are missing. */
export function labelledSource(opts: Pick<ProbeLayersOptions, 'images' | 'labels' | 'limit'>, numClasses: number): DataSource {
  const src = discoverImages(opts.images, { labels: opts.labels });
  if (opts.limit !== undefined) src.items = src.items.slice(0, opts.limit);
  const unlabelled = src.items.filter((i) => i.label === undefined);
  if (unlabelled.length === src.items.length) {
    throw badInput(
      `${opts.images} carries no labels; probe-layers needs the true class of every image: pass --labels <file,label CSV>, use class subfolders (ImageFolder), or an IDX images file with its labels file`,
    );
  }
  if (unlabelled.length > 0) {
    throw badInput(`${unlabelled.length} of the ${src.items.length} images of ${opts.images} have no label (first: ${unlabelled[0]!.id}); add them to ${opts.labels ?? 'the labels'} or remove them`);
  }
  checkLabelRange(src, numClasses);
  return src;
}

/**
 * Run probe-layers on a model file and an image source; returns the validated report. `run` carries
 * the clock, notices and progress (a fresh one when called on its own, as the benchmarks do).
 */
export async function probeLayers(modelPath: string, opts: ProbeLayersOptions, run: CommandRun = new CommandRun(COMMAND)): Promise<ProbeLayersReport> {
  const clock = run.clock;
  const stored = await clock.time('load', () => loadModel(modelPath));
  assertFloatModel(stored.proto, modelPath, 'probe-layers');
  const { loaded: prepped } = await clock.time('prepare', () => prepareLoaded(stored, { label: modelPath, notice: (l) => run.notice(l) }));
  const { loaded, layout } = await clock.time('locate', () => prepareVitModel(prepped, { output: opts.output, head: opts.head }));
  const note = precisionNote(layout);
  if (note) run.notice(note);
  const src = labelledSource(opts, layout.facts.numClasses);
  const spec = inferPreprocess(layout.inputDims, opts.preprocess);
  const batch = opts.batch ?? DEFAULTS.batch;
  const count = src.items.length;
  const { folds } = checkOptions(layout, count, opts);
  opts.beforeRun?.();
  const skipped: { id: string; reason: string }[] = [];
  async function* batches(): AsyncGenerator<ImageBatch> {
    if (!opts.skipBadImages) {
      for await (const b of iterateBatches(src.items, spec, batch)) yield { data: b.data, dims: b.dims, labels: b.labels };
      return;
    }
    for (let start = 0; start < count; start += batch) {
      const items = src.items.slice(start, start + batch);
      const got = await loadBatchSkipping(items, spec);
      for (const bad of got.skipped) {
        skipped.push({ id: bad.item.id, reason: bad.reason });
        run.notice(`vitpath: skipping an unreadable image: ${bad.reason}`);
      }
      const kept = got.kept.map((k) => items[k]!);
      yield { data: got.data, dims: [kept.length, spec.channels, spec.height, spec.width], labels: Int32Array.from(kept, (it) => it.label ?? -1), skipped: got.skipped.length };
    }
  }
  const a = await analyseLayers(loaded, layout, batches(), count, {
    ...opts,
    countIsMaximum: opts.skipBadImages,
    onProgress: (e) => {
      if (e.phase === 'images') run.progress(e.done, e.total);
      else if (e.done === 0) run.notice(`${COMMAND}: fitting ${e.total} x 2 linear probes (${folds}-fold)`);
      opts.onProgress?.(e);
    },
  });
  for (const [k, v] of Object.entries(a.phases)) clock.add(k, v);
  if (skipped.length) run.notice(`${COMMAND}: skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'} of ${count} (listed in report.json under results.images.skipped).`);
  const results: ProbeLayersResults = {
    ...a.results,
    images: { count: count - skipped.length, source: describeSource(src), preprocess: describePreprocess(spec), ...(opts.skipBadImages ? { skipped } : {}) },
  };
  const rt = opts.runtime ?? {};
  return run.envelope(
    {
      options: opts.reportOptions ?? {
        images: opts.images,
        labels: opts.labels,
        limit: opts.limit,
        folds: opts.folds ?? DEFAULTS.folds,
        token: a.results.token,
        attribution: opts.attribution !== false,
        igSteps: opts.igSteps ?? DEFAULTS.igSteps,
        batch,
        seed: opts.seed ?? DEFAULTS.seed,
      },
      model: { path: modelPath, sha256: loaded.sha256, layout: layout as unknown as ModelInfo['layout'] },
      runtime: runtimeInfo({ provider: a.provider }, { provider: rt.provider, deviceId: rt.deviceId, threads: rt.threads }, 'thread'),
      inference: a.inference,
      results,
    },
    probeLayersResultsSchema,
  );
}

/** Write layers.csv and layers.svg (+ its spec layers.vl.json) into `out` (report.json is written after them, by the run); returns the paths. */
export async function writeProbeLayersFiles(report: ProbeLayersReport, out: OutDir): Promise<string[]> {
  return [
    out.writeCsv(FILES.csv, layersCsvRows(report.results), CSV_COLUMNS),
    ...(await writeChart(out, 'layers', layersChartSpec(report.results, `probe-layers: ${path.basename(report.model.path)}, ${report.results.images.count} images`))),
  ];
}

/**
 * The whole command: check the inputs, claim the output folder before any inference (refused when
 * a report file exists without --force, when another run holds it or it cannot be written; no
 * folder is created for bad input), run, write the files with report.json last.
 */
export async function runProbeLayers(
  modelPath: string,
  opts: ProbeLayersOptions & { out?: string; force?: boolean },
  hooks: RunHooks = {},
): Promise<{ report: ProbeLayersReport; outDir: OutDir }> {
  return runCommand(COMMAND, hooks, async (run) => {
    const report = await probeLayers(
      modelPath,
      {
        ...opts,
        beforeRun: () => {
          opts.beforeRun?.();
          run.claim({ out: opts.out, force: opts.force, files: Object.values(FILES) });
        },
      },
      run,
    );
    await run.writeReports(report, (out) => writeProbeLayersFiles(report, out));
    return { report, outDir: run.out };
  });
}
