// The `prune` service: score the FFN neurons of a ViT on scoring images with one importance
// criterion, decide what to remove (policy), cut it out of the stored model as one graph edit,
// optionally distil the pruned model from the original (finetune), write it, and evaluate it
// against the original on disjoint evaluation images with the shared eval service.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel, loadModel, saveModel, type LoadedModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import { modelFacts } from '../onnx/facts.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { createSession } from '../runtime/session.js';
import { blockInfluence } from '../analysis/stats.js';
import { toNumbers } from '../onnx/tensor.js';
import { locateVit } from '../vit/locate.js';
import type { HeadChoice, LinearRef, ViTLayout } from '../vit/types.js';
import { prepareLoaded } from './prepareModel.js';
import { prepareVitModel, precisionNote } from './vitModel.js';
import { OrtNeuronOracle } from '../engine/neuronOracle.js';
import { buildContexts } from './traceCore.js';
import { evaluateModels, metricRows, METRIC_COLUMNS } from './eval.js';
import { COMMAND, pruneResultsSchema, type PruneResults } from './pruneSchema.js';
import { defaultToken } from '../vit/tokens.js';
import { CRITERIA, createImportance, needsImages, type Criterion, type FfnWeights, type NeuronScores } from '../analysis/importance.js';
import type { ImageContext } from '../analysis/pathSearch.js';
import { aggregateByClass } from '../analysis/classAggregate.js';
import { quadrature, RULES, minSteps, type QuadratureRule } from '../analysis/quadrature.js';
import { planFfn, planHeads, type FfnDecision, type Scope } from '../prune/policy.js';
import { prunableAttention } from '../prune/heads.js';
import { headTaylorScores } from './headImportance.js';
import { applyPlan } from '../prune/apply.js';
import { finetune, type FinetuneResult } from '../prune/finetune.js';
import { checkLabelRange, describeSource, discoverImages, type DataItem, type DataSource } from '../data/sources.js';
import { loadBatch } from '../data/dataset.js';
import { inferPreprocess, type PreprocessOverrides, type PreprocessSpec } from '../data/preprocess.js';
import type { ProviderChoice } from '../runtime/session.js';
import { runtimeInfo, type Stopwatch, type Envelope } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { CommandRun, outputModelInfo, runCommand, type RunHooks } from './commandRun.js';
import type { CsvRow } from '../report/csv.js';
import { mulberry32 } from '../random.js';
import { badInput, usageError } from '../errors.js';

export { COMMAND };
export const FILES = { report: 'report.json', removed: 'removed.csv', blocks: 'blocks.csv', metrics: 'eval.csv', model: 'model.onnx' } as const;
export const DEFAULTS = { ffn: 0.5, roundTo: 8, scoreImages: 1000, steps: 20, rule: 'left' as QuadratureRule, seed: 0, batch: 32, warmup: 3, repeat: 20, kdTemperature: 2, lr: 1e-4, finetuneBatch: 32 } as const;

export type PruneReport = Envelope<PruneResults>;

export interface PruneProgress {
  phase: 'score' | 'finetune' | 'evaluate';
  done: number;
  total: number;
}

export interface PruneOptions {
  images: string;
  labels?: string;
  /** Separate evaluation images; otherwise --images is split (seeded) into scoring and evaluation images. */
  evalImages?: string;
  evalLabels?: string;
  /** Scoring images taken from --images when splitting (default 1000, at most half of them). */
  scoreImages?: number;
  /** Use only the first N images of --images (before the split). */
  limit?: number;
  criterion?: Criterion;
  ffn?: number;
  scope?: Scope;
  roundTo?: number;
  exclude?: number[];
  keepPathNeurons?: boolean;
  /** Drop this many whole blocks, those of lowest Block Influence on the scoring images. */
  dropBlocks?: number;
  /** Fraction of attention heads to remove per block (per-head gate Taylor score). */
  heads?: number;
  fromTrace?: string;
  steps?: number;
  rule?: QuadratureRule;
  seed?: number;
  finetune?: number;
  kdTemperature?: number;
  lr?: number;
  finetuneBatch?: number;
  output?: string;
  head?: HeadChoice;
  preprocess?: PreprocessOverrides;
  batch?: number;
  latency?: boolean;
  warmup?: number;
  repeat?: number;
  provider?: ProviderChoice;
  deviceId?: number;
  threads?: number;
  out?: string;
  save?: string;
  force?: boolean;
  reportOptions?: Record<string, unknown>;
  notice?: (line: string) => void;
  onProgress?: (e: PruneProgress) => void;
}

