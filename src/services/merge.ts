// The merge service: one trace-path report from the output folders of the shards of a job array
// (trace-path --shard K/N or --shard auto). Every shard must be a finished trace-path run of the
// same model, settings, preprocessing, image source and vitpath version; together they must be
// shards 0..N-1 of one split, each with all of its images, no image twice. Per-image results are
// taken as they are; the run-level parts (method summaries, accuracy, per-class path frequencies,
// preferred paths, class similarity) are recomputed from the merged images with the code a single
// run uses, and the files are written through the shared command run (report.json last, --out
// claimed and locked, nothing overwritten without --force), so they equal those of a single run over
// all images, timings and run metadata aside.
//
// probe-layers reports are refused (see PROBE_LAYERS_REFUSAL).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { badInput, usageError } from '../errors.js';
import { readJsonl } from '../report/jsonl.js';
import { LOCK_FILE, processAlive } from '../report/lock.js';
import { makeEnvelope, type Envelope, type Timings } from '../report/envelope.js';
import { TOOL_VERSION } from '../version.js';
import type { OutDir } from '../report/outdir.js';
import { chartFiles } from '../report/charts.js';
import type { ViTLayout } from '../vit/types.js';
import { runCommand, REPORT_JSON, type CommandRun, type RunHooks } from './commandRun.js';
import type { ImageResult, MethodName } from './traceCore.js';
import { traceResultsSchema, type TraceResults } from './traceSchema.js';
import { PROGRESS_FILE, REPORT_FILES, chartNames, runAggregates, similarityChartNotice, writeReportFiles } from './tracePath.js';

export interface MergeOptions {
  /** Folder for the merged report (the first positional argument, or --out). */
  out?: string;
  /** The shards' output folders. */
  dirs: string[];
  force: boolean;
  /** Base for relative paths (tests). */
  cwd?: string;
}

export interface MergeOutcome {
  report: Envelope<TraceResults>;
  outDir: OutDir;
  shards: number;
}

/** One shard folder, read and checked on its own. */
export interface ShardRun {
  dir: string;
  report: Envelope<TraceResults>;
  shard: { index: number; count: number };
}

/**
 * Why probe-layers shards are refused. probe-layers has no --shard, and its report holds means,
 * not the sums and counts an exact merge needs: the linear probes are fitted and cross-validated
 * on all images together, the dead-neuron fraction needs each neuron's activations on every image,
 * the majority-class chance needs the label counts, and a mean rebuilt from mean x count is not the
 * single run's number to the last decimal.
 */
export const PROBE_LAYERS_REFUSAL =
  'merge combines trace-path shards only. probe-layers cannot be merged exactly: its linear probes are fitted and cross-validated on all images together, its dead-neuron fraction needs every neuron on every image, and its report holds means rather than the sums and counts an exact merge needs. Run probe-layers as one job (it is much cheaper than trace-path: a few forward passes per image, no path search).';

/** Options that say where, how fast or into which folder a shard ran; everything else must agree. */
const RUN_ONLY_OPTIONS = new Set([
  'shard',
  'out',
  'force',
  'resume',
  'threads',
  'batch',
  'provider',
  'deviceId',
  'cacheDir',
  'maxSamples',
  'maxMemory',
  'ortLogSeverity',
  'labels', // a path; the labels themselves are compared through the images' results
  'plotImages', // only how many charts to draw; the merge draws the first shard's count
  'quiet',
  'json',
]);

function readReport(dir: string, file: string): Envelope<TraceResults> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Envelope<TraceResults>;
  } catch (e) {
    throw badInput(`${file}: not readable JSON (${(e as Error).message}); the shard's report is damaged: rerun that shard with --force --out ${dir}.`);
  }
}

/** A live lock means a run is writing the folder now; one from another host cannot be checked. */
function checkNotLocked(dir: string, abs: string): void {
  const file = path.join(abs, LOCK_FILE);
  if (!fs.existsSync(file)) return;
  let info: { pid?: number; host?: string; command?: string } = {};
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof info;
  } catch {
    // unreadable: treat as held
  }
  const here = info.host === os.hostname();
  if (here && typeof info.pid === 'number' && !processAlive(info.pid)) return; // stale: its run is gone
  const who = info.pid !== undefined ? `${info.command ?? 'a run'}, pid ${info.pid}${here ? '' : ` on ${info.host ?? 'another host'}`}` : 'an unknown run';
  throw badInput(`${dir}: unfinished shard: a run is writing it (${LOCK_FILE}: ${who}); wait for it to finish, then merge. If that run is gone, delete ${path.join(dir, LOCK_FILE)}.`);
}

