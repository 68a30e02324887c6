// End-to-end: trace-path's pictures and class-level outputs as a user gets them from the built CLI on the
// project-trained digits model: classes/similarity/ratios charts and --plot-images path diagrams as
// standalone SVG with their vega-lite specs beside them, marks matching the CSVs; classes.csv with the
// preferred path, how many images share it and the share with each layer's preferred neuron, checked
// against an independent recount of paths.csv; the class table in the summary; --search/--rule/--steps
// auto recorded in the report.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, ROOT, ensureBuilt, type CliRun } from '../helpers/cli.js';
import { parseCsv } from '../../src/report/csv.js';
import { checkXml, countMarks } from '../helpers/xml.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-trace-outputs-'));
const MODEL = 'fixtures/models/digits-vit.onnx';
const FAST = ['--images', 'fixtures/digits', '--steps', '4', '--threads', '1', '--provider', 'cpu', '--baselines', 'ig-layer,random'];
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The CLI as runVitpath runs it, but without blocking this worker's event loop while it runs. */
function runVitpath(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', CI: '1', VITPATH_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('trace-path pictures and class outputs', () => {
  const out = path.join(tmp, 'run');
  let stdout = '';
  let report: any;
  beforeAll(async () => {
    ensureBuilt();
    const r = await runVitpath(['trace-path', MODEL, ...FAST, '--shard', '0/2', '--search', 'effect', '--candidates', '4', '--plot-images', '2', '--out', out]);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
    stdout = r.stdout;
    report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  }, 120_000);

  const rows = (f: string) => parseCsv(fs.readFileSync(path.join(out, f), 'utf8'));
  const svg = (name: string) => fs.readFileSync(path.join(out, `${name}.svg`), 'utf8');

  it('writes every chart as SVG with its spec', () => {
    for (const name of ['classes', 'similarity', 'ratios', 'path-0', 'path-1']) {
      expect(checkXml(svg(name)).root).toBe('svg');
      const spec = JSON.parse(fs.readFileSync(path.join(out, `${name}.vl.json`), 'utf8'));
      expect(spec.$schema).toMatch(/vega-lite/);
    }
    expect(fs.existsSync(path.join(out, 'path-2.svg'))).toBe(false);
  });

  it('the charts carry the marks their data calls for', () => {
    const classes = rows('classes.csv');
    expect(countMarks(svg('classes'), 'rect mark')).toBe(classes.length - 1);
    expect(countMarks(svg('similarity'), 'rect mark')).toBe(100);
    expect(countMarks(svg('ratios'), 'box')).toBe(2 * report.results.summary.length);
    const first = report.results.images[0];
    expect(countMarks(svg('path-0'), 'circle')).toBe(first.layers.reduce((a: number, c: any) => a + c.top.length, 0));
    expect(countMarks(svg('path-0'), 'line mark')).toBe(1);
    for (const c of first.layers) expect(svg('path-0')).toContain(`>n${c.neuron}<`);
  });

  it('classes.csv: counts, shares, preferred neurons and shared paths agree with a recount of paths.csv', () => {
    const paths = rows('paths.csv').slice(1).filter((r) => r[1] === 'path');
    const images = rows('images.csv').slice(1).filter((r) => r[6] === 'path');
    const targetOf = new Map(images.map((r) => [r[0]!, Number(r[3])]));
    const pathOf = new Map<string, number[]>();
    for (const r of paths) {
      const p = pathOf.get(r[0]!) ?? [];
      p[Number(r[2])] = Number(r[3]);
      pathOf.set(r[0]!, p);
    }
    const classes = rows('classes.csv');
    expect(classes[0]).toEqual(['class', 'layer', 'neuron', 'count', 'share', 'preferred', 'class_images', 'path_shared']);
    for (let c = 0; c < 10; c++) {
      const mine = [...pathOf].filter(([id]) => targetOf.get(id) === c).map(([, p]) => p);
      expect(mine.length).toBe(2);
      const cRows = classes.slice(1).filter((r) => Number(r[0]) === c);
      // Recount: per layer, counts and the most frequent neuron (ties to the lowest index).
      const pref: number[] = [];
      for (let l = 0; l < 4; l++) {
        const cnt = new Map<number, number>();
        for (const p of mine) cnt.set(p[l]!, (cnt.get(p[l]!) ?? 0) + 1);
        const best = [...cnt].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
        pref.push(best[0]);
        for (const [j, n] of cnt) {
          const row = cRows.find((r) => Number(r[1]) === l && Number(r[2]) === j)!;
          expect(Number(row[3])).toBe(n);
          expect(Number(row[4])).toBeCloseTo(n / mine.length, 12);
          expect(Number(row[5])).toBe(j === best[0] ? 1 : 0);
        }
        expect(report.results.classes.preferredShare[c][l]).toBeCloseTo(best[1] / mine.length, 12);
      }
      const shared = mine.filter((p) => p.every((j, l) => j === pref[l])).length;
      expect(report.results.classes.preferred[c]).toEqual(pref);
      expect(report.results.classes.pathShared[c]).toBe(shared);
      for (const r of cRows) expect([Number(r[6]), Number(r[7])]).toEqual([mine.length, shared]);
    }
  });

  it('the summary has the class table; the report records the search and the rule', () => {
    expect(stdout).toMatch(/preferred path/);
    expect(stdout).toMatch(/L0:\d+ L1:\d+ L2:\d+ L3:\d+/);
    const s = report.results.settings;
    expect(s.search).toMatchObject({ strategy: 'effect', score: 'effect', candidates: 4 });
    expect([s.rule, s.steps, s.autoSteps]).toEqual(['left', 4, null]);
  });

  it('--steps auto chooses a rule and steps at most as wrong as left with 20 on the first images', async () => {
    const o = path.join(tmp, 'auto');
    const r = await runVitpath(['trace-path', MODEL, ...FAST, '--baselines', 'none', '--limit', '2', '--steps', 'auto', '--out', o, '--json', '--quiet']);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
    const s = JSON.parse(r.stdout).results.settings;
    expect(s.autoSteps.error).toBeLessThanOrEqual(s.autoSteps.reference);
    expect(s.autoSteps.maxError).toBe(s.autoSteps.reference);
    expect([s.rule, s.steps]).toEqual([s.autoSteps.rule, s.autoSteps.steps]);
    expect(s.steps).toBeLessThanOrEqual(20);
    const bad = await runVitpath(['trace-path', MODEL, ...FAST, '--max-error', '0.01', '--out', path.join(tmp, 'bad')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--max-error goes with --steps auto/);
  }, 120_000);
});
