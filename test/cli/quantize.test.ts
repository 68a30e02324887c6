// End-to-end: the built CLI (`node bin/vitpath.js quantize ...`) on the digits model: model.onnx,
// report.json and layers.csv; every block linear int8 and fused by ONNX Runtime; calibration and
// evaluation images disjoint; the written model passes vitpath eval --compare; --json; --save;
// no overwrite without --force; trace-path refuses the quantized model with exit 3.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runVitpath } from '../helpers/cli.js';
import { parseCsv } from '../../src/report/csv.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { synthVitModel, synthWeights } from '../../src/vit/synth.js';
import { modelFacts } from '../../src/onnx/facts.js';
import { envelopeSchema } from '../../src/report/envelope.js';
import { quantizeResultsSchema } from '../../src/services/quantizeSchema.js';

const DIGITS_VIT = 'fixtures/models/digits-vit.onnx';
const DIGITS = 'fixtures/digits';
const FAST = ['--provider', 'cpu', '--threads', '1', '--warmup', '1', '--repeat', '2', '--batch', '8'];

let tmp: string;
beforeAll(() => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-quantize-cli-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('vitpath quantize on the digits model', () => {
  it('writes the int8 model and its reports; ONNX Runtime fuses every block linear; eval --compare passes', async () => {
    const out = path.join(tmp, 'int8');
    const r = await runVitpath(['quantize', DIGITS_VIT, '--images', DIGITS, '--calib-images', '20', '--out', out, '--json', ...FAST]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['layers.csv', 'model.onnx', 'report.json']);
    const report = JSON.parse(r.stdout);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')).results.output).toEqual(report.results.output);
    // The envelope names the written model (path, sha256, size) beside the input model.
    expect(report.outputModel).toMatchObject({ sha256: report.results.output.sha256, sizeBytes: report.results.output.bytes });
    const res = report.results;
    expect(res.mode).toBe('int8');
    expect(res.layers.filter((l: { precision: string }) => l.precision === 'int8').length).toBe(24);
    expect(res.layers.find((l: { name: string }) => l.name === 'head').precision).toBe('float32');
    expect(res.fused).toMatchObject({ quantizedLayers: 24, int8Kernels: 24 });
    // 20 calibration images, the other 29 evaluated.
    const total = fs.readdirSync(DIGITS).flatMap((d) => fs.readdirSync(path.join(DIGITS, d))).length;
    expect(res.calibration.indices.length).toBe(20);
    expect(res.evaluation.images.count).toBe(total - 20);
    expect(res.evaluation.model.facts.precision).toBe('int8-qdq');
    expect(res.evaluation.reference.facts.precision).toBe('float32');
    // Every weight still counted once (int8 weights and int32 biases), and the file shrinks.
    expect(res.evaluation.model.facts.parameters).toBe(res.evaluation.reference.facts.parameters);
    expect(res.output.bytes).toBeLessThan(0.5 * res.evaluation.reference.facts.bytes.total);
    expect(res.evaluation.comparison.agreement).toBeGreaterThanOrEqual(0.95);
    const rows = parseCsv(fs.readFileSync(path.join(out, 'layers.csv'), 'utf8'));
    expect(rows.length).toBe(1 + 25); // header + one row per linear
    const head = rows[0]!;
    const first = Object.fromEntries(head.map((h, i) => [h, rows[1]![i]]));
    expect(first).toMatchObject({ name: 'blocks.0.attn.q', precision: 'int8', clipped_fraction: '0' });
    const m = loadModel(path.join(out, 'model.onnx'));
    expect(modelFacts(m.proto).ops.QuantizeLinear).toBeGreaterThan(0);

    const ev = await runVitpath(['eval', path.join(out, 'model.onnx'), '--images', DIGITS, '--compare', DIGITS_VIT, '--max-drop', '5', '--no-latency', '--out', path.join(tmp, 'eval'), ...FAST]);
    expect(ev.code).toBe(0);

    const tp = await runVitpath(['trace-path', path.join(out, 'model.onnx'), '--images', DIGITS, '--limit', '1', '--out', path.join(tmp, 'tp')]);
    expect(tp.code).toBe(3);
    expect(tp.stderr).toContain('is a quantized model (int8-qdq); trace-path needs the float model');
    expect(fs.existsSync(path.join(tmp, 'tp', 'report.json'))).toBe(false);
    const ins = await runVitpath(['inspect', path.join(out, 'model.onnx')]);
    expect(ins.code).toBe(3);
    expect(ins.stderr).toContain('is a quantized model (int8-qdq); inspect needs the float model');
  }, 180_000);

  it('--save writes the model elsewhere; an existing output needs --force; an unknown layer is a usage error', async () => {
    const out = path.join(tmp, 'save');
    const save = path.join(tmp, 'digits-int8.onnx');
    const args = ['quantize', DIGITS_VIT, '--images', DIGITS, '--calib-images', '10', '--exclude', 'fc2', '--no-eval', '--out', out, '--save', save, ...FAST];
    const r = await runVitpath(args);
    expect(r.code).toBe(0);
    expect(fs.existsSync(save)).toBe(true);
    expect(fs.readdirSync(out).sort()).toEqual(['layers.csv', 'report.json']);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.results.evaluation).toBeNull();
    expect(report.results.layers.filter((l: { precision: string }) => l.precision === 'int8').length).toBe(20);
    const again = await runVitpath(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect((await runVitpath([...args, '--force'])).code).toBe(0);
    const bad = await runVitpath(['quantize', DIGITS_VIT, '--images', DIGITS, '--include', 'blocks.9', '--out', path.join(tmp, 'bad'), ...FAST]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--include blocks.9 matches no linear layer');
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
    const old = await runVitpath(['quantize', 'fixtures/models/relu-bn-opset9.onnx', '--images', DIGITS, '--out', path.join(tmp, 'opset9'), ...FAST]);
    expect(old.code).toBe(3);
    expect(old.stderr).toContain('opset 9; int8 quantization needs opset 13 or newer');
    expect(fs.existsSync(path.join(tmp, 'opset9'))).toBe(false);
  }, 180_000);

  it('--mode dynamic: no calibration, every image evaluated, every block linear fused', async () => {
    const out = path.join(tmp, 'dynamic');
    const r = await runVitpath(['quantize', DIGITS_VIT, '--images', DIGITS, '--mode', 'dynamic', '--no-latency', '--out', out, '--json', ...FAST]);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout).results;
    expect(res.calibration).toBeNull();
    const total = fs.readdirSync(DIGITS).flatMap((d) => fs.readdirSync(path.join(DIGITS, d))).length;
    expect(res.evaluation.images.count).toBe(total);
    expect(res.fused).toMatchObject({ quantizedLayers: 24, int8Kernels: 24 });
    expect(res.evaluation.model.facts.precision).toBe('int8-qoperator');
    // Weight scales are quantization parameters, not weights: the same parameter count as float.
    expect(res.evaluation.model.facts.parameters).toBe(res.evaluation.reference.facts.parameters);
    expect(res.evaluation.comparison.agreement).toBeGreaterThanOrEqual(0.95);
  }, 120_000);

  it('--mode fp16: float16 model, float32 islands, overflow check on the calibration images', async () => {
    const out = path.join(tmp, 'fp16');
    const r = await runVitpath(['quantize', DIGITS_VIT, '--images', DIGITS, '--mode', 'fp16', '--calib-images', '10', '--no-latency', '--out', out, '--json', ...FAST]);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout).results;
    expect(res.float16).toMatchObject({ clampedWeights: 0, overflow: false });
    expect(res.float16.maxAbsActivation).toBeGreaterThan(1);
    expect(res.fused).toBeNull();
    expect(res.evaluation.model.facts.precision).toBe('float16');
    expect(res.evaluation.comparison.agreement).toBe(1);
    expect(res.evaluation.comparison.maxAbsProbDiff).toBeLessThan(0.01);
    expect(res.output.bytes).toBeLessThan(0.75 * res.evaluation.reference.facts.bytes.total);
    expect(r.stderr).toContain('float16 is a GPU format');

    // A planted fc1 weight of 1e6: clamped to 65504 and counted, and its activation overflows float16.
    const w = synthWeights({ depth: 1, seed: 2 });
    const fc1 = w['block.0.fc1.weight']!.slice();
    fc1.fill(1e6, 0, 64);
    const planted = path.join(tmp, 'planted.onnx');
    saveModel(synthVitModel({ depth: 1, seed: 2, weights: { 'block.0.fc1.weight': fc1 } }), planted);
    const p = await runVitpath(['quantize', planted, '--images', DIGITS, '--mode', 'fp16', '--calib-images', '10', '--no-eval', '--out', path.join(tmp, 'planted'), '--json', ...FAST]);
    expect(p.code).toBe(0);
    const pr = JSON.parse(p.stdout).results;
    expect(pr.float16.clampedWeights).toBe(64);
    expect(pr.float16.overflow).toBe(true);
    expect(p.stderr).toContain('overflows float16');
  }, 120_000);

  it('--max-drop: per-layer sensitivity on validation images, the most sensitive kept in float until the budget holds', async () => {
    const out = path.join(tmp, 'mixed');
    // A harsh calibration (percentile 60 clips 40% of every activation) so that layers must go back to float.
    const r = await runVitpath(['quantize', DIGITS_VIT, '--images', DIGITS, '--calibration', 'percentile', '--percentile', '60', '--calib-images', '10', '--val-images', '15', '--max-drop', '0', '--no-latency', '--out', out, '--json', ...FAST]);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    const res = report.results;
    const m = res.mixedPrecision;
    // Three disjoint splits.
    const val = new Set<number>(m.validation.indices);
    expect(m.validation.images).toBe(15);
    expect(res.calibration.indices.some((i: number) => val.has(i))).toBe(false);
    const total = fs.readdirSync(DIGITS).flatMap((d) => fs.readdirSync(path.join(DIGITS, d))).length;
    expect(res.evaluation.images.count).toBe(total - 25);
    // Every in-scope layer has a sensitivity; the kept layers are the most sensitive ones, in order.
    expect(m.ranking.length).toBe(24);
    for (const l of res.layers.filter((x: { name: string }) => x.name !== 'head')) expect(l.sensitivity).not.toBeNull();
    expect(m.steps[0].drop).toBeGreaterThan(0);
    expect(m.kept.length).toBeGreaterThan(0);
    expect(m.kept).toEqual(m.ranking.slice(0, m.kept.length));
    expect(m.met).toBe(true);
    expect(m.steps[m.steps.length - 1].drop).toBeLessThanOrEqual(0);
    for (const name of m.kept) expect(res.layers.find((l: { name: string }) => l.name === name).precision).toBe('float32');
    expect(res.fused.quantizedLayers).toBe(24 - m.kept.length);
    expect(res.fused.int8Kernels).toBe(24 - m.kept.length);
    // The evaluation images check the budget again: exit 5 exactly when that check failed.
    const check = res.evaluation.checks.find((c: { check: string }) => c.check === 'max-drop');
    expect(r.code).toBe(check.passed ? 0 : 5);
  }, 180_000);

  it('vitpath demo quantize: the digits model in int8, a schema-valid report, every block linear fused', async () => {
    const out = path.join(tmp, 'demo');
    const r = await runVitpath(['demo', 'quantize', '--out', out, '--json', '-q', '--provider', 'cpu', '--threads', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const report = envelopeSchema(quantizeResultsSchema, 'quantize').parse(JSON.parse(r.stdout));
    expect(report.results.fused).toMatchObject({ quantizedLayers: 24, int8Kernels: 24 });
    expect(report.results.calibration!.images).toBe(20);
    expect(fs.readdirSync(out).sort()).toEqual(['layers.csv', 'model.onnx', 'report.json']);
  }, 120_000);
});