/** Options checked, defaults filled (usage errors, exit 1). */
export function checkPruneOptions(o: PruneOptions) {
  const criterion = o.criterion ?? 'path';
  if (!CRITERIA.includes(criterion)) throw usageError(`unknown --criterion "${criterion}"; choose from ${CRITERIA.join(', ')}`);
  const ffn = o.ffn ?? DEFAULTS.ffn;
  if (!(ffn >= 0 && ffn < 1)) throw usageError(`--ffn is the fraction of FFN neurons to remove, from 0 up to (not including) 1 (got ${ffn})`);
  const scope = o.scope ?? 'per-block';
  if (scope !== 'per-block' && scope !== 'global') throw usageError(`--scope is per-block or global (got "${scope}")`);
  const rule = o.rule ?? DEFAULTS.rule;
  if (!RULES.includes(rule)) throw usageError(`unknown --rule "${rule}"; choose from ${RULES.join(', ')}`);
  const steps = o.steps ?? DEFAULTS.steps;
  if (!Number.isInteger(steps) || steps < minSteps(rule)) throw usageError(`--steps must be an integer of at least ${minSteps(rule)} for --rule ${rule} (got ${steps})`);
  const finetuneSteps = o.finetune ?? 0;
  if (!Number.isInteger(finetuneSteps) || finetuneSteps < 0) throw usageError(`--finetune is a number of steps, 0 or more (got ${finetuneSteps})`);
  const kdTemperature = o.kdTemperature ?? DEFAULTS.kdTemperature;
  if (!(kdTemperature > 0)) throw usageError(`--kd-temperature must be positive (got ${kdTemperature})`);
  if (o.fromTrace !== undefined && criterion !== 'path' && !o.keepPathNeurons) throw usageError('--from-trace gives paths: use it with --criterion path or --keep-path-neurons');
  if (o.dropBlocks !== undefined && (!Number.isInteger(o.dropBlocks) || o.dropBlocks < 0)) throw usageError(`--drop-blocks is a number of blocks, 0 or more (got ${o.dropBlocks})`);
  if (o.heads !== undefined && !(o.heads >= 0 && o.heads < 1)) throw usageError(`--heads is the fraction of attention heads to remove, from 0 up to (not including) 1 (got ${o.heads})`);
  const scoreImages = o.scoreImages ?? DEFAULTS.scoreImages;
  if (!Number.isInteger(scoreImages) || scoreImages < 1) throw usageError(`--score-images must be a positive integer (got ${scoreImages})`);
  return {
    criterion,
    ffn,
    scope,
    roundTo: o.roundTo ?? DEFAULTS.roundTo,
    exclude: o.exclude ?? [],
    keepPathNeurons: Boolean(o.keepPathNeurons),
    dropBlocks: o.dropBlocks ?? 0,
    heads: o.heads ?? 0,
    steps,
    rule,
    seed: o.seed ?? DEFAULTS.seed,
    finetune: finetuneSteps,
    kdTemperature,
    lr: o.lr ?? DEFAULTS.lr,
    finetuneBatch: o.finetuneBatch ?? DEFAULTS.finetuneBatch,
    batch: o.batch ?? DEFAULTS.batch,
    scoreImages,
  };
}

