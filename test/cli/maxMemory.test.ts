// --max-memory from the command line: the plan is printed and kept in report.json (runtime.memory),
// malformed sizes and budgets nothing fits are usage errors (exit 1) that write nothing, and
// probe-layers takes the option too.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath } from '../helpers/cli.js';

const MODEL = path.join(ROOT, 'fixtures/models/erf-ln-matmul.onnx');
const IMAGES = path.join(ROOT, 'fixtures/images');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-maxmem-'));
const TRACE = ['trace-path', MODEL, '--images', IMAGES, '--labels', path.join(IMAGES, 'labels.csv'), '--limit', '2', '--steps', '2', '--baselines', 'none', '--threads', '2', '--provider', 'cpu'];

beforeAll(() => ensureBuilt());

describe('--max-memory', () => {
  it('trace-path prints the plan and records it in report.json', async () => {
    const out = path.join(tmp, 'ok');
    const r = await runVitpath([...TRACE, '--max-memory', '2GB', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/memory plan for --max-memory 1\.9 GiB: 2 sessions x 1 thread, \d+ samples? per run; estimated peak \d+ MiB/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.runtime.memory).toMatchObject({ budget: 2e9, sessions: 2, threads: 1 });
    expect(report.runtime.memory.estimate).toBeLessThan(2e9);
    expect(report.options.maxMemory).toBe(2e9);
  }, 120_000);

  it('a budget below what the model needs is exit 1 naming the need, with nothing written', async () => {
    const out = path.join(tmp, 'small');
    const r = await runVitpath([...TRACE, '--max-memory', '300MB', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--max-memory 286 MiB is too small for this model: tracing it needs about \d+ MiB/);
    expect(fs.existsSync(path.join(out, 'report.json'))).toBe(false);
  }, 120_000);

  it('a malformed size is a usage error before anything runs', async () => {
    const r = await runVitpath([...TRACE, '--max-memory', '6 gigs']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--max-memory takes a size like 6GB, 6GiB or 6000MB/);
  });

  it('probe-layers plans its forward batch and attribution runs', async () => {
    const out = path.join(tmp, 'probe');
    const r = await runVitpath(['probe-layers', MODEL, '--images', IMAGES, '--labels', path.join(IMAGES, 'labels.csv'), '--folds', '2', '--steps', '2', '--threads', '1', '--max-memory', '1GiB', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/probe-layers: memory plan for --max-memory 1\.0 GiB: \d+ images? per forward run, \d+ per attribution run/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.runtime.memory.budget).toBe(2 ** 30);
  }, 120_000);
});
