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
//
// This module opens the sessions and runs them; the report's schema is in probeSchema.ts, the
// per-layer arithmetic in probeMetrics.ts, layers.csv and the chart in probeFiles.ts.
import * as path from 'node:path';
import { loadModel, encodeModel, type LoadedModel } from '../onnx/model.js';
import { prepareLoaded } from './prepareModel.js';
import type { ModelProto } from '../onnx/proto.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { exposeNeuronRows } from '../onnx/rewrite/intervene.js';
import { defaultToken, resolveToken, type ResolvedToken, type TokenChoice } from '../vit/tokens.js';
import { extractTail, type TailInput } from '../onnx/rewrite/tail.js';
import { gateBranches } from '../onnx/rewrite/ablate.js';
import { assertFloatModel, prepareVitModel, precisionNote } from './vitModel.js';
import type { HeadChoice, ViTLayout } from '../vit/types.js';
import { createSession, type ModelSession, type RuntimeOptions } from '../runtime/session.js';
import { fixedBatchOf, runBatched } from '../runtime/batching.js';
import { discoverImages, checkLabelRange, describeSource, type DataSource } from '../data/sources.js';
import { iterateBatches, loadBatchSkipping } from '../data/dataset.js';
import { inferPreprocess, describePreprocess, type PreprocessOverrides } from '../data/preprocess.js';
import { NeuronGradientEngine } from '../engine/gradientEngine.js';
import { defaultMaxSamples } from '../engine/neuronOracle.js';
import { formatBytes, planProbeLayers, weightBytes } from '../engine/memoryPlan.js';
import { klDivergenceFromLogits } from '../analysis/stats.js';
import { scoreLogits } from '../analysis/classify.js';
import { writeChart } from '../report/charts.js';
import { runtimeInfo, type ModelInfo, type RuntimeInfo } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { CommandRun, runCommand, type RunHooks } from './commandRun.js';
import { badInput, usageError } from '../errors.js';
import { COMMAND, probeLayersResultsSchema, type LayerResult, type ProbeLayersReport, type ProbeLayersResults } from './probeSchema.js';
import { Accumulator, majorityChance, tokenRows } from './probeMetrics.js';
import { CSV_COLUMNS, FILES, layersChartSpec, layersCsvRows } from './probeFiles.js';


/** Largest model size x blocks for which the attribution uses one gradient graph per block. */
export const PER_LAYER_ENGINE_BUDGET = 1024 ** 3;

export const DEFAULTS = { folds: 5, igSteps: 20, batch: 32, seed: 0, l2: 1e-3, deadThreshold: 1e-3 } as const;

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
  /**
   * Images per attribution gradient run (default: what the trace oracle gives one session,
   * defaultMaxSamples: the whole batch on small models, one image on ViT-S/16-sized ones, whose
   * gradient runs are compute-bound and hold ~100 MB per image). Results do not depend on it.
   */
  igImages?: number;
  /** Memory budget in bytes (--max-memory): the forward batch and igImages sized to fit (planProbeLayers). */
  maxMemory?: number;
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
    const perLayer = perLayerEngines(loaded, layout, mode);
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
  o: Required<Pick<AnalyseOptions, 'batch' | 'igSteps' | 'igImages'>>,
  timed: Timed,
): Promise<void> {
  await timed('forward', () => forwardMetrics(s, layout, acc, batch, tok, lensInput, o));
  if (s.engines.length) await timed('attribution', () => integratedGradients(s.engines, acc, batch, o.igSteps, o.igImages));
  acc.n += batch.dims[0]!;
}