/** Seeded split of `items` into scoring images (`count`, at most half) and evaluation images (the rest), each in source order. */
export function splitItems<T>(items: readonly T[], count: number, seed: number): { score: T[]; evaluate: T[] } {
  const n = items.length;
  const k = Math.min(count, Math.floor(n / 2));
  const order = Array.from({ length: n }, (_, i) => i);
  const rnd = mulberry32(seed ^ 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const pick = new Set(order.slice(0, k));
  return { score: items.filter((_, i) => pick.has(i)), evaluate: items.filter((_, i) => !pick.has(i)) };
}

/** A linear's weight as [in, out] float32 (transposed for Gemm with transB). */
function weightInOut(g: Graph, lin: LinearRef): Float32Array {
  const v = g.constantValue(lin.weight);
  if (!v) throw badInput(`weight "${lin.weight}" is not a constant`);
  const w = Float32Array.from(toNumbers(v));
  if (!(lin.kind === 'gemm' && lin.transB)) return w;
  const [O, I] = [lin.outFeatures, lin.inFeatures];
  const t = new Float32Array(I * O);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) t[i * O + o] = w[o * I + i]!;
  return t;
}

export function ffnWeights(model: ModelProto, layout: ViTLayout): FfnWeights[] {
  const g = new Graph(model);
  return layout.blocks.map((b) => ({ fc1: weightInOut(g, b.fc1), fc1In: b.fc1.inFeatures, fc2: weightInOut(g, b.fc2), fc2Out: b.fc2.outFeatures, ffn: b.fc1.outFeatures }));
}

/** Weights as the eval service counts them (modelFacts: float/integer initializers of 2+ elements). */
function parameterCount(model: ModelProto): number {
  return modelFacts(model).parameters;
}

function ffnMacs(layout: ViTLayout): number {
  return layout.blocks.reduce((s, b) => s + layout.facts.tokens * (b.fc1.inFeatures * b.fc1.outFeatures + b.fc2.inFeatures * b.fc2.outFeatures), 0);
}

interface TracedPaths {
  paths: number[][];
  targets: number[];
}

/** Paths of a trace-path run (report.json): the same model, all its blocks. */
export function readTrace(dir: string, sha256: string, blocks: number): TracedPaths {
  const file = path.join(dir, 'report.json');
  let rep: { command?: string; model?: { sha256?: string }; results?: { settings?: { layers?: number[] }; images?: { target: number; methods: { method: string; path: number[] }[] }[] } };
  try {
    rep = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw badInput(`--from-trace ${dir}: cannot read ${file} (${(e as Error).message}); pass the --out folder of a finished trace-path run.`);
  }
  if (rep.command !== 'trace-path' || !rep.results?.images) throw badInput(`--from-trace ${dir}: ${file} is not a trace-path report.`);
  if (rep.model?.sha256 !== sha256) throw badInput(`--from-trace ${dir}: that run traced a different model (sha256 ${rep.model?.sha256?.slice(0, 12)}...); trace this model first or drop --from-trace.`);
  const layers = rep.results.settings?.layers ?? [];
  if (layers.length !== blocks || layers.some((l, i) => l !== i)) throw badInput(`--from-trace ${dir}: the run traced blocks ${layers.join(',')}; prune needs paths through every block (0..${blocks - 1}); rerun trace-path without --layers.`);
  const paths: number[][] = [];
  const targets: number[] = [];
  for (const im of rep.results.images) {
    const p = im.methods.find((m) => m.method === 'path');
    if (!p) continue;
    paths.push(p.path);
    targets.push(im.target);
  }
  if (paths.length === 0) throw badInput(`--from-trace ${dir}: the run holds no paths.`);
  return { paths, targets };
}

export interface PruneOutcome {
  report: PruneReport;
  outDir: OutDir;
  decision: FfnDecision;
  scores: NeuronScores;
}