/** Read and check one shard folder: a finished trace-path run with --shard. */
export function readShard(dir: string, cwd = process.cwd()): ShardRun {
  const abs = path.resolve(cwd, dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw badInput(`${dir}: not a folder; pass the --out folders of the shards' trace-path runs.`);
  const reportFile = path.join(abs, REPORT_JSON);
  const progressFile = path.join(abs, PROGRESS_FILE);
  if (!fs.existsSync(reportFile)) {
    if (fs.existsSync(progressFile)) {
      throw badInput(`${dir}: unfinished shard (${PROGRESS_FILE} but no ${REPORT_JSON}); finish it with the same trace-path command plus --resume --out ${dir}, then merge.`);
    }
    throw badInput(`${dir}: no ${REPORT_JSON}; pass the --out folders of finished trace-path --shard runs.`);
  }
  checkNotLocked(dir, abs);
  const report = readReport(dir, reportFile);
  if (report.command === 'probe-layers') throw badInput(`${dir}: a probe-layers report. ${PROBE_LAYERS_REFUSAL}`);
  if (report.command !== 'trace-path') throw badInput(`${dir}: a ${String(report.command)} report; merge combines the folders of trace-path --shard runs only.`);
  if (report.tool?.version !== TOOL_VERSION) {
    throw badInput(`${dir}: written by vitpath ${String(report.tool?.version)}, this is vitpath ${TOOL_VERSION}; merge with the vitpath version that wrote the shards (the merged report is stamped with the merging version).`);
  }
  const parsed = traceResultsSchema.safeParse(report.results);
  if (!parsed.success) throw badInput(`${reportFile}: not a trace-path report this vitpath can read (${parsed.error.issues[0]?.message ?? 'schema mismatch'}); rerun that shard with --force.`);
  const shard = report.results.settings.shard;
  if (!shard) throw badInput(`${dir}: not a shard (that trace-path run had no --shard); merge combines the folders of --shard K/N (or --shard auto) runs.`);
  if (report.results.settings.autoSteps) {
    throw badInput(
      `${dir}: run with --steps auto. Each shard calibrates on its own first images, so shards may choose different rules and none chose what a single run would; run --steps auto once (e.g. trace-path --limit 8), then give the whole array its --rule and --steps.`,
    );
  }
  const limit = (report.options as { limit?: unknown }).limit;
  if (limit !== undefined && limit !== null) {
    throw badInput(
      `${dir}: run with --limit ${String(limit)}. Each shard took the first ${String(limit)} of its own share, which no single run takes (--limit there takes the first images of the whole list), so the merged report could not say which images it covers; run the shards without --limit (use a smaller --images list instead).`,
    );
  }
  // A later run in the same folder (--force or --resume) that did not finish leaves a progress log
  // that disagrees with the report.
  if (fs.existsSync(progressFile)) {
    const logged = readJsonl<{ kind?: string; id?: string }>(progressFile)
      .records.filter((l) => l.kind === 'image')
      .map((l) => String(l.id));
    const ids = new Set(report.results.images.map((im) => im.id));
    if (logged.length !== ids.size || logged.some((id) => !ids.has(id))) {
      throw badInput(`${dir}: unfinished shard (${PROGRESS_FILE} lists ${logged.length} images, ${REPORT_JSON} ${ids.size}: a later run in this folder did not finish); finish it with --resume --out ${dir}, then merge.`);
    }
  }
  return { dir, report, shard };
}

/** Stable JSON (object keys sorted) for comparing settings. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

/** What every shard must share, as named parts (for the refusal message), each a record of values. */
function identity(s: ShardRun): Record<string, Record<string, unknown>> {
  const r = s.report;
  const { shard: _s, ...settings } = r.results.settings;
  // Paths differ between nodes; the list itself is compared by count, labels and classes.
  const { input: _i, root: _r, labelsFrom: _l, idx, ...data } = r.results.data as Record<string, unknown>;
  const idxShape = idx && typeof idx === 'object' ? Object.fromEntries(Object.entries(idx).filter(([k]) => k !== 'images' && k !== 'labels')) : idx;
  const options = Object.fromEntries(Object.entries(r.options).filter(([k]) => !RUN_ONLY_OPTIONS.has(k)));
  return {
    'vitpath version': { version: `${r.tool.name} ${r.tool.version}`, schemaVersion: r.schemaVersion },
    model: { sha256: r.model.sha256 },
    settings,
    preprocessing: r.results.preprocess,
    'image source': { ...data, idx: idxShape },
    options,
  };
}

/** "key a vs b" for each key whose values differ (at most 4). */
function differences(a: Record<string, unknown>, b: Record<string, unknown>): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().filter((k) => canonical(a[k]) !== canonical(b[k]));
  const show = (v: unknown) => (v === undefined ? '(none)' : canonical(v).slice(0, 120));
  return keys
    .slice(0, 4)
    .map((k) => `${k} ${show(a[k])} vs ${show(b[k])}`)
    .join('; ');
}

