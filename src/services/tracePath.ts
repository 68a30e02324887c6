// The trace-path service: images -> layout -> neuron oracle (generated gradient graphs on ONNX
// Runtime) -> path search, baselines, JAS, manipulations -> report.json + CSVs + progress.jsonl.
import { createHash } from 'node:crypto';
import { loadModel } from '../onnx/model.js';
import type { HeadChoice, ViTLayout } from '../vit/types.js';
import { assertFloatModel, prepareVitModel, precisionNote } from './vitModel.js';
import { prepareLoaded } from './prepareModel.js';
import { discoverImages, checkLabelRange, describeSource, type DataItem } from '../data/sources.js';
import { inferPreprocess, describePreprocess, type PreprocessOverrides } from '../data/preprocess.js';
import { loadBatch, loadBatchSkipping } from '../data/dataset.js';
import { runtimeInfo, type Envelope } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { runCommand, type CommandRun, type RunHooks } from './commandRun.js';
import type { CsvRow } from '../report/csv.js';
import { badInput, usageError } from '../errors.js';
import { BASELINES, type BaselineName } from '../analysis/baselines.js';
import type { JasForm } from '../analysis/jas.js';
import { labelledAccuracy } from '../analysis/classify.js';
import type { ClassAggregate } from '../analysis/classAggregate.js';
import type { Prefilter, SearchScore } from '../analysis/beamSearch.js';
import { minSteps, RULES, type QuadratureRule } from '../analysis/quadrature.js';
import { chooseRule } from '../analysis/autoSteps.js';
import { checkLayers, defaultToken, resolveToken, type TokenChoice } from '../vit/tokens.js';
import type { ProviderChoice } from '../runtime/session.js';
import {
  traceChunk,
  buildContexts,
  summarizeMethods,
  classSummary,
  sameSearch,
  searchPreset,
  DEFAULT_BEAM,
  DEFAULT_CANDIDATES,
  SEARCH_BASELINES,
  type ImageResult,
  type MethodName,
  type SearchBaseline,
  type SearchSpec,
  type SearchStrategy,
  type TargetChoice,
  type TraceSettings,
} from './traceCore.js';
import { traceResultsSchema, type TraceResults } from './traceSchema.js';
import { OrtNeuronOracle } from '../engine/neuronOracle.js';
import { chartFiles, writeChart } from '../report/charts.js';
import { classFrequencyRows, classHeatmapSpec, pathDiagramSpec, ratiosSpec, similaritySpec } from './traceCharts.js';
import * as path from 'node:path';

export interface TracePathOptions {
  model: string;
  images: string;
  labels?: string;
  output?: string;
  target: TargetChoice;
  objective: 'prob' | 'logit';
  /** Steps of every integrated gradient, or 'auto' (chooseRule on the first images picks rule and steps). */
  steps: number | 'auto';
  /** Integration rule of every integrated gradient (default left, the paper's). */
  rule?: QuadratureRule;
  /** With steps 'auto': the relative completeness error to reach (default: left with 20 steps' error). */
  maxError?: number;
  /** Path diagrams (path-<index>.svg) for the first N images. */
  plotImages?: number;
  jas: JasForm;
  /** The path's search (default greedy, the paper's). */
  search?: SearchStrategy;
  /** What the search ranks by (default: `jas` for greedy, sum for beam, effect for effect). */
  score?: SearchScore;
  /** Beam width of --search beam (default 4). */
  beam?: number;
  /** Neurons ablated per layer by the effect score (default 16; >= the FFN width: all). */
  candidates?: number;
  /** Attribution pre-filter of the effect score (default taylor). */
  prefilter?: Prefilter;
  baselines: (BaselineName | SearchBaseline)[];
  topK: number;
  token?: TokenChoice;
  layers?: number[];
  /** Images traced together (each becomes steps x layers samples per pass). */
  batch: number;
  seed: number;
  limit?: number;
  shard?: { index: number; count: number };
  resume: boolean;
  out?: string;
  force: boolean;
  provider: ProviderChoice;
  deviceId: number;
  threads: number;
  preprocess: PreprocessOverrides;
  cacheDir?: string;
  /** Samples per ONNX Runtime run (default from the model size). */
  maxSamples?: number;
  /** Memory budget in bytes (--max-memory); default 60% of the machine's memory. */
  maxMemory?: number;
  /** Distilled models (DeiT): trace the average of both heads (default) or one head. */
  head?: HeadChoice;
  /** --skip-bad-images: leave out images that cannot be read, list them in the report (default: stop, naming the file). */
  skipBadImages?: boolean;
}

