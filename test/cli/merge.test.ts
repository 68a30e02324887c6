// End-to-end: a job array through the built CLI. Three `trace-path --shard auto` runs with a
// simulated Slurm array and `vitpath merge` give the report.json and CSVs (and charts) of a single
// run over all images, timings and run metadata aside; likewise with --skip-bad-images. merge
// refuses foreign, missing, overlapping and unfinished shards and non-trace-path reports, each with
// exit 2 and a message naming the problem, before it writes anything.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';

const MODEL = 'fixtures/models/digits-vit.onnx';
const OTHER_MODEL = 'fixtures/models/fashion-vit.onnx'; // same input size, another model
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-merge-cli-'));
const dir = (name: string) => path.join(tmp, name);
const IMG_DIR = dir('images');
const BAD_DIR = dir('images-bad');
// 10 digits, 2 per class 0..4 (class folders give the labels); a copy with 2 unreadable files.
for (const c of [0, 1, 2, 3, 4]) {
  const from = path.join(ROOT, 'fixtures/digits', String(c));
  fs.mkdirSync(path.join(IMG_DIR, String(c)), { recursive: true });
  for (const f of fs.readdirSync(from).sort().slice(0, 2)) fs.copyFileSync(path.join(from, f), path.join(IMG_DIR, String(c), f));
}
fs.cpSync(IMG_DIR, BAD_DIR, { recursive: true });
fs.writeFileSync(path.join(BAD_DIR, '1', 'zz-broken.png'), 'not a png');
fs.writeFileSync(path.join(BAD_DIR, '3', 'zz-truncated.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));

const FAST = ['--steps', '4', '--threads', '1', '--provider', 'cpu', '--batch', '4'];
const run = (images: string, ...more: string[]) => ['trace-path', MODEL, '--images', images, ...FAST, ...more];
const CSVS = ['paths.csv', 'images.csv', 'classes.csv', 'similarity.csv'];
const CHARTS = ['classes', 'similarity', 'ratios', 'path-0', 'path-1'].flatMap((n) => [`${n}.svg`, `${n}.vl.json`]);
/** No scheduler variables from the environment the tests run in. */
const NO_ARRAY = { SLURM_ARRAY_TASK_ID: '', SLURM_ARRAY_TASK_MIN: '', SLURM_ARRAY_TASK_MAX: '', SLURM_ARRAY_TASK_COUNT: '', SLURM_ARRAY_TASK_STEP: '', JOB_COMPLETION_INDEX: '' };
const slurm = (k: number) => ({ ...NO_ARRAY, SLURM_ARRAY_TASK_ID: String(k), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2' });
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const shards = (prefix = 'shard') => [0, 1, 2].map((k) => dir(`${prefix}-${k}`));

function ok(r: CliRun): CliRun {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}
/** A refusal: the exit code, nothing on stdout, the messages on stderr, and no OUT folder left. */
function refused(r: CliRun, code: number, out: string | undefined, ...mentions: RegExp[]): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  expect(r.stdout).toBe('');
  for (const m of mentions) expect(r.stderr).toMatch(m);
  if (out) expect(fs.existsSync(out), `${out} was created`).toBe(false);
}
/** A copy of a shard folder with its report edited (and its progress log dropped unless kept). */
function tampered(from: string, name: string, edit: (report: Record<string, any>) => void, keepLog = false): string {
  const to = dir(name);
  fs.cpSync(from, to, { recursive: true });
  const r = readJson(path.join(to, 'report.json'));
  edit(r);
  fs.writeFileSync(path.join(to, 'report.json'), JSON.stringify(r));
  if (!keepLog) fs.rmSync(path.join(to, 'progress.jsonl'));
  return to;
}
const merge = (out: string, ...dirs: string[]) => runVitpath(['merge', out, ...dirs]);

/** The single run's report and the merged one agree on everything but timings and run metadata. */
function expectSameReport(merged: Record<string, any>, single: Record<string, any>, shardCount: number): void {
  const { imagesPerSecond: _a, ...mres } = merged.results;
  const { imagesPerSecond: _b, ...sres } = single.results;
  expect(mres).toEqual(sres);
  for (const k of ['schemaVersion', 'tool', 'command', 'model', 'runtime']) expect(merged[k], k).toEqual(single[k]);
  const { out: _o, mergedFrom, ...mopts } = merged.options;
  const { out: _p, ...sopts } = single.options;
  expect(mopts).toEqual(sopts);
  expect(mergedFrom.map((m: { shard: unknown }) => m.shard)).toEqual(Array.from({ length: shardCount }, (_, k) => ({ index: k, count: shardCount })));
  expect(Object.keys(merged.timings.phases)).toContain('merge');
}

beforeAll(async () => {
  ensureBuilt();
  ok(await runVitpath([...run(IMG_DIR, '--plot-images', '2', '--quiet'), '--out', dir('single')], { env: NO_ARRAY }));
  for (const k of [0, 1, 2]) {
    const r = ok(await runVitpath([...run(IMG_DIR, '--plot-images', '2'), '--shard', 'auto', '--out', dir(`shard-${k}`)], { env: slurm(k) }));
    expect(r.stderr).toMatch(new RegExp(`--shard auto: shard ${k}/3 \\(from the Slurm job array\\)`));
  }
}, 300_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('vitpath merge: 3 shards give the single run', () => {
  it('report.json, CSVs and charts equal the single run over all images (timings and run metadata aside)', async () => {
    shards().forEach((s, k) => expect(readJson(path.join(s, 'report.json')).results.settings.shard).toEqual({ index: k, count: 3 }));
    const [s0, s1, s2] = shards();
    const r = ok(await runVitpath(['merge', dir('merged'), s2!, s0!, s1!, '--json']));
    const merged = JSON.parse(r.stdout);
    expect(readJson(path.join(dir('merged'), 'report.json'))).toEqual(merged);
    const single = readJson(path.join(dir('single'), 'report.json'));
    expect(merged.results.images).toHaveLength(10);
    expect(merged.results.images.map((im: { index: number }) => im.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectSameReport(merged, single, 3);
    for (const f of [...CSVS, ...CHARTS]) expect(fs.readFileSync(path.join(dir('merged'), f), 'utf8'), f).toBe(fs.readFileSync(path.join(dir('single'), f), 'utf8'));
    // The same files a single run writes, its progress log aside (a merged report is not resumable); no lock left.
    expect(fs.readdirSync(dir('merged')).sort()).toEqual(fs.readdirSync(dir('single')).filter((f) => f !== 'progress.jsonl').sort());
    expect(r.stderr).toMatch(/merged 3 shards/);
  });

  it('with --skip-bad-images: the skipped images are listed in input order, as the single run lists them', async () => {
    ok(await runVitpath([...run(BAD_DIR, '--skip-bad-images', '--quiet'), '--out', dir('bad-single')], { env: NO_ARRAY }));
    for (const k of [0, 1, 2]) ok(await runVitpath([...run(BAD_DIR, '--skip-bad-images', '--quiet'), '--shard', `${k}/3`, '--out', dir(`bad-${k}`)], { env: NO_ARRAY }));
    const single = readJson(path.join(dir('bad-single'), 'report.json'));
    expect(single.results.skipped.map((s: { id: string }) => s.id)).toEqual(['1/zz-broken.png', '3/zz-truncated.png']);
    ok(await runVitpath(['merge', '-o', dir('bad-merged'), ...shards('bad'), '--quiet']));
    expectSameReport(readJson(path.join(dir('bad-merged'), 'report.json')), single, 3);
    for (const f of CSVS) expect(fs.readFileSync(path.join(dir('bad-merged'), f), 'utf8'), f).toBe(fs.readFileSync(path.join(dir('bad-single'), f), 'utf8'));
  }, 120_000);

  it('a Kubernetes Indexed Job shard (JOB_COMPLETION_INDEX + --shard-count) is the shard Slurm gives', async () => {
    const r = ok(await runVitpath([...run(IMG_DIR, '--plot-images', '2'), '--shard', 'auto', '--shard-count', '3', '--out', dir('k8s-1')], { env: { ...NO_ARRAY, JOB_COMPLETION_INDEX: '1' } }));
    expect(r.stderr).toMatch(/--shard auto: shard 1\/3 \(from the Kubernetes Indexed Job\)/);
    const a = readJson(path.join(dir('k8s-1'), 'report.json')).results;
    expect(a.settings.shard).toEqual({ index: 1, count: 3 });
    expect(a.images).toEqual(readJson(path.join(dir('shard-1'), 'report.json')).results.images);
    // and it merges with the Slurm shards
    ok(await runVitpath(['merge', dir('merged-k8s'), dir('shard-0'), dir('k8s-1'), dir('shard-2'), '--quiet']));
    expect(fs.readFileSync(path.join(dir('merged-k8s'), 'paths.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir('single'), 'paths.csv'), 'utf8'));
  }, 60_000);
});

describe('trace-path --shard auto from the CLI', () => {
  it('outside a job array: exit 1 naming the variables and --shard K/N, nothing written', async () => {
    refused(await runVitpath([...run(IMG_DIR), '--shard', 'auto', '--out', dir('noarray')], { env: NO_ARRAY }), 1, dir('noarray'), /found no job array/, /SLURM_ARRAY_TASK_ID/, /SLURM_ARRAY_TASK_COUNT/, /JOB_COMPLETION_INDEX/, /--shard K\/N/);
  });
  it('inconsistent values: exit 1 (an ID outside the array; a Kubernetes index without --shard-count)', async () => {
    refused(await runVitpath([...run(IMG_DIR), '--shard', 'auto', '--out', dir('outside')], { env: { ...slurm(0), SLURM_ARRAY_TASK_ID: '5' } }), 1, dir('outside'), /SLURM_ARRAY_TASK_ID=5 is not in the array 0-2/);
    refused(await runVitpath([...run(IMG_DIR), '--shard', 'auto', '--out', dir('nocount')], { env: { ...NO_ARRAY, JOB_COMPLETION_INDEX: '0' } }), 1, dir('nocount'), /--shard-count N/);
  });
});

describe('vitpath merge refuses (exit 2, nothing written)', () => {
  it('a missing shard', async () => {
    refused(await merge(dir('m-missing'), dir('shard-0'), dir('shard-2')), 2, dir('m-missing'), /missing shard 1\/3/);
  });

  it('overlapping shards: the same shard twice', async () => {
    fs.cpSync(dir('shard-1'), dir('shard-1-again'), { recursive: true });
    refused(await merge(dir('m-overlap'), dir('shard-0'), dir('shard-1'), dir('shard-1-again'), dir('shard-2')), 2, dir('m-overlap'), /overlapping shards/, /both shard 1\/3/);
  });

  it('overlapping images: an image in two shards', async () => {
    const id0 = readJson(path.join(dir('shard-0'), 'report.json')).results.images[0].id;
    const dup = tampered(dir('shard-1'), 'shard-1-dup', (r) => (r.results.images[0].id = id0));
    refused(await merge(dir('m-dup'), dir('shard-0'), dup, dir('shard-2')), 2, dir('m-dup'), /overlapping images/, new RegExp(id0.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  });

  it('a shard missing images of its share', async () => {
    const short = tampered(dir('shard-0'), 'shard-0-short', (r) => r.results.images.pop());
    refused(await merge(dir('m-short'), short, dir('shard-1'), dir('shard-2')), 2, dir('m-short'), /shard 0\/3 holds 3 images but its share of the 10 images is 4/, /missing images/);
  });

  it('an unfinished shard: progress log without report.json', async () => {
    const cut = dir('shard-2-cut');
    fs.cpSync(dir('shard-2'), cut, { recursive: true });
    fs.rmSync(path.join(cut, 'report.json'));
    refused(await merge(dir('m-cut'), dir('shard-0'), dir('shard-1'), cut), 2, dir('m-cut'), /unfinished shard/, /--resume --out/);
  });

  it('an unfinished shard: a later run in its folder cut short (progress log disagrees with report.json)', async () => {
    const later = dir('shard-2-later');
    fs.cpSync(dir('shard-2'), later, { recursive: true });
    const lines = fs.readFileSync(path.join(later, 'progress.jsonl'), 'utf8').trim().split('\n');
    fs.writeFileSync(path.join(later, 'progress.jsonl'), lines.slice(0, 2).join('\n') + '\n');
    refused(await merge(dir('m-later'), dir('shard-0'), dir('shard-1'), later), 2, dir('m-later'), /unfinished shard/, /a later run in this folder did not finish/);
  });

  it('an unfinished shard: a live run holds its lock', async () => {
    const locked = dir('shard-2-locked');
    fs.cpSync(dir('shard-2'), locked, { recursive: true });
    fs.writeFileSync(path.join(locked, '.vitpath.lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), command: 'trace-path', startedAt: new Date().toISOString() }));
    refused(await merge(dir('m-locked'), dir('shard-0'), dir('shard-1'), locked), 2, dir('m-locked'), /unfinished shard: a run is writing it/, new RegExp(`pid ${process.pid}`));
  });

  it('a folder with no report at all', async () => {
    fs.mkdirSync(dir('empty'));
    refused(await merge(dir('m-empty'), dir('shard-0'), dir('shard-1'), dir('empty')), 2, dir('m-empty'), /no report\.json/);
  });

  it('shards of a different model', async () => {
    ok(await runVitpath(['trace-path', OTHER_MODEL, '--images', IMG_DIR, ...FAST, '--plot-images', '2', '--shard', '1/3', '--quiet', '--out', dir('shard-1-fashion')], { env: NO_ARRAY }));
    refused(await merge(dir('m-model'), dir('shard-0'), dir('shard-1-fashion'), dir('shard-2')), 2, dir('m-model'), /differ in model/);
  }, 60_000);

  it('shards of different settings (--steps 5 against 4)', async () => {
    ok(await runVitpath([...run(IMG_DIR, '--plot-images', '2', '--quiet').map((a) => (a === '4' ? '5' : a)), '--shard', '1/3', '--out', dir('shard-1-steps5')], { env: NO_ARRAY }));
    refused(await merge(dir('m-steps'), dir('shard-0'), dir('shard-1-steps5'), dir('shard-2')), 2, dir('m-steps'), /differ in settings \(steps 5 vs 4\)/);
  }, 60_000);

  it('but not over speed and place settings (--threads, --batch, --plot-images)', async () => {
    ok(await runVitpath(['trace-path', MODEL, '--images', IMG_DIR, '--steps', '4', '--threads', '2', '--provider', 'cpu', '--batch', '2', '--shard', '1/3', '--quiet', '--out', dir('shard-1-other-speed')], { env: NO_ARRAY }));
    ok(await merge(dir('m-speed'), dir('shard-0'), dir('shard-1-other-speed'), dir('shard-2')));
  }, 60_000);

  it('shards of another vitpath version', async () => {
    const newer = tampered(dir('shard-1'), 'shard-1-version', (r) => (r.tool.version = '9.9.9'), true);
    refused(await merge(dir('m-version'), dir('shard-0'), newer, dir('shard-2')), 2, dir('m-version'), /written by vitpath 9\.9\.9/, /merge with the vitpath version that wrote the shards/);
  });

  it('a run that was not sharded', async () => {
    refused(await merge(dir('m-unsharded'), dir('single'), dir('shard-1')), 2, dir('m-unsharded'), /not a shard/);
  });

  it('shards of another split (3 against 2)', async () => {
    const two = tampered(dir('shard-1'), 'shard-1-of-2', (r) => (r.results.settings.shard = { index: 1, count: 2 }));
    refused(await merge(dir('m-split'), dir('shard-0'), two), 2, dir('m-split'), /differ in settings|shard 1\/2 but/);
  });

  it('shards run with --steps auto (each calibrated on its own images)', async () => {
    const auto = tampered(dir('shard-0'), 'shard-0-auto', (r) => (r.results.settings.autoSteps = { rule: 'left', steps: 4, error: 0.1, maxError: 0.2, reference: 0.1, reached: true, images: 4, tried: [] }));
    refused(await merge(dir('m-auto'), auto, dir('shard-1'), dir('shard-2')), 2, dir('m-auto'), /--steps auto/, /--rule and --steps/);
  });

  it('shards run with --limit (no single run takes what they took)', async () => {
    const limited = tampered(dir('shard-0'), 'shard-0-limit', (r) => (r.options.limit = 2));
    refused(await merge(dir('m-limit'), limited, dir('shard-1'), dir('shard-2')), 2, dir('m-limit'), /run with --limit 2/, /run the shards without --limit/);
  });

  it('a report of another command (wrong command)', async () => {
    const other = tampered(dir('shard-0'), 'shard-0-eval', (r) => (r.command = 'eval'));
    refused(await merge(dir('m-eval'), other, dir('shard-1'), dir('shard-2')), 2, dir('m-eval'), /a eval report; merge combines the folders of trace-path --shard runs only/);
  });

  it('probe-layers reports, saying why and what to do', async () => {
    ok(await runVitpath(['probe-layers', MODEL, '--images', IMG_DIR, '--folds', '2', '--no-attribution', '--threads', '1', '--provider', 'cpu', '--quiet', '--out', dir('probe')]));
    refused(await merge(dir('m-probe'), dir('probe'), dir('shard-0')), 2, dir('m-probe'), /a probe-layers report/, /linear probes are fitted and cross-validated on all images together/, /Run probe-layers as one job/);
  }, 60_000);
});

describe('vitpath merge: usage', () => {
  it('an existing OUT is not overwritten without --force (exit 1); with --force it is', async () => {
    const r = await merge(dir('merged'), ...shards());
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/--force/);
    ok(await runVitpath(['merge', dir('merged'), ...shards(), '--force', '--quiet']));
    expect(fs.existsSync(path.join(dir('merged'), '.vitpath.lock'))).toBe(false);
  });

  it('OUT among the shard folders, or no shard folders: exit 1', async () => {
    refused(await runVitpath(['merge', dir('shard-0'), ...shards()]), 1, undefined, /also given as a shard/);
    refused(await runVitpath(['merge', dir('m-none')]), 1, dir('m-none'), /needs the shards' folders/);
    refused(await runVitpath(['merge']), 1, undefined, /vitpath merge OUT DIR/);
  });

  it('--help says what it checks and its exit codes', async () => {
    const r = ok(await runVitpath(['merge', '--help']));
    for (const m of [/OUT DIR/, /-o, --out/, /same model \(sha256\)/, /overlap/, /unfinished/, /probe-layers/, /report\.json last/, /Exit codes: 0 ok, 1 usage/, /docs\/cluster\.md/]) expect(r.stdout).toMatch(m);
  });
});