/** The model and images a prune run works on: the stored graph and its layout, the analysed graph, the split. */
export interface PruneInputs {
  stored: LoadedModel;
  /** The stored model batch-generalised and shape-folded (not upcast): cut instead of `stored` when head shapes are computed at run time. */
  folded: LoadedModel;
  /** The model as vitpath analyses it (prepared, float32) and its layout. */
  loaded: LoadedModel;
  layout: ViTLayout;
  /** The layout of the stored graph (what is cut). */
  storedLayout: ViTLayout;
  widths: number[];
  source: DataSource;
  scoreItems: DataItem[];
  evalSource: DataSource;
  split: string;
  spec: PreprocessSpec;
}

export async function openPruneInputs(modelPath: string, o: PruneOptions, c: ReturnType<typeof checkPruneOptions>, clock: Stopwatch): Promise<PruneInputs> {
  const stored = await clock.time('load', () => loadModel(modelPath));
  const { loaded: prepped } = await clock.time('prepare', () => prepareLoaded(stored, { label: modelPath, notice: o.notice }));
  const { loaded, layout } = await clock.time('locate', () => prepareVitModel(prepped, { output: o.output, head: o.head }));
  const note = precisionNote(layout);
  if (note) o.notice?.(note);
  const storedLayout = locateVit(stored.proto, { output: o.output, label: modelPath });
  const L = layout.blocks.length;
  if (storedLayout.blocks.length !== L) throw new Error('prune: the prepared and stored layouts disagree');
  const widths = storedLayout.blocks.map((b) => b.fc1.outFeatures);
  for (const b of c.exclude) if (!Number.isInteger(b) || b < 0 || b >= L) throw usageError(`--exclude ${b}: the model has blocks 0..${L - 1}`);
  const source = discoverImages(o.images, { labels: o.labels });
  checkLabelRange(source, layout.facts.numClasses);
  const all = o.limit !== undefined ? source.items.slice(0, o.limit) : source.items;
  let scoreItems: DataItem[];
  let evalSource: DataSource;
  let split: string;
  if (o.evalImages !== undefined) {
    scoreItems = all.slice(0, c.scoreImages);
    const ev = discoverImages(o.evalImages, { labels: o.evalLabels });
    checkLabelRange(ev, layout.facts.numClasses);
    const key = (i: DataItem) => i.path ?? `${i.idx?.file}#${i.idx?.index}`;
    const scored = new Set(scoreItems.map(key));
    const overlap = ev.items.filter((i) => scored.has(key(i))).length;
    if (overlap) throw badInput(`--eval-images ${o.evalImages} shares ${overlap} image(s) with the scoring images from --images; scoring and evaluation images must be disjoint.`);
    evalSource = ev;
    split = `scoring: the first ${scoreItems.length} images of --images; evaluation: --eval-images`;
  } else {
    if (all.length < 2) throw badInput(`${o.images}: ${all.length} image(s); prune splits --images into scoring and evaluation images and needs at least 2 (or pass --eval-images).`);
    const sp = splitItems(all, c.scoreImages, c.seed);
    scoreItems = sp.score;
    evalSource = { ...source, items: sp.evaluate };
    split = `seeded split of --images (seed ${c.seed}): ${sp.score.length} scoring, ${sp.evaluate.length} evaluation images`;
  }
  const spec = inferPreprocess(layout.inputDims, o.preprocess);
  return { stored, folded: prepped, loaded, layout, storedLayout, widths, source, scoreItems, evalSource, split, spec };
}

export interface Scored {
  scores: Map<Criterion, NeuronScores>;
  /** Block -> neurons on a class's preferred path (empty without --keep-path-neurons). */
  protect: Map<number, Set<number>>;
  /** Images scored (0 when no criterion needs images). */
  images: number;
  /** Block Influence of every block on the scoring images (with --drop-blocks), else null. */
  blockInfluence: number[] | null;
  provider: 'cpu' | 'cuda' | 'webgpu' | null;
  ms: number;
}

