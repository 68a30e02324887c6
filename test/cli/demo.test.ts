// End-to-end: `vitpath demo` as a user runs it (the built CLI): a CI-sized run whose report.json
// validates against the trace-path report schema and whose CSVs exist; reruns into its own folder
// just work, a folder of the user's needs --force; trace-path without a model points to demo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';
import { envelopeSchema } from '../../src/report/envelope.js';
import { traceResultsSchema } from '../../src/services/traceSchema.js';
import { parseCsv } from '../../src/report/csv.js';
import { sha256Hex } from '../../src/onnx/model.js';

const MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');

function vitpath(cwd: string, ...args: string[]): Promise<CliRun> {
  return runVitpath(args, { cwd });
}

let tmp = '';
beforeAll(async () => {
  // `npm test` builds first (pretest); build here only when the compiled CLI is missing.
  ensureBuilt('dist/cli/commands/demo.js');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-demo-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('vitpath demo', () => {
  it('--limit 10 --json: a valid trace-path report on the built-in model, CSVs beside it', async () => {
    const out = path.join(tmp, 'run');
    const r = await vitpath(tmp, 'demo', '--limit', '10', '--threads', '1', '--out', out, '--json', '-q');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = envelopeSchema(traceResultsSchema, 'trace-path').parse(JSON.parse(r.stdout));
    expect(report).toEqual(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')));
    expect(report.model.sha256).toBe(sha256Hex(fs.readFileSync(MODEL)));
    const res = report.results;
    expect(res.images).toHaveLength(10);
    expect(res.settings.steps).toBe(20);
    expect(res.summary.map((s) => s.method).sort()).toEqual(['activation', 'ig-layer', 'influence', 'path', 'random']);
    // labels come from the class folders; the model was trained to read these digits
    expect(res.images.every((im) => im.label !== null && String(im.label) === im.id.split('/')[0])).toBe(true);
    expect(res.accuracy).toBeGreaterThanOrEqual(0.8);
    for (const f of ['paths.csv', 'images.csv', 'classes.csv', 'similarity.csv']) {
      const rows = parseCsv(fs.readFileSync(path.join(out, f), 'utf8'));
      expect(rows.length, f).toBeGreaterThan(1);
    }
    const paths = parseCsv(fs.readFileSync(path.join(out, 'paths.csv'), 'utf8'));
    expect(paths.length - 1).toBe(10 * 5 * 4); // images x methods x layers
  }, 120_000);

  it('prints the summary table and where the reports are; reruns replace its own folder', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await vitpath(tmp, 'demo', '--limit', '2', '--threads', '1');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/trace-path: 2 images, 4 layers, 20 steps/);
      expect(r.stdout).toMatch(/path \(ours\)/);
      expect(r.stdout).toContain(`Reports: ${path.join('vitpath-out', 'demo')}/`);
    }
    expect(fs.existsSync(path.join(tmp, 'vitpath-out/demo/report.json'))).toBe(true);
  }, 120_000);

  it('keeps the usual rule for a folder of the user: existing reports need --force', async () => {
    const out = path.join(tmp, 'mine');
    expect((await vitpath(tmp, 'demo', '--limit', '1', '--threads', '1', '-q', '--out', out)).code).toBe(0);
    const again = await vitpath(tmp, 'demo', '--limit', '1', '--threads', '1', '-q', '--out', out);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect((await vitpath(tmp, 'demo', '--limit', '1', '--threads', '1', '-q', '--out', out, '--force')).code).toBe(0);
  }, 120_000);

  it('trace-path without a model says how to run the demo', async () => {
    const r = await vitpath(tmp, 'trace-path');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('vitpath demo');
  });
});
