// prune --sweep on the digits model: one point per (criterion, fraction), fraction 0 reproduces the
// original exactly (agreement 1, KL 0, same accuracy), the accuracy of a point equals the accuracy
// of the written model of a single run with the same settings, and the files are there.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPruneSweep } from '../../src/services/pruneSweep.js';
import { runPrune } from '../../src/services/prune.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
const DIGITS = path.join(ROOT, 'fixtures/digits');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-sweep-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('prune --sweep', () => {
  it('curves for two criteria', async () => {
    const common = { images: DIGITS, provider: 'cpu' as const, threads: 1, scoreImages: 12, seed: 3 };
    const { report } = await runPruneSweep(MODEL, { ...common, criteria: ['magnitude', 'taylor'], fractions: [0, 0.5, 0.9], out: path.join(tmp, 'sw') });
    const r = report.results;
    expect(r.points.length).toBe(6);
    for (const p of r.points.filter((x) => x.fraction === 0)) {
      expect(p.agreement).toBe(1);
      expect(p.meanKl).toBeLessThan(1e-9);
      expect(p.top1).toBe(r.original.top1);
      expect(p.removedFraction).toBe(0);
    }
    expect(r.points.find((p) => p.criterion === 'taylor' && p.fraction === 0.9)!.ffnAfter).toEqual([16, 16, 16, 16]);
    const single = await runPrune(MODEL, { ...common, criterion: 'taylor', ffn: 0.5, latency: false, out: path.join(tmp, 'one') });
    const p = r.points.find((x) => x.criterion === 'taylor' && x.fraction === 0.5)!;
    expect(single.report.results.evaluation.model.accuracy!.top1).toBe(p.top1);
    expect(single.report.results.evaluation.comparison!.agreement).toBe(p.agreement);
    for (const f of ['report.json', 'curves.csv', 'curves.svg', 'curves.vl.json']) expect(fs.existsSync(path.join(tmp, 'sw', f)), f).toBe(true);
    expect(fs.readFileSync(path.join(tmp, 'sw', 'curves.csv'), 'utf8').trim().split(/\r?\n/).length).toBe(7);
  }, 120_000);
});