/** Candidates recorded per layer: at least this many (--top-k below it is a usage error). */
export const MIN_TOP_K = 5;

/** Progress is called after each chunk with images done (resumed and skipped ones included) and the total. */
export type TraceHooks = RunHooks;

export interface TracePathOutcome {
  report: Envelope<TraceResults>;
  outDir: OutDir;
  layout: ViTLayout;
}

export const REPORT_FILES = ['report.json', 'paths.csv', 'images.csv', 'classes.csv', 'similarity.csv'];
export const PROGRESS_FILE = 'progress.jsonl';
/** Images --steps auto calibrates on. */
export const AUTO_IMAGES = 8;

/** Apply --shard K/N (every N-th image starting at K) and then --limit. */
export function selectItems<T>(items: T[], shard: { index: number; count: number } | undefined, limit: number | undefined): T[] {
  let out = shard ? items.filter((_, i) => i % shard.count === shard.index) : items;
  if (limit !== undefined) out = out.slice(0, limit);
  return out;
}

/** Parse "0-5", "0,2,4" or "1-3,7" into a sorted list of block indices. */
export function parseLayerList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw usageError(`--layers takes block indices like 0-5 or 0,2,4 (got "${text}")`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw usageError(`--layers range ${part} runs backwards; write it as ${b}-${a}`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** The path's search from the options, checked (exit 1 on contradictions); search baselines checked too. */
export function resolveSearch(o: Pick<TracePathOptions, 'search' | 'score' | 'jas' | 'beam' | 'candidates' | 'prefilter' | 'baselines'>): SearchSpec {
  const strategy = o.search ?? 'greedy';
  if (!['greedy', 'beam', 'effect'].includes(strategy)) throw usageError(`unknown --search "${strategy}"; choose from greedy, beam, effect`);
  // Beam defaults to the sum form: a wider search exploits the product form's cross terms (a large
  // activation with no effect times the path's gradients; test/tracePath/strategies.test.ts).
  const score = o.score ?? (strategy === 'effect' ? 'effect' : strategy === 'beam' ? 'sum' : o.jas);
  if (!['product', 'sum', 'effect'].includes(score)) throw usageError(`unknown --score "${score}"; choose from product, sum, effect`);
  if (strategy === 'effect' && score !== 'effect') throw usageError(`--search effect ranks neurons by their measured removal effect; it takes --score effect (got --score ${score}); use --search greedy or beam for JAS scores`);
  const beam = o.beam ?? DEFAULT_BEAM;
  if (!Number.isInteger(beam) || beam < 1) throw usageError(`--beam must be a positive integer (got ${beam})`);
  const candidates = o.candidates ?? DEFAULT_CANDIDATES;
  if (!Number.isInteger(candidates) || candidates < 1) throw usageError(`--candidates must be a positive integer (got ${candidates})`);
  const prefilter = o.prefilter ?? 'taylor';
  if (prefilter !== 'taylor' && prefilter !== 'ig') throw usageError(`unknown --prefilter "${prefilter}"; choose from taylor, ig`);
  const spec: SearchSpec = { strategy, score, beam, candidates, prefilter };
  for (const b of o.baselines) {
    if ((SEARCH_BASELINES as readonly string[]).includes(b)) {
      if (sameSearch(spec, searchPreset(b as SearchBaseline, spec))) throw usageError(`--baselines ${b} is the path's own search (--search ${strategy} --score ${score}); drop it or choose another --search`);
    } else if (!BASELINES.includes(b as BaselineName)) throw usageError(`unknown baseline "${b}"; choose from ${[...BASELINES, ...SEARCH_BASELINES].join(', ')} or none`);
  }
  return spec;
}

interface RunHeader {
  kind: 'run';
  fingerprint: Record<string, unknown>;
}
type ProgressLine = RunHeader | ({ kind: 'image' } & ImageResult);

export async function tracePath(o: TracePathOptions, hooks: RunHooks = {}): Promise<TracePathOutcome> {
  return runCommand('trace-path', hooks, (run) => traceRun(run, o));
}

async function traceRun(run: CommandRun, o: TracePathOptions): Promise<TracePathOutcome> {
  const clock = run.clock;
  const stored = await clock.time('load', () => loadModel(o.model));
  assertFloatModel(stored.proto, o.model, 'trace-path');
  const { loaded: prepped } = await clock.time('prepare', () => prepareLoaded(stored, { label: o.model, notice: (l) => run.notice(l) }));
  const { loaded, layout } = await clock.time('locate', () => prepareVitModel(prepped, { output: o.output, head: o.head }));
  const note = precisionNote(layout);
  if (note) run.notice(note);
  const facts = layout.facts;
  const layers = checkLayers(layout, o.layers);
  const token = o.token ?? defaultToken(layout);
  resolveToken(layout, token);
  if (o.steps !== 'auto' && (!Number.isInteger(o.steps) || o.steps < 1)) throw usageError(`--steps must be a positive integer or auto (got ${o.steps})`);
  if (o.maxError !== undefined && o.steps !== 'auto') throw usageError('--max-error goes with --steps auto');
  if (!Number.isInteger(o.topK) || o.topK < MIN_TOP_K) throw usageError(`--top-k must be an integer >= ${MIN_TOP_K} (got ${o.topK})`);
  if (typeof o.target === 'number' && (o.target < 0 || o.target >= facts.numClasses)) {
    throw usageError(`--target ${o.target} is outside the model's classes 0..${facts.numClasses - 1}`);
  }
  const search = resolveSearch(o);
  const rule = o.rule ?? 'left';
  if (!RULES.includes(rule)) throw usageError(`unknown --rule "${rule}"; choose from ${RULES.join(', ')}`);
  if (o.steps !== 'auto' && o.steps < minSteps(rule)) throw usageError(`--rule ${rule} needs --steps ${minSteps(rule)} or more (got ${o.steps})`);

  const source = discoverImages(o.images, { labels: o.labels });
  checkLabelRange(source, facts.numClasses);
  const items = selectItems(source.items, o.shard, o.limit);
  if (items.length === 0) throw badInput(`${o.images}: no images left after --shard/--limit; check those options.`);
  if (o.target === 'label') {
    const missing = items.find((it) => it.label === undefined);
    if (missing) throw badInput(`${o.images}: image ${missing.id} has no label but --target label needs one; pass --labels file.csv, use class subfolders, or use --target pred.`);
  }
  const labelledCount = items.filter((it) => it.label !== undefined).length;
  if (labelledCount > 0 && labelledCount < items.length) {
    run.notice(
      `trace-path: ${labelledCount} of ${items.length} images have labels; accuracy figures are over those ${labelledCount} labelled images${o.target === 'auto' ? ', and the other images are explained for their predicted class' : ''}.`,
    );
  }
  const spec = inferPreprocess(layout.inputDims, o.preprocess);

  const plotCount = Math.min(o.plotImages ?? 0, items.length);
  const charts = chartNames(plotCount).flatMap(chartFiles);
  const out = run.claim({ out: o.out, force: o.force, resume: o.resume, files: [...REPORT_FILES, ...charts], log: PROGRESS_FILE });
  const recorded: TraceResults['settings'] = {
    layers,
    token,
    steps: o.steps === 'auto' ? 0 : o.steps,
    rule,
    autoSteps: null,
    search,
    jas: search.score === 'effect' ? o.jas : search.score,
    objective: o.objective,
    target: o.target,
    baselines: o.baselines,
    topK: o.topK,
    seed: o.seed,
    shard: o.shard ?? null,
  };
  if (layout.readout) recorded.head = layout.readout;
  // What a resumed run must share with the run that wrote progress.jsonl.
  const fingerprint = {
    model: loaded.sha256,
    images: items.length + ':' + createHash('sha256').update(items.map((i) => i.id).join('\n')).digest('hex'),
    ...recorded,
    ...(o.steps === 'auto' ? { steps: 'auto', maxError: o.maxError ?? null } : {}),
    preprocess: describePreprocess(spec),
  };
  const log = run.openLog<ProgressLine>({ resume: o.resume });
  const done = new Map<string, ImageResult>();
  if (o.resume) {
    const header = log.previous.find((l): l is RunHeader => l.kind === 'run');
    if (header && JSON.stringify(header.fingerprint) !== JSON.stringify(fingerprint)) {
      throw usageError(`${out.path(PROGRESS_FILE)} was written by a run with different options or inputs; rerun with the same options, or start a new --out folder.`);
    }
    for (const l of log.previous) if (l.kind === 'image') done.set(l.id, l);
    run.resumed(done.size, items.length);
  }
  if (!o.resume || !log.previous.some((l) => l.kind === 'run')) log.append({ kind: 'run', fingerprint });

  const oracle = await clock.time('build', () =>
    OrtNeuronOracle.create(loaded, layout, {
      layers,
      token,
      objective: o.objective,
      provider: o.provider,
      deviceId: o.deviceId,
      threads: o.threads,
      cacheDir: o.cacheDir,
      notice: (l) => run.notice(l),
      maxSamples: o.maxSamples,
      maxMemory: o.maxMemory,
    }),
  );
  if (o.steps === 'auto') {
    // Calibrate on the first images of the selection (the same on a resumed run).
    // With --skip-bad-images, unreadable ones among them are left out here and skipped (with their notice) in the loop.
    let first = items.slice(0, Math.min(AUTO_IMAGES, items.length));
    let input: Float32Array;
    if (o.skipBadImages) {
      const got = await clock.time('images', () => loadBatchSkipping(first as DataItem[], spec));
      first = got.kept.map((k) => first[k]!);
      input = got.data;
      if (first.length === 0) throw badInput(`${o.images}: none of the first ${Math.min(AUTO_IMAGES, items.length)} images could be read to calibrate --steps auto; check the files or pass --steps N.`);
    } else {
      input = await clock.time('images', () => loadBatch(first as DataItem[], spec));
    }
    const choice = await clock.time('calibrate', async () => {
      const { ctxs } = await buildContexts(oracle, { input, ids: first.map((f) => f.id), labels: first.map((f) => f.label ?? null) }, o.target, o.objective);
      return chooseRule(oracle, ctxs, o.maxError);
    });
    recorded.steps = choice.steps;
    recorded.rule = choice.rule;
    recorded.autoSteps = choice;
    run.notice(
      `--steps auto: ${choice.rule} rule with ${choice.steps} steps (completeness error ${choice.error.toPrecision(3)} on ${choice.images} images; target ${choice.maxError.toPrecision(3)}${o.maxError === undefined ? ', the error of left with 20 steps' : ''})` +
        (choice.reached ? '' : '; no rule reached the target, using the most accurate one tried'),
    );
  }
  const settings: TraceSettings = { steps: recorded.steps, rule: recorded.rule, search, jas: recorded.jas, objective: o.objective, target: o.target, baselines: o.baselines, topK: o.topK, seed: o.seed };
  const todo = items.map((it, index) => ({ it, index })).filter(({ it }) => !done.has(it.id));
  const skipped: { id: string; reason: string }[] = [];
  const tRun = performance.now();
  let traced = 0;
  // Per-phase time of the trace loop (search, each search baseline, ig-layer, ...), as trace.<phase>.
  const tracePhases: Record<string, number> = {};
  try {
    run.progress(done.size, items.length);
    for (let s = 0; s < todo.length; s += o.batch) {
      let part = todo.slice(s, s + o.batch);
      let input: Float32Array;
      if (o.skipBadImages) {
        const got = await clock.time('images', () => loadBatchSkipping(part.map((p) => p.it as DataItem), spec));
        for (const bad of got.skipped) {
          skipped.push({ id: bad.item.id, reason: bad.reason });
          run.notice(`vitpath: skipping an unreadable image: ${bad.reason}`);
        }
        part = got.kept.map((k) => part[k]!);
        input = got.data;
      } else {
        input = await clock.time('images', () => loadBatch(part.map((p) => p.it as DataItem), spec));
      }
      if (part.length > 0) {
        const results = await clock.time('trace', () =>
          traceChunk(oracle, { input, ids: part.map((p) => p.it.id), labels: part.map((p) => p.it.label ?? null), indices: part.map((p) => p.index) }, settings, tracePhases),
        );
        for (const r of results) {
          log.append({ kind: 'image', ...r });
          done.set(r.id, r);
        }
        traced += results.length;
      }
      run.progress(done.size + skipped.length, items.length);
    }
  } finally {
    await oracle.release();
  }
  const runMs = performance.now() - tRun;
  for (const [k, v] of Object.entries(tracePhases)) clock.add(`trace.${k}`, v);
  const stats = oracle.stats;
  if (skipped.length) run.notice(`trace-path: skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'} of ${items.length} (listed in report.json under results.skipped).`);
  if (done.size === 0) throw badInput(`none of the ${items.length} images of ${o.images} could be read; check the files (the notices above name each one).`);

  const results = items.filter((it) => done.has(it.id)).map((it) => done.get(it.id)!);
  const methods: MethodName[] = ['path', ...o.baselines];
  const traceResults: TraceResults = {
    data: describeSource(source) as Record<string, never>,
    preprocess: describePreprocess(spec) as Record<string, never>,
    settings: recorded,
    images: results,
    ...(o.skipBadImages ? { skipped } : {}),
    ...runAggregates(results, methods, facts.numClasses, layers.length, facts.ffnWidth),
    imagesPerSecond: traced > 0 ? traced / (runMs / 1000) : 0,
  };
  const chartNote = similarityChartNotice(traceResults.classes);
  if (chartNote) run.notice(chartNote);
  const report = run.envelope(
    {
      options: { ...o, model: undefined, images: undefined, preprocess: o.preprocess },
      model: { path: o.model, sha256: loaded.sha256, layout: layout as never },
      runtime: runtimeInfo({ provider: oracle.provider }, { provider: o.provider, deviceId: o.deviceId, threads: o.threads }, 'thread', oracle.memory),
      inference: stats,
      results: traceResults,
    },
    traceResultsSchema,
  );
  await run.writeReports(report, (dir) => writeReportFiles(dir, report, layers, facts.ffnWidth, plotCount));
  return { report, outDir: out, layout };
}

/**
 * The report's class section. The similarity matrix covers only the classes that have images
 * (similarityClasses, ascending): a 1000-class model traced on a few classes would otherwise write a
 * 10^6-cell matrix (13 MB of JSON, a 145 MB SVG for one image) whose absent-class entries carry no
 * information (zero tables have no direction).
 */
export function classesSection(cls: ClassAggregate): TraceResults['classes'] {
  const C = cls.classes;
  const present = Array.from({ length: C }, (_, c) => c).filter((c) => cls.images[c]! > 0);
  return {
    preferred: cls.preferred,
    images: Array.from(cls.images),
    pathShared: Array.from(cls.pathShared),
    preferredShare: cls.preferredShare,
    similarityClasses: present,
    similarity: present.map((a) => present.map((b) => cls.similarity[a * C + b]!)),
  };
}

/** Above this many classes with images, similarity.svg is not drawn (similarity.csv has the values). */
export const MAX_SIMILARITY_CHART_CLASSES = 100;

/** The run-level parts of a report, computed from its images (vitpath merge recomputes them the same way). */
export function runAggregates(results: ImageResult[], methods: MethodName[], classes: number, layers: number, ffn: number): Pick<TraceResults, 'summary' | 'accuracy' | 'classes'> {
  return {
    summary: summarizeMethods(results, methods),
    accuracy: labelledAccuracy(results.map((r) => r.pred), results.map((r) => r.label)),
    classes: classesSection(classSummary(results, classes, layers, ffn)),
  };
}

/** The notice a run (or a merge) prints when similarity.svg is not drawn for all classes with images. */
export function similarityChartNotice(classes: TraceResults['classes']): string | undefined {
  const present = classes.similarityClasses.length;
  if (present <= MAX_SIMILARITY_CHART_CLASSES) return undefined;
  return `trace-path: ${present} classes have images; similarity.svg is drawn for at most ${MAX_SIMILARITY_CHART_CLASSES} (similarity.csv and report.json have every pair).`;
}

/** The chart files of a run: base names (each NAME.svg + NAME.vl.json). */
export function chartNames(plotImages: number): string[] {
  return ['classes', 'similarity', 'ratios', ...Array.from({ length: plotImages }, (_, i) => `path-${i}`)];
}

/** Every report file but report.json (the command run writes that last; vitpath merge writes the same files). */
export async function writeReportFiles(out: OutDir, report: Envelope<TraceResults>, layers: number[], ffn: number, plotImages: number): Promise<void> {
  const r = report.results;
  const pathRows: CsvRow[] = [];
  const imageRows: CsvRow[] = [];
  for (const im of r.images) {
    for (const m of im.methods) {
      m.path.forEach((neuron, li) => {
        const choice = m.method === 'path' ? im.layers[li] : undefined;
        pathRows.push({ image: im.id, method: m.method, layer: layers[li]!, neuron, activation: m.activations[li]!, score: choice ? choice.score : null });
      });
      imageRows.push({
        image: im.id,
        label: im.label,
        pred: im.pred,
        target: im.target,
        p_base: im.pBase,
        f_base: im.fBase,
        method: m.method,
        jas_product: m.jasProduct,
        jas_sum: m.jasSum,
        completeness_gap: m.completenessGap,
        remove_ratio: m.removeRatio,
        enhance_ratio: m.enhanceRatio,
        remove_pred: m.removePred,
        enhance_pred: m.enhancePred,
      });
    }
  }
  const classRows: CsvRow[] = classFrequencyRows(r.images, layers).map((row) => {
    const pref = r.classes.preferred[row.class];
    return {
      class: row.class,
      layer: row.layer,
      neuron: row.neuron,
      count: row.count,
      share: row.share,
      preferred: pref && pref[layers.indexOf(row.layer)] === row.neuron ? 1 : 0,
      class_images: r.classes.images[row.class]!,
      path_shared: r.classes.pathShared[row.class]!,
    };
  });
  const simRows: CsvRow[] = [];
  const simClasses = r.classes.similarityClasses;
  r.classes.similarity.forEach((row, a) => row.forEach((v, b) => simRows.push({ class_a: simClasses[a]!, class_b: simClasses[b]!, cosine: v })));
  out.writeCsv('paths.csv', pathRows, ['image', 'method', 'layer', 'neuron', 'activation', 'score']);
  out.writeCsv('images.csv', imageRows);
  out.writeCsv('classes.csv', classRows, ['class', 'layer', 'neuron', 'count', 'share', 'preferred', 'class_images', 'path_shared']);
  out.writeCsv('similarity.csv', simRows, ['class_a', 'class_b', 'cosine']);
  const name = path.basename(report.model.path);
  const n = r.images.length;
  const methods = r.summary.map((s) => s.method);
  await writeChart(out, 'classes', classHeatmapSpec(r.images, layers, ffn, `trace-path: path neurons per class (${name}, ${n} images)`));
  if (simClasses.length <= MAX_SIMILARITY_CHART_CLASSES) await writeChart(out, 'similarity', similaritySpec(r.classes.similarity, `trace-path: class similarity (${name})`, simClasses));
  await writeChart(out, 'ratios', ratiosSpec(r.images, methods, `trace-path: remove / enhance per method (${name}, ${n} images)`));
  for (let i = 0; i < Math.min(plotImages, n); i++) {
    await writeChart(out, `path-${i}`, pathDiagramSpec(r.images[i]!, layers, `trace-path: the path of image ${i}`, methods.filter((m) => m !== 'path' && m !== 'random')));
  }
}
