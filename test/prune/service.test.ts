// The prune service end to end on the digits model and its 40 digits: removed.csv agrees with the
// written model (which equals the original with exactly those neurons masked), magnitude scores
// match norms computed here from the weights, scoring and evaluation images are disjoint and cover
// the input, --force rules, --from-trace checks, and fine-tuning lowers the KL to the original.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPrune, splitItems } from '../../src/services/prune.js';
import { tracePath } from '../../src/services/tracePath.js';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { Graph } from '../../src/onnx/graph.js';
import { toNumbers } from '../../src/onnx/tensor.js';
import { locateVit } from '../../src/vit/locate.js';
import { maskNeurons } from '../../src/prune/mask.js';
import { createSession } from '../../src/runtime/session.js';
import { discoverImages } from '../../src/data/sources.js';
import { loadBatch } from '../../src/data/dataset.js';
import { inferPreprocess } from '../../src/data/preprocess.js';
import { klDivergenceFromLogits } from '../../src/analysis/stats.js';
import { ExitCode, VitpathError } from '../../src/errors.js';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
const DIGITS = path.join(ROOT, 'fixtures/digits');
let tmp: string;
const quiet = { provider: 'cpu' as const, threads: 1, latency: false, scoreImages: 16 };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-prune-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function csv(file: string): Record<string, string>[] {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const cols = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i]!, v])));
}

