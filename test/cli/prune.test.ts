// `vitpath prune` as a user runs it: the built CLI on the digits model, --json on stdout with the
// summary on stderr, the files in --out, --schema, and the exit codes of bad input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runVitpath } from '../helpers/cli.js';

let tmp: string;
beforeAll(() => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-prune-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('vitpath prune (CLI)', () => {
  it('ig criterion: JSON report on stdout, summary on stderr, files in --out', async () => {
    const out = path.join(tmp, 'run');
    const r = await runVitpath(['prune', 'fixtures/models/digits-vit.onnx', '--images', 'fixtures/digits', '--criterion', 'ig', '--steps', '4', '--ffn', '0.25', '--score-images', '10', '--provider', 'cpu', '--threads', '1', '--repeat', '2', '--warmup', '1', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.command).toBe('prune');
    expect(rep.results.criterion).toBe('ig');
    expect(rep.results.blocks.map((b: { ffnAfter: number }) => b.ffnAfter)).toEqual([96, 96, 96, 96]);
    expect(rep.results.evaluation.reference.facts.parameters).toBe(rep.results.parameters.before);
    expect(rep.results.evaluation.model.facts.parameters).toBe(rep.results.parameters.after);
    expect(rep.results.evaluation.model.latency.batch1.runs).toBe(2);
    expect(r.stderr).toMatch(/25\.00% of FFN neurons removed/);
    for (const f of ['model.onnx', 'report.json', 'removed.csv', 'blocks.csv', 'eval.csv']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    // inspect reads the pruned model and shows the new widths.
    const ins = await runVitpath(['inspect', path.join(out, 'model.onnx'), '--json']);
    expect(ins.code, ins.stderr).toBe(0);
    expect(JSON.parse(ins.stdout).model.layout.blocks.map((b: { fc1: { outFeatures: number } }) => b.fc1.outFeatures)).toEqual([96, 96, 96, 96]);
  }, 120_000);

  it('--schema prints the report schema', async () => {
    const r = await runVitpath(['prune', '--schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).properties.results.properties.criterion).toBeTruthy();
  });

  it('exit codes: 1 without --images or with a bad fraction, 2 for a missing model', async () => {
    expect((await runVitpath(['prune', 'fixtures/models/digits-vit.onnx'])).code).toBe(1);
    expect((await runVitpath(['prune', 'fixtures/models/digits-vit.onnx', '--images', 'fixtures/digits', '--ffn', '1'])).code).toBe(1);
    const r = await runVitpath(['prune', path.join(tmp, 'nope.onnx'), '--images', 'fixtures/digits', '--out', path.join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope\.onnx/);
  });
});
