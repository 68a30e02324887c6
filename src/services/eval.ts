// The `eval` service: score any image classifier stored as ONNX on a folder of images — accuracy with
// its interval, per-class accuracy, confusion cells — optionally against a reference model on the
// same images (agreement, KL, paired accuracy difference), time it on the chosen provider, read its
// facts (parameters, bytes, ops, precision), and evaluate the --min-accuracy / --max-drop checks.
// Needs no ViT layout: quantized, pruned, float16 and non-ViT classifiers are evaluated alike. A model
// whose stored shapes break batches above 1 runs as services/prepareModel.ts prepares it.
import * as path from 'node:path';
import { encodeModel, loadModel } from '../onnx/model.js';
import { describeClassifier, type ClassifierIo } from '../onnx/classifier.js';
import { fileSizes, modelFacts } from '../onnx/facts.js';
import { createSession, type ModelSession, type RuntimeOptions } from '../runtime/session.js';
import { fixedBatchOf } from '../runtime/batching.js';
import { timeRuns } from '../runtime/latency.js';
import { discoverImages, checkLabelRange, describeSource, type DataItem, type DataSource } from '../data/sources.js';
import { iterateBatches, loadBatch } from '../data/dataset.js';
import { inferPreprocess, describePreprocess, type PreprocessOverrides, type PreprocessSpec } from '../data/preprocess.js';
import { mean, median, quantile } from '../analysis/stats.js';
import { compareClassifiers, evaluateClassifier, inputFeed, sessionClassifier, type ClassifierBatch, type ClassifierEvaluation, type ClassifierComparison, type Classifier } from './evaluate.js';
import { COMMAND, evalResultsSchema, type CheckRecord, type EvalResults, type LatencyRecord, type ModelEval, type ModelFactsRecord } from './evalSchema.js';
import { runtimeInfo, type Envelope } from '../report/envelope.js';
import type { CsvRow } from '../report/csv.js';
import type { OutDir } from '../report/outdir.js';
import { CommandRun, runCommand, type RunHooks } from './commandRun.js';
import { badInput, checkFailed, usageError, type VitpathError } from '../errors.js';
import { prepareLoaded, type Preparation, type PreparedModel } from './prepareModel.js';

export { COMMAND };
export const FILES = { report: 'report.json', metrics: 'eval.csv', classes: 'classes.csv', confusion: 'confusion.csv' } as const;
export const DEFAULTS = { batch: 32, warmup: 3, repeat: 20 } as const;

/** Slack of the check comparisons, in percent / points (so 9773/10000 passes --min-accuracy 97.73). */
const CHECK_EPS = 1e-9;

export type EvalReport = Envelope<EvalResults>;

/** The report and the per-image evaluations behind it (model, then reference), for the CSV files. */
export interface EvalOutcome {
  report: EvalReport;
  evaluations: ClassifierEvaluation[];
}

export interface EvalProgress {
  phase: 'images' | 'latency';
  done: number;
  total: number;
}

export interface EvalOptions {
  images: string;
  /** Images already discovered and selected (a split of a larger source): used as given instead of reading `images`/`labels`/`limit`. */
  source?: DataSource;
  labels?: string;
  limit?: number;
  /** Keep only these of the discovered images (before --limit): e.g. quantize leaves out its calibration images. */
  select?: (items: readonly DataItem[]) => DataItem[];
  /** Reference model to compare with. */
  compare?: string;
  /** Graph output holding the class scores (default: the only / only [batch, classes] output). */
  output?: string;
  compareOutput?: string;
  preprocess?: PreprocessOverrides;
  /** Images per inference run, and the batch of the throughput measurement. */
  batch?: number;
  /** Measure latency and throughput (default true). */
  latency?: boolean;
  warmup?: number;
  repeat?: number;
  /** Fail (exit 5) below this top-1 accuracy, in percent. */
  minAccuracy?: number;
  /** Fail (exit 5) when the reference's top-1 accuracy exceeds the model's by more than this, in points. */
  maxDrop?: number;
  runtime?: RuntimeOptions;
  /** The options as given on the command line, for the report. */
  reportOptions?: Record<string, unknown>;
  /** Called once inputs are checked and before the evaluation pass (claims the output folder). */
  beforeRun?: () => void;
  onProgress?: (e: EvalProgress) => void;
  /** One-line notices (unlabelled images, fixed batch sizes, ...). */
  notice?: (line: string) => void;
}

