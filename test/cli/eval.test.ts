// End-to-end: the built CLI (`node bin/vitpath.js eval ...`) as a user runs it. On fixtures: files and
// --json, a model against itself (agreement 100%, KL 0, exit 0 under --max-drop 0), a damaged copy
// (one FFN weight row zeroed) whose drop fails --max-drop with exit 5 after writing the reports,
// --min-accuracy, --schema without a model, no overwrite without --force, a torchvision export with
// stale batch-1 shapes at --batch 4 (its prepared copy runs). With ../shared: vit-mnist
// on the 10,000 MNIST test images gives 97.73% [97.42%, 98.00%].
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath } from '../helpers/cli.js';
import { parseCsv } from '../../src/report/csv.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { wilsonInterval } from '../../src/analysis/intervals.js';
import { withZeroedRow } from '../helpers/precision.js';

const DIGITS_VIT = 'fixtures/models/digits-vit.onnx';
const DIGITS = 'fixtures/digits';
const VIT_MNIST = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');
const MNIST_IMAGES = path.resolve(ROOT, '../shared/data/mnist/t10k-images-idx3-ubyte.gz');
const FAST = ['--provider', 'cpu', '--threads', '1', '--warmup', '1', '--repeat', '3', '--batch', '8'];

let tmp: string;
/** digits-vit with row 66 of block 0's fc2 weight (stored [FFN, width]: neuron 66's output row) zeroed. */
let damaged: string;
beforeAll(() => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-eval-cli-'));
  const m = loadModel(path.join(ROOT, DIGITS_VIT));
  const fc2 = locateVit(m.proto).blocks[0]!.fc2.weight;
  damaged = path.join(tmp, 'damaged.onnx');
  saveModel(withZeroedRow(m.proto, fc2, 66), damaged);
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8');

describe('vitpath eval on fixtures', () => {
  it('writes report.json, eval.csv, classes.csv and confusion.csv; --json prints the same report', async () => {
    const out = path.join(tmp, 'plain');
    const r = await runVitpath(['eval', DIGITS_VIT, '--images', DIGITS, ...FAST, '--out', out, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(JSON.parse(read(out, 'report.json'))).toEqual(report);
    expect(report).toMatchObject({ schemaVersion: 1, command: 'eval', model: { path: DIGITS_VIT, layout: null }, runtime: { used: 'cpu', threads: 1 } });
    const a = report.results.model.accuracy;
    expect(a.labelled).toBe(40);
    expect(a.top1Interval).toEqual(wilsonInterval(a.correct, 40));
    const metrics = parseCsv(read(out, 'eval.csv'));
    expect(metrics[0]).toEqual(['model', 'path', 'metric', 'value', 'ci_low', 'ci_high']);
    expect(metrics.find((x) => x[2] === 'top1')!.slice(3).map(Number)).toEqual([a.top1, a.top1Interval.low, a.top1Interval.high]);
    expect(metrics.find((x) => x[2] === 'throughput_batch')![3]).toBe('8');
    const classes = parseCsv(read(out, 'classes.csv'));
    expect(classes).toHaveLength(11);
    expect(classes[1]).toEqual(['model', '0', '0', '4', String(a.perClass[0].correct), String(a.perClass[0].accuracy)]);
    const confusion = parseCsv(read(out, 'confusion.csv'));
    expect(confusion[0]).toEqual(['model', 'true', 'pred', 'count']);
    expect(confusion.slice(1).reduce((s, x) => s + Number(x[3]), 0)).toBe(40);
    // The summary went to stderr (stdout holds the JSON).
    expect(r.stderr).toMatch(/top-1 \[95% CI\]/);
  });

  it('a model against itself: agreement 100%, KL 0, exit 0 under --max-drop 0', async () => {
    const out = path.join(tmp, 'self');
    const r = await runVitpath(['eval', DIGITS_VIT, '--compare', DIGITS_VIT, '--images', DIGITS, ...FAST, '--no-latency', '--max-drop', '0', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/agreement 100\.00% \(40\/40\), mean KL\(ref\|\|model\) 0, max \|Δp\| 0/);
    expect(r.stdout).toMatch(/check max-drop 0: passed/);
    const c = JSON.parse(read(out, 'report.json')).results.comparison;
    expect(c).toMatchObject({ agreement: 1, meanKl: 0, maxAbsProbDiff: 0, accuracyDifference: { difference: 0, referenceOnly: 0, modelOnly: 0, mcnemarP: 1 } });
  });

  it('a copy with one FFN weight row zeroed shows its drop and exits 5 under a tight --max-drop, after writing the reports', async () => {
    const out = path.join(tmp, 'damaged');
    const r = await runVitpath(['eval', damaged, '--compare', DIGITS_VIT, '--images', DIGITS, ...FAST, '--no-latency', '--max-drop', '1', '--out', out]);
    const report = JSON.parse(read(out, 'report.json'));
    const res = report.results;
    const d = res.comparison.accuracyDifference;
    // The zeroed row costs one of the 40 digits: 2.5 points.
    expect(d.referenceOnly - d.modelOnly).toBe(1);
    expect(d.difference).toBeCloseTo(-0.025, 15);
    expect(d.difference).toBeCloseTo(res.model.accuracy.top1 - res.reference.accuracy.top1, 15);
    expect(res.comparison.agreement).toBeLessThan(1);
    expect(res.comparison.meanKl).toBeGreaterThan(0);
    expect(res.checks).toEqual([{ check: 'max-drop', threshold: 1, value: expect.closeTo(2.5, 12), passed: false }]);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/check max-drop 1: FAILED \(drop 2\.50 points\)/);
    expect(r.stderr).toMatch(/vitpath: error: .*damaged\.onnx: top-1 accuracy dropped 2\.50 points against the reference, more than --max-drop 1 \(reports in /);
    for (const f of ['eval.csv', 'classes.csv', 'confusion.csv']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    // A looser gate passes.
    const ok = await runVitpath(['eval', damaged, '--compare', DIGITS_VIT, '--images', DIGITS, ...FAST, '--no-latency', '--max-drop', '2.5', '--out', path.join(tmp, 'damaged-ok')]);
    expect(ok.code).toBe(0);
  });

  it('--min-accuracy: exit 5 below it, 0 at or above it', async () => {
    const acc = (args: string[]) => runVitpath(['eval', damaged, '--images', DIGITS, ...FAST, '--no-latency', '--quiet', '--out', path.join(tmp, `min-${args.join('')}`), ...args]);
    const pass = await acc(['--min-accuracy', '97.5%']);
    expect(pass.code).toBe(0);
    const fail = await acc(['--min-accuracy', '97.6']);
    expect(fail.code).toBe(5);
    expect(fail.stderr).toMatch(/top-1 accuracy 97\.50% is below --min-accuracy 97\.6/);
    expect((await acc(['--min-accuracy', '101'])).code).toBe(1);
  });

  it('--schema prints the JSON Schema without a model', async () => {
    const r = await runVitpath(['eval', '--schema']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.title).toBe('vitpath eval report (schemaVersion 1)');
    expect(Object.keys(s.properties.results.properties)).toEqual(['images', 'classes', 'classNames', 'model', 'reference', 'comparison', 'checks']);
  });

  it('refuses to overwrite without --force; a missing model is exit 1', async () => {
    const out = path.join(tmp, 'again');
    const args = ['eval', DIGITS_VIT, '--images', DIGITS, ...FAST, '--no-latency', '--quiet', '--out', out];
    expect((await runVitpath(args)).code).toBe(0);
    const again = await runVitpath(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    const none = await runVitpath(['eval', '--images', DIGITS]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/eval needs a model/);
  });

  it('a torchvision export with stale batch-1 shapes evaluates at --batch 4 (exit 0, not 4), on the prepared copy, with a notice', async () => {
    const out = path.join(tmp, 'stale');
    const file = 'fixtures/exports/torchvision/tv-vit-op14-stale.onnx';
    const r = await runVitpath(['eval', file, '--images', 'fixtures/images', '--labels', 'fixtures/images/labels.csv', ...FAST, '--batch', '4', '--no-latency', '--out', out, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`eval: ${file}: ONNX Runtime fails on the file as it is above batch 1`);
    const report = JSON.parse(r.stdout);
    expect(report.results.model.preparation).toMatchObject({ batch: 'dynamic', ran: 'prepared' });
    expect(report.results.model.accuracy.labelled).toBe(8);
    expect(JSON.parse(read(out, 'report.json'))).toEqual(report);
  });

  it('the program help documents exit code 5', async () => {
    expect((await runVitpath(['--help'])).stdout).toMatch(/5 a check the user asked for failed/);
    expect((await runVitpath(['eval', '--help'])).stdout).toMatch(/5 a check failed \(--min-accuracy, --max-drop/);
  });
});

describe.skipIf(!fs.existsSync(VIT_MNIST) || !fs.existsSync(MNIST_IMAGES))('vitpath eval on vit-mnist and the MNIST test set (../shared)', () => {
  it('gives 97.73% [97.42%, 98.00%] over the 10,000 test images; against itself agreement 100%, KL 0, exit 0 under --max-drop 0', async () => {
    const out = path.join(tmp, 'vit-mnist');
    const r = await runVitpath(['eval', VIT_MNIST, '--compare', VIT_MNIST, '--images', MNIST_IMAGES, '--provider', 'cpu', '--no-latency', '--batch', '500', '--max-drop', '0', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/top-1 \[95% CI\]\s+│ 97\.73% \[97\.42%, 98\.00%\]/);
    const res = JSON.parse(read(out, 'report.json')).results;
    expect([res.model.accuracy.correct, res.model.accuracy.labelled]).toEqual([9773, 10000]);
    expect(res.model.accuracy.top1Interval).toEqual(wilsonInterval(9773, 10000));
    expect(res.comparison).toMatchObject({ agreed: 10000, agreement: 1, meanKl: 0, maxAbsProbDiff: 0 });
    expect(res.checks).toEqual([{ check: 'max-drop', threshold: 0, value: 0, passed: true }]);
  }, 180_000);

  it('a copy with row 15 of block 0\'s fc1 weight zeroed loses 4 of the first 1,000 digits and exits 5 under --max-drop 0.3', async () => {
    const m = loadModel(VIT_MNIST);
    const file = path.join(tmp, 'vit-mnist-damaged.onnx');
    saveModel(withZeroedRow(m.proto, locateVit(m.proto).blocks[0]!.fc1.weight, 15), file);
    const out = path.join(tmp, 'vit-mnist-damaged');
    const r = await runVitpath(['eval', file, '--compare', VIT_MNIST, '--images', MNIST_IMAGES, '--limit', '1000', '--provider', 'cpu', '--no-latency', '--batch', '500', '--max-drop', '0.3', '--out', out]);
    expect(r.code).toBe(5);
    const res = JSON.parse(read(out, 'report.json')).results;
    expect([res.model.accuracy.correct, res.reference.accuracy.correct]).toEqual([974, 978]);
    expect(res.comparison.accuracyDifference.difference).toBeCloseTo(-0.004, 15);
    expect(r.stderr).toMatch(/dropped 0\.40 points against the reference, more than --max-drop 0\.3/);
  }, 180_000);
});