/** Scores of every criterion asked for (one oracle, one clean pass of the scoring images), and the protected path neurons. */
export async function scoreForPrune(inp: PruneInputs, criteria: readonly Criterion[], o: PruneOptions, c: ReturnType<typeof checkPruneOptions>, clock: Stopwatch): Promise<Scored> {
  const t0 = performance.now();
  const { layout, widths, stored } = inp;
  const L = layout.blocks.length;
  const traced = o.fromTrace !== undefined ? readTrace(o.fromTrace, stored.sha256, L) : undefined;
  const wantPaths = c.keepPathNeurons && !traced;
  const needOracle = criteria.some((k) => needsImages(k) && !(k === 'path' && traced)) || wantPaths;
  let images: ImageContext[] | undefined;
  let oracle: OrtNeuronOracle | undefined;
  const layers = Array.from({ length: L }, (_, i) => i);
  const weights = ffnWeights(inp.loaded.proto, layout);
  try {
    if (needOracle) {
      if (new Set(widths).size !== 1) throw usageError(`${o.images ? stored.path : ''}: its blocks have different FFN widths (${widths.join(', ')}); the image criteria read every block's neurons at once and need equal widths — use --criterion magnitude or random on an already pruned model.`);
      oracle = await clock.time('build', () =>
        OrtNeuronOracle.create(inp.loaded, layout, { layers, token: defaultToken(layout), objective: 'prob', provider: o.provider ?? 'auto', deviceId: o.deviceId, threads: o.threads, notice: o.notice }),
      );
      images = [];
      for (let s = 0; s < inp.scoreItems.length; s += c.batch) {
        const part = inp.scoreItems.slice(s, s + c.batch);
        const input = await loadBatch(part, inp.spec);
        const { ctxs } = await buildContexts(oracle, { input, ids: part.map((p) => p.id), labels: part.map((p) => p.label ?? null) }, 'auto', 'prob');
        images.push(...ctxs);
      }
    }
    const importance = createImportance({ layers, widths, oracle, images, weights, tracedPaths: traced });
    const rule = quadrature(c.rule, c.steps);
    const progress = (done: number, total: number) => o.onProgress?.({ phase: 'score', done, total });
    const scores = new Map<Criterion, NeuronScores>();
    for (const k of criteria) scores.set(k, await clock.time(`score.${k}`, () => importance.score(k, { steps: rule, seed: c.seed, chunk: c.batch, onProgress: progress })));
    let pathInfo = scores.get('path')?.paths ?? traced;
    if (c.keepPathNeurons && !pathInfo) pathInfo = (await clock.time('paths', () => importance.score('path', { steps: rule, chunk: c.batch, onProgress: progress }))).paths;
    const protect = new Map<number, Set<number>>();
    if (c.keepPathNeurons && pathInfo) {
      const agg = aggregateByClass(pathInfo.paths, pathInfo.targets, layout.facts.numClasses, L, Math.max(...widths));
      for (const pref of agg.preferred) pref?.forEach((j, l) => {
        if (!protect.has(l)) protect.set(l, new Set());
        protect.get(l)!.add(j);
      });
    }
    const provider = oracle ? oracle.provider : null;
    await oracle?.release();
    oracle = undefined;
    const bi = c.dropBlocks > 0 ? await clock.time('score.blocks', () => blockInfluences(inp, c.batch, o)) : null;
    return { scores, protect, images: Math.max(images?.length ?? 0, bi ? inp.scoreItems.length : 0), blockInfluence: bi, provider, ms: performance.now() - t0 };
  } finally {
    await oracle?.release();
  }
}

/** Block Influence (1 - cos(block input, block output), mean over images and tokens) of every block on the scoring images. */
export async function blockInfluences(inp: PruneInputs, batch: number, o: PruneOptions): Promise<number[]> {
  const { layout, spec } = inp;
  const names = layout.blocks.flatMap((b) => [b.input, b.output]);
  const model = exposeOutputs(inp.loaded.proto, names);
  const session = await createSession(encodeModel(model), { provider: o.provider, deviceId: o.deviceId, threads: o.threads, notice: o.notice });
  const sums = layout.blocks.map(() => 0);
  let count = 0;
  try {
    for (let s = 0; s < inp.scoreItems.length; s += batch) {
      const part = inp.scoreItems.slice(s, s + batch);
      const x = await loadBatch(part, spec);
      const n = part.length;
      const r = await session.run({ [layout.input]: { data: x, dims: [n, spec.channels, spec.height, spec.width] } }, names);
      layout.blocks.forEach((b, l) => {
        const a = r[b.input]!.data as Float32Array;
        const y = r[b.output]!.data as Float32Array;
        const D = layout.facts.width;
        sums[l]! += blockInfluence(a, y, n, a.length / (n * D), D) * n;
      });
      count += n;
    }
  } finally {
    await session.release();
  }
  return sums.map((v) => v / count);
}