/** A model file opened for evaluation. */
interface Opened {
  path: string;
  sha256: string;
  io: ClassifierIo;
  facts: ModelFactsRecord;
  preparation: ModelEval['preparation'];
  /** What the session runs: the file's path, or the prepared copy's bytes when the file fails above batch 1. */
  runs: string | Uint8Array;
  session?: ModelSession;
}

/**
 * Whether the file as it is cannot run a batch above 1 as its input declares: stored shapes that
 * contradict the symbolic batch, or shape constants baked at batch 1 (see services/prepareModel.ts).
 */
function needsPrepared(p: Preparation): boolean {
  return p.batch === 'rewritten' || p.batch === 'one-at-a-time' || p.staleValueInfo > 0 || p.staleOutputs.length > 0;
}

/**
 * Open a model as trace-path and probe-layers do (services/prepareModel.ts), keeping its facts and
 * classifier interface from the file. The file itself runs unless it fails above batch 1; then
 * vitpath's prepared copy runs, with a notice. A model the preparation cannot analyse (not an image
 * model vitpath reads shapes of) runs as it is, as before.
 */
async function open(file: string, output: string | undefined, notice: ((line: string) => void) | undefined): Promise<Opened> {
  const loaded = loadModel(file);
  const io = describeClassifier(loaded.proto, { output, label: file });
  const f = modelFacts(loaded.proto);
  const bytes = fileSizes(loaded.path, loaded.externalFiles);
  let preparation: ModelEval['preparation'] = null;
  let runs: string | Uint8Array = path.resolve(file);
  let prepared: PreparedModel | undefined;
  try {
    prepared = await prepareLoaded(loaded, { label: file, notice });
  } catch {
    // Not a model whose shapes vitpath can analyse: it runs as it is (preparation null).
  }
  if (prepared) {
    const p = prepared.preparation;
    const ran = needsPrepared(p) ? 'prepared' : 'file';
    preparation = { batch: p.batch, summary: p.summary, ran };
    if (ran === 'prepared') {
      runs = encodeModel(prepared.loaded.proto);
      if (p.batch !== 'one-at-a-time') notice?.(`${COMMAND}: ${file}: ONNX Runtime fails on the file as it is above batch 1 (batch: ${p.summary}); evaluating vitpath's prepared copy instead, as trace-path does`);
    }
  }
  return {
    path: file,
    sha256: loaded.sha256,
    io,
    preparation,
    runs,
    facts: {
      ...f,
      bytes: { model: bytes.modelBytes, externalData: bytes.externalBytes, total: bytes.totalBytes },
      externalFiles: bytes.externalFiles,
      input: { name: io.input, dims: io.inputDims, type: io.inputType },
      output: { name: io.output, type: io.outputType, scores: io.scores },
      batch: io.batch,
    },
  };
}

/** Options checked and defaults filled in (usage errors, exit 1). */
export function checkEvalOptions(o: EvalOptions): { batch: number; warmup: number; repeat: number; latency: boolean } {
  const batch = o.batch ?? DEFAULTS.batch;
  const warmup = o.warmup ?? DEFAULTS.warmup;
  const repeat = o.repeat ?? DEFAULTS.repeat;
  if (!Number.isInteger(batch) || batch < 1) throw usageError(`--batch must be a positive integer (got ${batch})`);
  if (!Number.isInteger(warmup) || warmup < 0) throw usageError(`--warmup must be a non-negative integer (got ${warmup})`);
  if (!Number.isInteger(repeat) || repeat < 1) throw usageError(`--repeat must be a positive integer (got ${repeat})`);
  if (o.minAccuracy !== undefined && !(o.minAccuracy >= 0 && o.minAccuracy <= 100)) throw usageError(`--min-accuracy is a percentage from 0 to 100 (got ${o.minAccuracy})`);
  if (o.maxDrop !== undefined && !(o.maxDrop >= 0 && o.maxDrop <= 100)) throw usageError(`--max-drop is in accuracy points, from 0 to 100 (got ${o.maxDrop})`);
  if (o.maxDrop !== undefined && o.compare === undefined) throw usageError('--max-drop needs --compare REF.onnx: the drop is measured against the reference model');
  return { batch, warmup, repeat, latency: o.latency !== false };
}