async function logitsOf(model: ModelProto, x: Float32Array, n: number): Promise<Float32Array> {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    const input = model.graph!.input[0]!.name;
    const out = await s.run({ [input]: { data: x, dims: [n, 1, 28, 28] } });
    return Float32Array.from(Object.values(out)[0]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

async function digits(n: number): Promise<Float32Array> {
  const src = discoverImages(DIGITS);
  return loadBatch(src.items.slice(0, n), inferPreprocess([1, 1, 28, 28]));
}

describe('splitItems', () => {
  it('is seeded, disjoint, at most half for scoring, and keeps source order', () => {
    const items = Array.from({ length: 11 }, (_, i) => i);
    const a = splitItems(items, 100, 3);
    expect(a.score.length).toBe(5);
    expect([...a.score, ...a.evaluate].sort((x, y) => x - y)).toEqual(items);
    expect(a.score).toEqual([...a.score].sort((x, y) => x - y));
    expect(splitItems(items, 100, 3)).toEqual(a);
    expect(splitItems(items, 100, 4)).not.toEqual(a);
    expect(splitItems(items, 2, 3).score.length).toBe(2);
  });
});

describe('prune service on the digits model', () => {
  it('magnitude: removed.csv scores are ‖fc1 column‖·‖fc2 row‖ and the model equals the masked original', async () => {
    const out = path.join(tmp, 'mag');
    const { report } = await runPrune(MODEL, { images: DIGITS, criterion: 'magnitude', ffn: 0.4, roundTo: 8, out, ...quiet });
    const r = report.results;
    expect(r.blocks.map((b) => b.ffnAfter)).toEqual([80, 80, 80, 80]); // 128 - round(51.2) = 77 -> 80
    expect(r.ffn).toEqual({ before: 512, after: 320, removedFraction: 192 / 512 });
    // Weight-only criteria split the images too, so every criterion is evaluated on the same images.
    expect(r.scoring.images).toBe(0);
    expect(r.evaluation.images.count).toBe(24);
    const removed = csv(path.join(out, 'removed.csv'));
    expect(removed.length).toBe(192);
    // Scores recomputed from the stored weights.
    const orig = loadModel(MODEL).proto;
    const layout = locateVit(orig);
    const g = new Graph(orig);
    for (const row of removed.slice(0, 20)) {
      const blk = layout.blocks[Number(row.block)]!;
      const j = Number(row.index);
      const w1 = toNumbers(g.constantValue(blk.fc1.weight)!);
      const w2 = toNumbers(g.constantValue(blk.fc2.weight)!);
      const F = blk.fc1.outFeatures;
      let a = 0;
      for (let i = 0; i < blk.fc1.inFeatures; i++) a += w1[i * F + j]! ** 2;
      let b = 0;
      for (let k = 0; k < blk.fc2.outFeatures; k++) b += w2[j * blk.fc2.outFeatures + k]! ** 2;
      expect(Number(row.score)).toBeCloseTo(Math.sqrt(a) * Math.sqrt(b), 5);
    }
    // The written model = the original with exactly the removed.csv neurons masked.
    const masks = new Map(layout.blocks.map((b) => [b.index, new Float32Array(b.fc1.outFeatures).fill(1)] as const));
    for (const row of removed) masks.get(Number(row.block))![Number(row.index)] = 0;
    const x = await digits(6);
    const [p, m] = await Promise.all([logitsOf(loadModel(path.join(out, 'model.onnx')).proto, x, 6), logitsOf(maskNeurons(orig, layout, masks), x, 6)]);
    for (let i = 0; i < p.length; i++) expect(Math.abs(p[i]! - m[i]!)).toBeLessThan(1e-4);
    expect(r.parameters.before - r.parameters.after).toBe(192 * (64 + 1 + 64));
    expect(r.output.layout.blocks.map((b: { fc1: { outFeatures: number } }) => b.fc1.outFeatures)).toEqual([80, 80, 80, 80]);
    expect(fs.existsSync(path.join(out, 'report.json'))).toBe(true);
  }, 120_000);

  it('taylor: scoring and evaluation images are disjoint and cover --images; --force rules', async () => {
    const out = path.join(tmp, 'taylor');
    const { report } = await runPrune(MODEL, { images: DIGITS, criterion: 'taylor', ffn: 0.25, out, ...quiet });
    const r = report.results;
    expect(r.scoring.images).toBe(16);
    expect(r.evaluation.images.count).toBe(24);
    expect(r.scoring.split).toMatch(/16 scoring, 24 evaluation/);
    // The same --out again: refused before any work (exit 1), the files left as they were.
    const before = fs.readFileSync(path.join(out, 'model.onnx'));
    const err = await runPrune(MODEL, { images: DIGITS, criterion: 'random', ffn: 0.5, out, ...quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(ExitCode.USAGE);
    expect(fs.readFileSync(path.join(out, 'model.onnx')).equals(before)).toBe(true);
    await runPrune(MODEL, { images: DIGITS, criterion: 'random', ffn: 0.5, out, force: true, ...quiet });
    expect(fs.readFileSync(path.join(out, 'model.onnx')).equals(before)).toBe(false);
    // --save onto an existing file needs --force; onto the input model never.
    const save = path.join(tmp, 'saved.onnx');
    fs.writeFileSync(save, 'x');
    const e2 = await runPrune(MODEL, { images: DIGITS, criterion: 'random', out: path.join(tmp, 's1'), save, ...quiet }).catch((e: unknown) => e);
    expect((e2 as VitpathError).exitCode).toBe(ExitCode.USAGE);
    expect(fs.readFileSync(save, 'utf8')).toBe('x');
    const e3 = await runPrune(MODEL, { images: DIGITS, criterion: 'random', out: path.join(tmp, 's2'), save: MODEL, force: true, ...quiet }).catch((e: unknown) => e);
    expect((e3 as VitpathError).exitCode).toBe(ExitCode.USAGE);
  }, 120_000);

  it('--drop-blocks drops the block of lowest Block Influence, and the model is re-located with one block fewer', async () => {
    const out = path.join(tmp, 'drop');
    const { report } = await runPrune(MODEL, { images: DIGITS, criterion: 'magnitude', ffn: 0, dropBlocks: 1, out, ...quiet });
    const r = report.results;
    const bi = r.blocks.map((b) => b.blockInfluence!);
    expect(bi.every((v) => v > 0 && v < 2)).toBe(true);
    const lowest = bi.indexOf(Math.min(...bi));
    expect(r.blocks.filter((b) => b.dropped).map((b) => b.block)).toEqual([lowest]);
    expect(r.output.layout.blocks.length).toBe(3);
    expect(r.scoring.images).toBe(16);
    const removed = csv(path.join(out, 'removed.csv'));
    expect(removed).toEqual([{ block: String(lowest), kind: 'block', index: String(lowest), score: String(bi[lowest]) }]);
    expect(r.ffn.after).toBe(3 * 128);
  }, 120_000);

  it('--from-trace reads a trace-path run: every neuron on a traced path is kept', async () => {
    const trace = path.join(tmp, 'real-trace');
    await tracePath({ model: MODEL, images: DIGITS, limit: 8, target: 'auto', objective: 'prob', steps: 4, jas: 'product', baselines: [], topK: 5, batch: 8, seed: 0, resume: false, out: trace, force: true, provider: 'cpu', deviceId: 0, threads: 1, preprocess: {} });
    const traced = JSON.parse(fs.readFileSync(path.join(trace, 'report.json'), 'utf8')).results.images as { methods: { method: string; path: number[] }[] }[];
    const onPath = new Set(traced.flatMap((im) => im.methods.find((m) => m.method === 'path')!.path.map((j, l) => `${l}:${j}`)));
    const out = path.join(tmp, 'from-trace');
    const { report } = await runPrune(MODEL, { images: DIGITS, criterion: 'path', fromTrace: trace, ffn: 0.5, out, ...quiet });
    expect(report.results.scoring.fromTrace).toBe(trace);
    expect(report.results.scoring.images).toBe(0); // no image ran through the model for the scores
    const removed = csv(path.join(out, 'removed.csv'));
    expect(removed.length).toBe(256);
    for (const r of removed) expect(onPath.has(`${r.block}:${r.index}`)).toBe(false);
    // --keep-path-neurons with another criterion protects each class's preferred neuron per block.
    const k = await runPrune(MODEL, { images: DIGITS, criterion: 'random', fromTrace: trace, keepPathNeurons: true, ffn: 0.9, roundTo: 1, out: path.join(tmp, 'keep'), ...quiet });
    const kept = k.report.results.blocks;
    expect(kept.every((b) => b.protected >= 1 && b.ffnAfter >= b.protected)).toBe(true);
    const removedK = new Set(csv(path.join(tmp, 'keep', 'removed.csv')).map((r) => `${r.block}:${r.index}`));
    const preferred = JSON.parse(fs.readFileSync(path.join(trace, 'report.json'), 'utf8')).results.classes.preferred as (number[] | null)[];
    for (const p of preferred) p?.forEach((j, l) => expect(removedK.has(`${l}:${j}`)).toBe(false));
  }, 120_000);

  it('--from-trace refuses a run of another model (exit 2)', async () => {
    const trace = path.join(tmp, 'trace');
    fs.mkdirSync(trace);
    fs.writeFileSync(path.join(trace, 'report.json'), JSON.stringify({ command: 'trace-path', model: { sha256: '0'.repeat(64) }, results: { settings: { layers: [0, 1, 2, 3] }, images: [] } }));
    const err = await runPrune(MODEL, { images: DIGITS, criterion: 'path', fromTrace: trace, out: path.join(tmp, 'ft'), ...quiet }).catch((e: unknown) => e);
    expect((err as VitpathError).exitCode).toBe(ExitCode.BAD_INPUT);
    expect((err as Error).message).toMatch(/different model/);
    // The failed run leaves no folder behind (the shared command run abandons what it created).
    expect(fs.existsSync(path.join(tmp, 'ft'))).toBe(false);
  });

  it('fine-tuning lowers KL(original || pruned) on the scoring images', async () => {
    const common = { images: DIGITS, criterion: 'random' as const, ffn: 0.75, seed: 1, ...quiet, scoreImages: 20 };
    const a = await runPrune(MODEL, { ...common, out: path.join(tmp, 'ft0') });
    const b = await runPrune(MODEL, { ...common, out: path.join(tmp, 'ft1'), finetune: 12, lr: 1e-3, kdTemperature: 2 });
    const loss = b.report.results.finetune!.loss;
    expect(loss.length).toBe(12);
    // Independent check: KL of the written models' logits against the original on all 40 digits.
    const x = await digits(40);
    const orig = loadModel(MODEL).proto;
    const [z, za, zb] = await Promise.all([logitsOf(orig, x, 40), logitsOf(loadModel(path.join(tmp, 'ft0/model.onnx')).proto, x, 40), logitsOf(loadModel(path.join(tmp, 'ft1/model.onnx')).proto, x, 40)]);
    const kl = (m: Float32Array) => klDivergenceFromLogits(z, m, 40, 10).reduce((s, v) => s + v, 0) / 40;
    expect(kl(zb)).toBeLessThan(kl(za));
    // Same widths: fine-tuning changes weights, not structure.
    expect(b.report.results.parameters.after).toBe(a.report.results.parameters.after);
  }, 180_000);
});