/** The `n` blocks of lowest Block Influence, not excluded (ascending block index). */
export function blocksToDrop(bi: readonly number[], n: number, exclude: readonly number[]): number[] {
  const ex = new Set(exclude);
  const cand = bi.map((v, l) => ({ v, l })).filter((x) => !ex.has(x.l));
  if (n >= bi.length) throw usageError(`--drop-blocks ${n}: the model has ${bi.length} blocks; at least one must stay.`);
  if (n > cand.length) throw usageError(`--drop-blocks ${n}: only ${cand.length} blocks are not excluded.`);
  return cand.sort((a, b) => a.v - b.v || a.l - b.l).slice(0, n).map((x) => x.l).sort((a, b) => a - b);
}

export async function runPrune(modelPath: string, options: PruneOptions, hooks: RunHooks = {}): Promise<PruneOutcome> {
  return runCommand(COMMAND, hooks, (run) => prune(modelPath, { ...options, notice: options.notice ?? ((l) => run.notice(l)), onProgress: options.onProgress ?? phaseProgress(run) }, run));
}

/** Scoring progress as the run's progress; the later phases as one notice each. */
export function phaseProgress(run: CommandRun): (e: PruneProgress) => void {
  let phase = '';
  return (e) => {
    if (e.phase === 'score') run.progress(e.done, e.total);
    else if (e.phase !== phase) run.notice(`${COMMAND}: ${e.phase === 'finetune' ? `fine-tuning, ${e.total} steps` : `evaluating on ${e.total} images`}`);
    phase = e.phase;
  };
}