/** The images of the source (limited), with a notice when some or all lack labels. */
function selectImages(o: EvalOptions): { src: DataSource; items: DataItem[]; labelled: number } {
  const src = o.source ?? discoverImages(o.images, { labels: o.labels });
  const pool = o.select ? o.select(src.items) : src.items;
  const items = o.limit !== undefined && !o.source ? pool.slice(0, o.limit) : pool;
  if (items.length === 0) throw badInput(`${o.images}: no images left after --limit; check that option.`);
  const labelled = items.filter((i) => i.label !== undefined).length;
  if (labelled === 0 && (o.minAccuracy !== undefined || o.maxDrop !== undefined)) {
    throw badInput(`${o.images} carries no labels, so ${o.minAccuracy !== undefined ? '--min-accuracy' : '--max-drop'} cannot be checked; pass --labels <file,label CSV>, use class subfolders, or an IDX images file with its labels file`);
  }
  if (labelled === 0) o.notice?.(`${COMMAND}: the images carry no labels: accuracy, per-class accuracy and the confusion matrix are skipped (agreement, KL and latency are not); pass --labels or use class subfolders for them`);
  else if (labelled < items.length) o.notice?.(`${COMMAND}: ${items.length - labelled} of the ${items.length} images have no label; accuracy is over the ${labelled} labelled ones`);
  return { src, items, labelled };
}

function sameImageShape(a: PreprocessSpec, b: PreprocessSpec): boolean {
  return a.channels === b.channels && a.height === b.height && a.width === b.width;
}

/** The first `n` images (repeated when there are fewer) as one batch, for the timings. */
async function timingBatch(items: readonly DataItem[], spec: PreprocessSpec, n: number): Promise<Float32Array> {
  const have = await loadBatch(items.slice(0, Math.min(n, items.length)), spec);
  const per = spec.channels * spec.height * spec.width;
  const out = new Float32Array(n * per);
  const m = have.length / per;
  for (let i = 0; i < n; i++) out.set(have.subarray((i % m) * per, (i % m + 1) * per), i * per);
  return out;
}

function summary(ms: number[]) {
  return { runs: ms.length, medianMs: median(ms), p90Ms: quantile(ms, 0.9), meanMs: mean(ms), minMs: Math.min(...ms), maxMs: Math.max(...ms) };
}

/**
 * Latency of one model: `warmup` untimed then `repeat` timed runs at batch 1 (cycling through the
 * timing images; skipped for a fixed batch size other than 1) and at the throughput batch.
 */
async function measureLatency(m: Opened, data: Float32Array, spec: PreprocessSpec, batch: number, o: { warmup: number; repeat: number }): Promise<LatencyRecord> {
  const s = m.session!;
  const per = spec.channels * spec.height * spec.width;
  const dims = (b: number) => [b, spec.channels, spec.height, spec.width];
  const fixed = fixedBatchOf(s, m.io.input);
  const avail = data.length / per;
  let batch1: LatencyRecord['batch1'] = null;
  if (fixed === undefined || fixed === 1) {
    const feeds = Array.from({ length: Math.min(avail, o.warmup + o.repeat) }, (_, i) => inputFeed(data.slice(i * per, (i + 1) * per), dims(1), m.io.inputType));
    batch1 = summary(await timeRuns((i) => s.run({ [m.io.input]: feeds[i % feeds.length]! }, [m.io.output]), o));
  }
  const b = fixed ?? batch;
  const feed = inputFeed(data.subarray(0, b * per), dims(b), m.io.inputType);
  const t = summary(await timeRuns(() => s.run({ [m.io.input]: feed }, [m.io.output]), o));
  return { warmup: o.warmup, repeat: o.repeat, batch1, batched: { ...t, batch: b, imagesPerSecond: b / (t.medianMs / 1000) } };
}

function accuracyRecord(e: ClassifierEvaluation): ModelEval['accuracy'] {
  const a = e.accuracy;
  if (!a) return null;
  return {
    labelled: a.labelled,
    correct: a.correct,
    top1: a.top1,
    top1Interval: a.top1Interval,
    top5: a.topK ? { k: 5, correct: a.topK.correct, accuracy: a.topK.accuracy } : null,
    meanTrueProb: a.meanTrueProb,
    perClass: a.perClass,
  };
}