/** Images shard K of N holds: every N-th of `total` starting at K. */
export function shardImageCount(total: number, k: number, n: number): number {
  return total > k ? Math.ceil((total - k) / n) : 0;
}

/** Check that the shards belong together and cover the split once; returns them by shard index. */
export function checkShards(shards: ShardRun[]): ShardRun[] {
  const first = shards[0]!;
  const want = identity(first);
  for (const s of shards.slice(1)) {
    const got = identity(s);
    for (const k of Object.keys(want)) {
      if (canonical(got[k]) !== canonical(want[k])) {
        throw badInput(`${s.dir} and ${first.dir} differ in ${k} (${differences(got[k]!, want[k]!)}); merge only the shards of one job array (same model, settings, images and vitpath version).`);
      }
    }
  }
  const N = first.shard.count;
  const byIndex = new Map<number, ShardRun>();
  for (const s of shards) {
    if (s.shard.count !== N) throw badInput(`${s.dir} is shard ${s.shard.index}/${s.shard.count} but ${first.dir} is shard ${first.shard.index}/${N}; merge the shards of one split.`);
    const other = byIndex.get(s.shard.index);
    if (other) throw badInput(`overlapping shards: ${other.dir} and ${s.dir} are both shard ${s.shard.index}/${N}; pass each shard's folder once.`);
    byIndex.set(s.shard.index, s);
  }
  const missing = Array.from({ length: N }, (_, k) => k).filter((k) => !byIndex.has(k));
  if (missing.length) {
    const many = missing.length > 1;
    throw badInput(
      `missing shard${many ? 's' : ''} ${missing.map((k) => `${k}/${N}`).join(', ')}: ${many ? 'their' : 'its'} images are in none of the folders given; run ${many ? 'them' : 'it'} (or pass ${many ? 'their folders' : 'its folder'}) and merge again.`,
    );
  }
  return [...byIndex.values()].sort((a, b) => a.shard.index - b.shard.index);
}

/** The merged images (and skipped images) in input order, with their positions in the whole list. */
export function mergeImages(shards: ShardRun[]): { images: ImageResult[]; skipped: { id: string; reason: string }[] } {
  const r0 = shards[0]!.report;
  const total = Number((r0.results.data as { count?: unknown }).count);
  const seen = new Map<string, string>();
  const images: ImageResult[] = [];
  const skipped: { index: number; id: string; reason: string }[] = [];
  for (const s of shards) {
    const { index: k, count: N } = s.shard;
    const own = s.report.results.images as ImageResult[];
    const bad = s.report.results.skipped ?? [];
    const expected = shardImageCount(total, k, N);
    if (own.length + bad.length !== expected) {
      throw badInput(
        `${s.dir}: shard ${k}/${N} holds ${own.length} images${bad.length ? ` (and ${bad.length} skipped)` : ''} but its share of the ${total} images is ${expected}: missing images (an unfinished or different run); finish it with --resume --out ${s.dir}, or rerun it, then merge.`,
      );
    }
    const positions = new Set(own.map((im) => im.index));
    for (const im of [...own.map((im) => ({ id: im.id, where: s.dir })), ...bad.map((b) => ({ id: b.id, where: s.dir }))]) {
      const prev = seen.get(im.id);
      if (prev) throw badInput(`overlapping images: ${im.id} is in both ${prev} and ${im.where}; merge the shards of one split of one image list.`);
      seen.set(im.id, im.where);
    }
    // The j-th image of shard K is image K + j*N of the whole list (selectItems keeps order).
    for (const im of own) images.push({ ...im, index: k + im.index * N });
    // Skipped images hold the positions no result has, in order (the run skips them in input order).
    const free = Array.from({ length: expected }, (_, j) => j).filter((j) => !positions.has(j));
    bad.forEach((b, i) => skipped.push({ index: k + free[i]! * N, id: b.id, reason: b.reason }));
  }
  images.sort((a, b) => a.index - b.index);
  skipped.sort((a, b) => a.index - b.index);
  return { images, skipped: skipped.map(({ id, reason }) => ({ id, reason })) };
}