async function prune(modelPath: string, o: PruneOptions, run: CommandRun): Promise<PruneOutcome> {
  const c = checkPruneOptions(o);
  const clock = run.clock;
  const inp = await openPruneInputs(modelPath, o, c, clock);
  const { stored, loaded, layout, storedLayout, scoreItems, evalSource, split, spec, source } = inp;
  const original = stored.proto;
  if (o.save !== undefined) {
    const target = path.resolve(o.save);
    if (fs.existsSync(target) && !o.force) throw usageError(`${o.save} already exists; pass --force to overwrite it or choose another --save path.`);
    if (target === path.resolve(modelPath)) throw usageError(`the pruned model would overwrite its input ${modelPath}; choose another --save path or --out folder.`);
  }
  const out = run.claim({ out: o.out, force: o.force, files: o.save ? [FILES.report, FILES.removed, FILES.blocks, FILES.metrics] : Object.values(FILES) });
  const modelOut = o.save ? path.resolve(o.save) : out.path(FILES.model);
  if (path.resolve(modelOut) === path.resolve(modelPath)) throw usageError(`the pruned model would overwrite its input ${modelPath}; choose another --save path or --out folder.`);

  const scored = await scoreForPrune(inp, [c.criterion], o, c, clock);
  const scores = scored.scores.get(c.criterion)!;
  const protect = scored.protect;
  const dropped = scored.blockInfluence ? blocksToDrop(scored.blockInfluence, c.dropBlocks, c.exclude) : [];
  // Heads: Taylor score of a per-head gate on the scoring images, in every block kept whole or cut.
  let headPlan: ReturnType<typeof planHeads> | null = null;
  let base = original;
  let baseLayout = storedLayout;
  if (c.heads > 0) {
    const blocks = layout.blocks.map((b) => b.index).filter((l) => !dropped.includes(l) && !c.exclude.includes(l));
    for (const l of blocks) prunableAttention(layout.blocks[l]!, modelPath);
    if (blocks.some((l) => storedLayout.blocks[l]!.attention?.computedShapes.length)) {
      // Head counts enter shapes computed at run time: cut the shape-folded model (written as such).
      base = inp.folded.proto;
      baseLayout = locateVit(base, { output: o.output, label: modelPath });
      o.notice?.(`${COMMAND}: ${modelPath} computes its attention shapes at run time; the pruned model is written in vitpath's shape-folded form`);
    }
    const x = await loadBatch(scoreItems, spec);
    const hs = await clock.time('score.heads', () =>
      headTaylorScores({
        model: loaded.proto,
        layout,
        blocks,
        images: x,
        labels: scoreItems.map((i) => i.label ?? -1),
        spec,
        runtime: { provider: o.provider, deviceId: o.deviceId, threads: o.threads, notice: o.notice },
        onProgress: (done, total) => o.onProgress?.({ phase: 'score', done, total }),
      }),
    );
    headPlan = planHeads(hs, c.heads);
  }
  // Dropped blocks take no part in the FFN plan (their neurons go with them).
  const decision = planFfn(scores.scores, { fraction: c.ffn, scope: c.scope, roundTo: c.roundTo, exclude: [...c.exclude, ...dropped], protect });
  for (const l of dropped) decision.keep.set(l, []);
  let pruned = await clock.time('prune', () => applyPlan(base, baseLayout, { ffn: new Map([...decision.keep].filter(([l]) => !dropped.includes(l))), dropBlocks: dropped, heads: headPlan?.keep }));
  let ft: FinetuneResult | null = null;
  if (c.finetune > 0) {
    ft = await clock.time('finetune', () =>
      finetune({
        teacher: loaded.proto,
        student: pruned,
        layout,
        items: scoreItems,
        spec,
        steps: c.finetune,
        temperature: c.kdTemperature,
        lr: c.lr,
        batch: c.finetuneBatch,
        seed: c.seed,
        provider: o.provider ?? 'auto',
        threads: o.threads,
        label: modelPath,
        onStep: (done) => o.onProgress?.({ phase: 'finetune', done, total: c.finetune }),
      }),
    );
    pruned = ft.model;
  }
  const prunedLayout = locateVit(pruned, { output: o.output, label: `${modelPath} (pruned)` });

  // ---- write the model, evaluate it against the original ----
  await clock.time('save', () => saveModel(pruned, modelOut, { force: true }));
  const saved = loadModel(modelOut);
  o.onProgress?.({ phase: 'evaluate', done: 0, total: evalSource.items.length });
  const ev = await clock.time('evaluate', () =>
    evaluateModels(modelOut, {
      images: evalSource.input,
      source: evalSource,
      compare: modelPath,
      output: o.output,
      compareOutput: o.output,
      preprocess: o.preprocess,
      batch: c.batch,
      latency: o.latency,
      warmup: o.warmup,
      repeat: o.repeat,
      runtime: { provider: o.provider, deviceId: o.deviceId, threads: o.threads, notice: o.notice },
      notice: o.notice,
      onProgress: (e) => {
        if (e.phase === 'images') o.onProgress?.({ phase: 'evaluate', done: e.done, total: e.total });
      },
    }),
  );
  const evalReport = ev.report;
  const provider = scored.provider ?? evalReport.runtime?.used ?? 'cpu';

  const results: PruneResults = {
    criterion: c.criterion,
    policy: { ffn: c.ffn, scope: c.scope, roundTo: c.roundTo, exclude: c.exclude, keepPathNeurons: c.keepPathNeurons, dropBlocks: c.dropBlocks, heads: c.heads },
    scoring: {
      images: Math.max(scored.images, headPlan ? scoreItems.length : 0),
      source: scored.images || headPlan ? (describeSource({ ...source, items: scoreItems }) as Record<string, never>) : null,
      split: o.fromTrace !== undefined ? `${split}; paths read from ${o.fromTrace} (its images are not checked against the evaluation images)` : split,
      steps: c.steps,
      rule: c.rule,
      seed: c.seed,
      fromTrace: o.fromTrace ?? null,
      protectedNeurons: [...protect.values()].reduce((s, p) => s + p.size, 0),
      ms: scored.ms,
    },
    blocks: storedLayout.blocks.map((b) => ({
      block: b.index,
      ffnBefore: b.fc1.outFeatures,
      ffnAfter: decision.keep.get(b.index)!.length,
      protected: protect.get(b.index)?.size ?? 0,
      dropped: dropped.includes(b.index),
      headsBefore: b.attention?.heads ?? null,
      headsAfter: dropped.includes(b.index) ? 0 : (headPlan?.keep.get(b.index)?.length ?? b.attention?.heads ?? null),
      blockInfluence: scored.blockInfluence?.[b.index] ?? null,
    })),
    ffn: ffnTotals(decision, storedLayout),
    parameters: { before: parameterCount(original), after: parameterCount(pruned) },
    ffnMacsPerImage: { before: ffnMacs(storedLayout), after: ffnMacs(prunedLayout) },
    output: { path: o.save ?? path.relative(process.cwd(), modelOut), sha256: saved.sha256, bytes: saved.sizeBytes, layout: prunedLayout as never },
    finetune: ft ? { steps: c.finetune, temperature: c.kdTemperature, lr: c.lr, batch: c.finetuneBatch, loss: ft.loss, ms: ft.ms } : null,
    evaluation: evalReport.results,
  };
  const report = run.envelope(
    {
      options: o.reportOptions ?? { ...c, images: o.images, evalImages: o.evalImages, fromTrace: o.fromTrace, output: o.output, save: o.save },
      model: { path: modelPath, sha256: stored.sha256, layout: storedLayout as never },
      runtime: runtimeInfo({ provider }, { provider: o.provider, deviceId: o.deviceId, threads: o.threads }, 'thread'),
      outputModel: outputModelInfo(modelOut, o.save ?? path.relative(process.cwd(), modelOut)),
      results,
    },
    pruneResultsSchema,
  );
  await run.writeReports(report, (out) => {
  out.writeCsv(FILES.removed, [...removedRows(decision, dropped, scored.blockInfluence), ...(headPlan?.removed ?? []).map((r) => ({ block: r.block, kind: 'head', index: r.index, score: r.score }))], ['block', 'kind', 'index', 'score']);
  out.writeCsv(
    FILES.blocks,
    results.blocks.map((b) => ({ block: b.block, ffn_before: b.ffnBefore, ffn_after: b.ffnAfter, heads_before: b.headsBefore, heads_after: b.headsAfter, protected: b.protected, dropped: b.dropped ? 1 : 0, block_influence: b.blockInfluence })),
    ['block', 'ffn_before', 'ffn_after', 'heads_before', 'heads_after', 'protected', 'dropped', 'block_influence'],
  );
  out.writeCsv(FILES.metrics, metricRows(evalReport.results), METRIC_COLUMNS);
  });
  return { report, outDir: out, decision, scores };
}

/** FFN neurons before and after over all blocks (a dropped block counts as all its neurons removed). */
function ffnTotals(d: FfnDecision, layout: ViTLayout): PruneResults['ffn'] {
  const before = layout.blocks.reduce((s, b) => s + b.fc1.outFeatures, 0);
  const after = [...d.keep.values()].reduce((s, k) => s + k.length, 0);
  return { before, after, removedFraction: before ? (before - after) / before : 0 };
}

export function removedRows(d: FfnDecision, dropped: readonly number[] = [], bi: readonly number[] | null = null): CsvRow[] {
  return [
    ...dropped.map((l) => ({ block: l, kind: 'block', index: l, score: bi?.[l] ?? null })),
    ...d.removed.map((r) => ({ block: r.block, kind: 'ffn', index: r.index, score: r.score })),
  ];
}