function comparisonRecord(c: ClassifierComparison, model: ModelEval, reference: ModelEval): NonNullable<EvalResults['comparison']> {
  const p = c.paired;
  const ml = model.latency?.batched.imagesPerSecond;
  const rl = reference.latency?.batched.imagesPerSecond;
  return {
    images: c.count,
    agreed: c.agreed,
    agreement: c.agreement,
    meanKl: c.meanKl,
    maxAbsProbDiff: c.maxAbsProbDiff,
    accuracyDifference: p ? { labelled: p.n, difference: p.difference, interval: p.interval, referenceOnly: p.referenceOnly, modelOnly: p.modelOnly, mcnemarP: p.mcnemarP } : null,
    speedup: ml !== undefined && rl !== undefined ? ml / rl : null,
  };
}

/** The --min-accuracy / --max-drop outcomes. */
export function evaluateChecks(o: Pick<EvalOptions, 'minAccuracy' | 'maxDrop'>, r: Pick<EvalResults, 'model' | 'comparison'>): CheckRecord[] {
  const checks: CheckRecord[] = [];
  if (o.minAccuracy !== undefined && r.model.accuracy) {
    const value = r.model.accuracy.top1 * 100;
    checks.push({ check: 'min-accuracy', threshold: o.minAccuracy, value, passed: value >= o.minAccuracy - CHECK_EPS });
  }
  const d = r.comparison?.accuracyDifference;
  if (o.maxDrop !== undefined && d) {
    const value = (0 - d.difference) * 100; // no -0 for a model equal to its reference
    checks.push({ check: 'max-drop', threshold: o.maxDrop, value, passed: value <= o.maxDrop + CHECK_EPS });
  }
  return checks;
}

/** The exit-5 error naming every failed check of a report, or null when every check passed. */
export function checkFailure(report: EvalReport, where?: string): VitpathError | null {
  const failed = report.results.checks.filter((c) => !c.passed);
  if (failed.length === 0) return null;
  const say = (c: CheckRecord) =>
    c.check === 'min-accuracy'
      ? `top-1 accuracy ${c.value.toFixed(2)}% is below --min-accuracy ${c.threshold}`
      : `top-1 accuracy dropped ${c.value.toFixed(2)} points against the reference, more than --max-drop ${c.threshold}`;
  return checkFailed(`${report.model.path}: ${failed.map(say).join('; ')}${where ? ` (reports in ${where})` : ''}`);
}

/**
 * Evaluate a model file (and a reference) on an image source; returns the validated report. `run`
 * carries the clock, notices and progress (a fresh one when called on its own, as the benchmark does).
 */