/** Steps (1)-(3): exposed forward pass, logit lens, ablations. */
async function forwardMetrics(s: Sessions, layout: ViTLayout, acc: Accumulator, batch: ImageBatch, tok: ResolvedToken, lensInput: TailInput, o: { batch: number }): Promise<void> {
  const { L, K, D } = acc;
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
    acc.addRedundancy(l, xin, xmid, xout, b, T);
    const row = tokenRows(xout, b, T, D, tok);
    acc.features[l]!.set(row, n0 * D);
    lensFeeds.push(lensInput === 'tokens' ? xout : row);
    acc.addNeuronRows(l, out[nm.neuron[l]!]!.data as Float32Array, b, n0);
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
async function integratedGradients(engines: NeuronGradientEngine[], acc: Accumulator, batch: ImageBatch, m: number, perRun: number): Promise<void> {
  const { L, F } = acc;
  const b = batch.dims[0]!;
  const per = batch.data.length / b;
  const labels = batch.labels;
  const targets = Array.from(labels);
  for (let l = 0; l < L; l++) {
    const engine = engines.length === 1 ? engines[0]! : engines[l]!;
    const ig = new Float64Array(b * F);
    const p0 = new Float32Array(b);
    const p1 = new Float32Array(b);
    // Runs of at most perRun images (each image's values depend on that image alone).
    for (let i0 = 0; i0 < b; i0 += perRun) {
      const n = Math.min(perRun, b - i0);
      const data = batch.data.subarray(i0 * per, (i0 + n) * per);
      const ones = new Float32Array(n * F).fill(1);
      for (let k = 0; k <= m; k++) {
        const overrides: Record<number, Float32Array> = {};
        for (const q of engine.layers) overrides[q] = q === l ? new Float32Array(n * F).fill(k / m) : ones;
        const res = await engine.run(data, n, targets.slice(i0, i0 + n), overrides);
        if (k === 0) p0.set(res.F, i0);
        else {
          const g = res.grads[l]!;
          for (let t = 0; t < n * F; t++) ig[i0 * F + t] += g[t]! / m;
          if (k === m) p1.set(res.F, i0);
        }
      }
    }
    acc.addIntegratedGradients(l, ig, p0, p1, b);
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
/** Whether the attribution uses one gradient graph per block (see AnalyseOptions.igEngines). */
function perLayerEngines(loaded: LoadedModel, layout: ViTLayout, mode: AnalyseOptions['igEngines'] = 'auto'): boolean {
  return mode === 'per-layer' || (mode === 'auto' && loaded.sizeBytes * layout.blocks.length <= PER_LAYER_ENGINE_BUDGET);
}

/** Default images per attribution gradient run: one session's share of the trace oracle's run size, at most the batch. */
export function defaultIgImages(layout: ViTLayout, batch: number): number {
  return Math.max(1, Math.min(batch, defaultMaxSamples(layout, 1)));
}

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
      if (bt.dims[0]! > 0) await processBatch(s, layout, acc, bt, tok, lensInput, { batch, igSteps, igImages: opts.igImages ?? defaultIgImages(layout, batch) }, timed);
      opts.onProgress?.({ phase: 'images', done: acc.n + skipped, total: count });
    }
  } finally {
    await Promise.all([s.main.release(), s.tail.release(), s.gated.release(), ...s.engines.map((e) => e.release())]);
  }
  if (opts.countIsMaximum ? acc.n + skipped !== count : acc.n !== count) throw usageError(`analyseLayers: ${count} images announced but ${acc.n} delivered`);
  if (acc.n < folds) throw badInput(`only ${acc.n} of the ${count} images could be read, too few for ${folds} probe folds; fix the unreadable images or use fewer --folds`);

  const n = acc.n;
  const labelsOf = acc.labels.subarray(0, n);
  const { L, K } = acc;
  const layers: LayerResult[] = [];
  const base = acc.ablationBaseline();
  await timed('probes', async () => {
    opts.onProgress?.({ phase: 'probes', done: 0, total: L });
    for (let l = 0; l < L; l++) {
      layers.push(acc.layerResult(l, { folds, seed, l2, deadThreshold }, s.engines.length > 0));
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
  let batch = opts.batch ?? DEFAULTS.batch;
  const count = src.items.length;
  let memory: RuntimeInfo['memory'];
  if (opts.maxMemory !== undefined) {
    const engines = opts.attribution === false ? 0 : perLayerEngines(loaded, layout, opts.igEngines) ? layout.blocks.length : 1;
    const want = Math.min(batch, Math.max(1, count));
    const p = planProbeLayers({ ...layout.facts, heads: layout.facts.heads ?? null }, weightBytes(loaded.proto), { budget: opts.maxMemory, batch: want, igImages: opts.igImages ?? defaultIgImages(layout, want), engines });
    run.notice(`${COMMAND}: memory plan for --max-memory ${formatBytes(p.budget)}: ${p.batch} image${p.batch === 1 ? '' : 's'} per forward run, ${p.igImages} per attribution run; estimated peak ${formatBytes(p.estimate)}.`);
    batch = p.batch;
    opts = { ...opts, batch, igImages: p.igImages };
    memory = { budget: p.budget, estimate: Math.round(p.estimate), sessions: 1, threads: opts.runtime?.threads ?? 0, samplesPerRun: p.igImages };
  }
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
      runtime: runtimeInfo({ provider: a.provider }, { provider: rt.provider, deviceId: rt.deviceId, threads: rt.threads }, 'thread', memory),
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
