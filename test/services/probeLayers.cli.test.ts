// End-to-end: the built CLI (`node bin/vitpath.js probe-layers ...`) on fixtures and, when
// ../shared is present, on vit-mnist with MNIST test images: files written, the JSON report on
// stdout matches the files and its schema, no overwrite without --force, same report on rerun,
// images without labels are exit 2.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';
import { parseCsv } from '../../src/report/csv.js';

const VIT_MNIST = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');
const MNIST = path.resolve(ROOT, '../shared/data/mnist');


function vitpath(...args: string[]): Promise<CliRun> {
  return runVitpath(args);
}

function withoutTimings(report: Record<string, unknown>): unknown {
  const { timings: _t, ...rest } = report;
  return rest;
}

let tmp: string;
beforeAll(async () => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-probe-layers-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

const FIXTURE_ARGS = ['--images', 'fixtures/images', '--labels', 'fixtures/images/labels.csv', '--folds', '2', '--steps', '2', '--threads', '1', '--provider', 'cpu'];

describe('vitpath probe-layers on a fixture', () => {
  it('writes report.json, layers.csv and layers.svg; --json prints the same report', async () => {
    const out = path.join(tmp, 'fixture');
    const r = await vitpath('probe-layers', 'fixtures/models/erf-ln-matmul.onnx', ...FIXTURE_ARGS, '--out', out, '--json');
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.schemaVersion).toBe(1);
    expect(report.command).toBe('probe-layers');
    expect(report.runtime.used).toBe('cpu');
    expect(report.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    const res = report.results;
    expect(res.images.count).toBe(8);
    expect(res.layers).toHaveLength(2);
    // The lens at the last block is the model's own output.
    expect(res.layers[1].logitLens.accuracy).toBe(res.model.accuracy);
    expect(res.layers[1].logitLens.meanKl).toBeLessThan(1e-9);
    expect(res.neuronSettings.igSteps).toBe(2);
    expect(typeof res.layers[0].neurons.igMass).toBe('number');
    // Files.
    const onDisk = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(onDisk).toEqual(report);
    const csv = parseCsv(fs.readFileSync(path.join(out, 'layers.csv'), 'utf8'));
    expect(csv[0]!.slice(0, 3)).toEqual(['layer', 'family', 'accuracy']);
    expect(csv).toHaveLength(1 + 2 * 9);
    const lensRow = csv.find((row) => row[0] === '1' && row[1] === 'logit_lens')!;
    expect(Number(lensRow[2])).toBe(res.layers[1].logitLens.accuracy);
    const svg = fs.readFileSync(path.join(out, 'layers.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('MLP ablation drop');
    // Summary on stderr with --json, progress there too.
    expect(r.stderr).toMatch(/│ block\s+│ lens acc/);
  });

  it('refuses to overwrite without --force, and reruns to the same report with it', async () => {
    const out = path.join(tmp, 'rerun');
    const args = ['probe-layers', 'fixtures/models/mean-pool.onnx', ...FIXTURE_ARGS, '--no-attribution', '--out', out, '--quiet'];
    const first = await vitpath(...args);
    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/token mean/);
    const a = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(a.results.lensInput).toBe('tokens');
    expect(a.results.layers[0].neurons.igMass).toBeNull();
    const again = await vitpath(...args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    const forced = await vitpath(...args, '--force');
    expect(forced.code).toBe(0);
    const b = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(withoutTimings(b)).toEqual(withoutTimings(a));
  });

  it('images without labels are exit 2 with one line naming the folder and the fix', async () => {
    const r = await vitpath('probe-layers', 'fixtures/models/erf-ln-matmul.onnx', '--images', 'fixtures/images', '--out', path.join(tmp, 'nolabels'), '--quiet');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vitpath: error: fixtures\/images carries no labels.*--labels/);
    expect(fs.existsSync(path.join(tmp, 'nolabels'))).toBe(false); // no folder for a run that never started
  });

  it('--token cls on a mean-pooled model is a usage error (exit 1) before anything is written', async () => {
    const out = path.join(tmp, 'badtoken');
    const r = await vitpath('probe-layers', 'fixtures/models/mean-pool.onnx', ...FIXTURE_ARGS, '--token', 'cls', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no class token.*'mean'/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--schema prints the JSON Schema of the report', async () => {
    const r = await vitpath('probe-layers', '--schema', 'x.onnx');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.title).toMatch(/probe-layers/);
    expect(JSON.stringify(s)).toContain('logitLens');
  });
});

describe.skipIf(!fs.existsSync(VIT_MNIST) || !fs.existsSync(MNIST))('vitpath probe-layers on vit-mnist', () => {
  it('100 MNIST test images: accurate model, lens = output at the last block, readable class at depth', async () => {
    const out = path.join(tmp, 'mnist');
    const r = await vitpath('probe-layers', VIT_MNIST, '--images', MNIST, '--limit', '100', '--folds', '4', '--steps', '4', '--threads', '1', '--provider', 'cpu', '--out', out, '--json', '--quiet');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout).results;
    expect(res.images.count).toBe(100);
    expect(res.model.accuracy).toBeGreaterThan(0.9);
    const L = res.layers;
    expect(L).toHaveLength(4);
    expect(L[3].logitLens.accuracy).toBe(res.model.accuracy);
    expect(L[3].logitLens.meanKl).toBeLessThan(1e-9);
    expect(L[3].probe.accuracy).toBeGreaterThan(0.7);
    // The class becomes more readable with depth through the model's own head.
    expect(L[3].logitLens.meanTrueProb).toBeGreaterThan(L[0].logitLens.meanTrueProb);
    for (const x of L) {
      expect(x.redundancy.block).toBeGreaterThan(0);
      expect(x.neurons.completenessGap).toBeLessThan(0.05);
    }
  });
});