export async function evaluateModels(modelPath: string, options: EvalOptions, run: CommandRun = new CommandRun(COMMAND)): Promise<EvalOutcome> {
  const o: EvalOptions = { ...options, notice: options.notice ?? ((l) => run.notice(l)) };
  const { batch, warmup, repeat, latency } = checkEvalOptions(o);
  const clock = run.clock;
  const model = await clock.time('load', () => open(modelPath, o.output, o.notice));
  const ref = o.compare !== undefined ? await clock.time('load', () => open(o.compare!, o.compareOutput, o.notice)) : undefined;
  const { src, items, labelled } = selectImages(o);
  const spec = inferPreprocess(model.io.inputDims, o.preprocess);
  if (ref) {
    const rs = inferPreprocess(ref.io.inputDims, o.preprocess);
    if (!sameImageShape(spec, rs)) {
      throw badInput(`${o.compare} takes ${rs.channels}x${rs.height}x${rs.width} images but ${modelPath} takes ${spec.channels}x${spec.height}x${spec.width}; compare models with the same input`);
    }
  }
  const rt = o.runtime ?? {};
  const opened = ref ? [model, ref] : [model];
  try {
    for (const m of opened) m.session = await clock.time('session', () => createSession(m.runs, rt));
    const classifiers: Classifier[] = opened.map((m) => sessionClassifier(m.session!, m.io, { batchSize: batch, label: m.path }));
    // One image through every model: the class count (for the label check) before any output is claimed.
    const first = await loadBatch(items.slice(0, 1), spec);
    const probe: ClassifierBatch = { data: first, dims: [1, spec.channels, spec.height, spec.width] };
    const classes = (await classifiers[0]!.logits(probe)).length;
    if (ref) {
      const k = (await classifiers[1]!.logits(probe)).length;
      if (k !== classes) throw badInput(`${o.compare} has ${k} classes but ${modelPath} has ${classes}; compare models over the same classes`);
    }
    checkLabelRange({ ...src, items }, classes);
    o.beforeRun?.();

    const total = items.length;
    const batches = async function* (): AsyncGenerator<ClassifierBatch> {
      for await (const b of iterateBatches(items, spec, batch)) yield { data: b.data, dims: b.dims, labels: b.labels };
    };
    const onProgress = (done: number) => {
      run.progress(done, total);
      o.onProgress?.({ phase: 'images', done, total });
    };
    onProgress(0);
    let evals: ClassifierEvaluation[];
    let comparison: ClassifierComparison | undefined;
    if (ref) {
      const r = await clock.time('evaluate', () => compareClassifiers(classifiers[0]!, classifiers[1]!, batches(), { onProgress, names: [modelPath, o.compare!] }));
      evals = [r.model, r.reference];
      comparison = r.comparison;
    } else {
      evals = [await clock.time('evaluate', () => evaluateClassifier(classifiers[0]!, batches(), { onProgress }))];
    }

    const latencies: Array<LatencyRecord | null> = opened.map(() => null);
    if (latency) {
      const fixedOther = opened.map((m) => fixedBatchOf(m.session!, m.io.input)).filter((f) => f !== undefined && f !== 1);
      const n = Math.max(batch, ...fixedOther.map(Number), Math.min(items.length, warmup + repeat));
      const data = await timingBatch(items, spec, n);
      for (const [i, m] of opened.entries()) {
        const fixed = fixedBatchOf(m.session!, m.io.input);
        if (fixed !== undefined && fixed !== 1) o.notice?.(`${COMMAND}: ${m.path} has a fixed batch size of ${fixed}: no latency at batch 1, throughput at batch ${fixed}`);
        o.onProgress?.({ phase: 'latency', done: i, total: opened.length });
        latencies[i] = await clock.time('latency', () => measureLatency(m, data, spec, batch, { warmup, repeat }));
      }
      o.onProgress?.({ phase: 'latency', done: opened.length, total: opened.length });
    }

    const records: ModelEval[] = opened.map((m, i) => ({ path: m.path, sha256: m.sha256, facts: m.facts, accuracy: accuracyRecord(evals[i]!), latency: latencies[i]!, preparation: m.preparation }));
    const partial = {
      model: records[0]!,
      comparison: comparison ? comparisonRecord(comparison, records[0]!, records[1]!) : null,
    };
    const results: EvalResults = {
      images: { count: items.length, labelled, source: describeSource({ ...src, items }), preprocess: describePreprocess(spec) },
      classes,
      classNames: src.kind === 'class-folders' && src.classes ? src.classes : null,
      model: partial.model,
      reference: records[1] ?? null,
      comparison: partial.comparison,
      checks: evaluateChecks(o, partial),
    };
    const stats = opened.reduce((a, m) => ({ runs: a.runs + m.session!.stats.runs, runMs: a.runMs + m.session!.stats.runMs }), { runs: 0, runMs: 0 });
    const report = run.envelope(
      {
        options: o.reportOptions ?? {
          images: o.images,
          labels: o.labels,
          limit: o.limit,
          compare: o.compare,
          output: o.output,
          batch,
          latency,
          warmup,
          repeat,
          minAccuracy: o.minAccuracy,
          maxDrop: o.maxDrop,
        },
        model: { path: modelPath, sha256: model.sha256, layout: null },
        runtime: runtimeInfo(model.session!, { provider: rt.provider, deviceId: rt.deviceId, threads: rt.threads }, 'thread'),
        inference: stats,
        results,
      },
      evalResultsSchema,
    );
    return { report, evaluations: evals };
  } finally {
    await Promise.all(opened.map((m) => m.session?.release()));
  }
}

// ---------------------------------------------------------------------------------------------
// Files

export const METRIC_COLUMNS = ['model', 'path', 'metric', 'value', 'ci_low', 'ci_high'] as const;
export const CLASS_COLUMNS = ['model', 'class', 'name', 'count', 'correct', 'accuracy'] as const;
export const CONFUSION_COLUMNS = ['model', 'true', 'pred', 'count'] as const;