/** Timings of the merged report: shard worker time summed (phases too), from the first start to the merge. */
function mergedTimings(shards: ShardRun[], own: Timings): Timings {
  const phases: Record<string, number> = {};
  let runs = 0;
  let ms = 0;
  let anyInference = false;
  for (const s of shards) {
    const t = s.report.timings;
    for (const [k, v] of Object.entries(t.phases)) phases[k] = (phases[k] ?? 0) + v;
    if (t.inference) {
      anyInference = true;
      runs += t.inference.runs;
      ms += t.inference.ms;
    }
  }
  phases.merge = own.totalMs;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  for (const k of Object.keys(phases)) phases[k] = round(phases[k]!);
  return {
    startedAt: shards.map((s) => s.report.timings.startedAt).sort()[0]!,
    finishedAt: own.finishedAt,
    totalMs: round(shards.reduce((a, s) => a + s.report.timings.totalMs, 0) + own.totalMs),
    phases,
    ...(anyInference ? { inference: { runs, ms: round(ms) } } : {}),
  };
}

export async function mergeShards(o: MergeOptions, hooks: RunHooks = {}): Promise<MergeOutcome> {
  return runCommand('merge', hooks, (run) => mergeRun(run, o));
}

async function mergeRun(run: CommandRun, o: MergeOptions): Promise<MergeOutcome> {
  if (o.dirs.length === 0) throw usageError("merge needs the shards' output folders: vitpath merge OUT DIR... (or vitpath merge --out OUT DIR...).");
  const cwd = o.cwd ?? process.cwd();
  if (o.out !== undefined) {
    const outAbs = path.resolve(cwd, o.out);
    const clash = o.dirs.find((d) => path.resolve(cwd, d) === outAbs);
    if (clash) throw usageError(`the merged report's folder ${o.out} is also given as a shard (${clash}); name a new folder for the merge: vitpath merge OUT DIR...`);
  }
  const shards = checkShards(await run.clock.time('read', () => o.dirs.map((d) => readShard(d, cwd))));
  const first = shards[0]!;
  const r0 = first.report.results;
  const { images, skipped } = mergeImages(shards);
  const layout = first.report.model.layout as unknown as ViTLayout | null;
  if (!layout) throw badInput(`${first.dir}: its report has no model layout; rerun that shard with this vitpath.`);
  const classes = layout.facts.numClasses;
  const ffn = layout.facts.ffnWidth;
  const layers = r0.settings.layers;
  const methods: MethodName[] = ['path', ...(r0.settings.baselines as MethodName[])];
  const providers = [...new Set(shards.map((s) => s.report.runtime?.used ?? 'unknown'))];
  if (providers.length > 1) run.notice(`merge: the shards ran on different execution providers (${providers.join(', ')}); their results agree to float rounding, not bit for bit. Each shard's provider is under options.mergedFrom.`);
  // Throughput of the shards as one worker: all traced images over the shards' summed tracing time.
  const seconds = shards.reduce((a, s) => a + (s.report.results.imagesPerSecond > 0 ? s.report.results.images.length / s.report.results.imagesPerSecond : 0), 0);
  const skipBad = (first.report.options as { skipBadImages?: boolean }).skipBadImages === true;
  const results: TraceResults = {
    data: r0.data,
    preprocess: r0.preprocess,
    settings: { ...r0.settings, shard: null },
    images,
    ...(skipBad ? { skipped } : {}),
    ...runAggregates(images, methods, classes, layers.length, ffn),
    imagesPerSecond: seconds > 0 ? images.length / seconds : 0,
  };
  const chartNote = similarityChartNotice(results.classes);
  if (chartNote) run.notice(chartNote);
  const plotCount = Math.min(Number((first.report.options as { plotImages?: number }).plotImages ?? 0), images.length);
  const out = run.claim({ out: o.out, force: o.force, files: [...REPORT_FILES, ...chartNames(plotCount).flatMap(chartFiles)], cwd: o.cwd });
  const { shard: _shard, out: _out, force: _force, resume: _resume, ...shared } = first.report.options as Record<string, unknown>;
  const report = makeEnvelope(
    {
      command: 'trace-path',
      options: {
        ...shared,
        out: o.out,
        force: o.force,
        resume: false,
        mergedFrom: shards.map((s) => ({
          dir: path.resolve(cwd, s.dir),
          shard: s.shard,
          images: s.report.results.images.length,
          skipped: s.report.results.skipped?.length ?? 0,
          provider: s.report.runtime?.used ?? null,
          startedAt: s.report.timings.startedAt,
          finishedAt: s.report.timings.finishedAt,
          totalMs: s.report.timings.totalMs,
        })),
      },
      model: first.report.model,
      runtime: first.report.runtime,
      timings: mergedTimings(shards, run.clock.finish()),
      results,
    },
    traceResultsSchema,
  );
  await run.writeReports(report, (dir) => writeReportFiles(dir, report, layers, ffn, plotCount));
  return { report, outDir: out, shards: shards.length };
}