/** eval.csv: one row per model (model, reference, comparison) and metric. */
export function metricRows(r: EvalResults): CsvRow[] {
  const rows: CsvRow[] = [];
  const add = (model: string, p: string, metric: string, value: number | null | undefined, ci?: { low: number; high: number }) => {
    if (value === null || value === undefined) return;
    rows.push({ model, path: p, metric, value, ci_low: ci?.low, ci_high: ci?.high });
  };
  for (const [role, m] of [['model', r.model], ['reference', r.reference]] as const) {
    if (!m) continue;
    const a = m.accuracy;
    if (a) {
      add(role, m.path, 'top1', a.top1, a.top1Interval);
      add(role, m.path, 'top5', a.top5?.accuracy);
      add(role, m.path, 'mean_true_prob', a.meanTrueProb);
      add(role, m.path, 'labelled', a.labelled);
      add(role, m.path, 'correct', a.correct);
    }
    add(role, m.path, 'parameters', m.facts.parameters);
    add(role, m.path, 'file_bytes', m.facts.bytes.total);
    const l = m.latency;
    if (l) {
      add(role, m.path, 'latency_batch1_median_ms', l.batch1?.medianMs);
      add(role, m.path, 'latency_batch1_p90_ms', l.batch1?.p90Ms);
      add(role, m.path, 'throughput_batch', l.batched.batch);
      add(role, m.path, 'throughput_median_ms', l.batched.medianMs);
      add(role, m.path, 'throughput_images_per_second', l.batched.imagesPerSecond);
    }
  }
  const c = r.comparison;
  if (c && r.reference) {
    const p = `${r.model.path} vs ${r.reference.path}`;
    add('comparison', p, 'agreement', c.agreement);
    add('comparison', p, 'mean_kl', c.meanKl);
    add('comparison', p, 'max_abs_prob_diff', c.maxAbsProbDiff);
    const d = c.accuracyDifference;
    if (d) {
      add('comparison', p, 'accuracy_difference', d.difference, d.interval);
      add('comparison', p, 'reference_only_correct', d.referenceOnly);
      add('comparison', p, 'model_only_correct', d.modelOnly);
      add('comparison', p, 'mcnemar_p', d.mcnemarP);
    }
    add('comparison', p, 'speedup', c.speedup);
  }
  return rows;
}

/** classes.csv: one row per model and class (accuracy empty for a class without images). */
export function classRows(r: EvalResults): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const [role, m] of [['model', r.model], ['reference', r.reference]] as const) {
    for (const c of m?.accuracy?.perClass ?? []) rows.push({ model: role, class: c.class, name: r.classNames?.[c.class] ?? null, count: c.count, correct: c.correct, accuracy: c.accuracy });
  }
  return rows;
}

/** confusion.csv: one row per model and non-zero cell (true class, predicted class, count). */
export function confusionRows(evals: readonly ClassifierEvaluation[]): CsvRow[] {
  const rows: CsvRow[] = [];
  evals.forEach((e, i) => {
    for (const c of e.accuracy?.confusion ?? []) rows.push({ model: i === 0 ? 'model' : 'reference', true: c.true, pred: c.pred, count: c.count });
  });
  return rows;
}

/** Write eval.csv, classes.csv and confusion.csv into `out` (report.json is written after them, by the run); returns the paths. */
export function writeEvalFiles({ report, evaluations }: EvalOutcome, out: OutDir): string[] {
  return [
    out.writeCsv(FILES.metrics, metricRows(report.results), METRIC_COLUMNS),
    out.writeCsv(FILES.classes, classRows(report.results), CLASS_COLUMNS),
    out.writeCsv(FILES.confusion, confusionRows(evaluations), CONFUSION_COLUMNS),
  ];
}

/**
 * The whole command: check the inputs, claim the output folder before the evaluation pass (refused
 * when a report file exists without --force, when another run holds it or it cannot be written; no
 * folder for bad input), evaluate, write the files with report.json last. The caller turns a failed
 * check into exit 5 (checkFailure).
 */
export async function runEval(modelPath: string, o: EvalOptions & { out?: string; force?: boolean }, hooks: RunHooks = {}): Promise<{ report: EvalReport; outDir: OutDir }> {
  return runCommand(COMMAND, hooks, async (run) => {
    const outcome = await evaluateModels(
      modelPath,
      {
        ...o,
        beforeRun: () => {
          o.beforeRun?.();
          run.claim({ out: o.out, force: o.force, files: Object.values(FILES) });
        },
      },
      run,
    );
    await run.writeReports(outcome.report, (out) => writeEvalFiles(outcome, out));
    return { report: outcome.report, outDir: run.out };
  });
}
