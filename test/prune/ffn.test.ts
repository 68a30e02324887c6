// FFN pruning as a physical graph edit, on every fixture export style: the pruned model's outputs
// equal the original's with the removed neurons masked to zero at every token (a Mul before fc2,
// built by prune/mask.ts), the re-located layout shows the new per-block widths, and the file
// shrinks by the removed weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { DataType } from '../../src/onnx/proto.js';
import { valueInfoShape, Graph } from '../../src/onnx/graph.js';
import { locateVit } from '../../src/vit/locate.js';
import type { ViTLayout } from '../../src/vit/types.js';
import { applyPlan } from '../../src/prune/apply.js';
import { prepareLoaded } from '../../src/services/prepareModel.js';
import { maskHeads, maskNeurons } from '../../src/prune/mask.js';
import { gateBranches, gateColumn } from '../../src/onnx/rewrite/ablate.js';
import { createSession, type Feed } from '../../src/runtime/session.js';
import { mulberry32 } from '../../src/random.js';
import { f16ToF32, f32ToF16 } from '../../src/onnx/tensor.js';

const ROOT = path.resolve(__dirname, '../..');
const SHARED = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');

function modelFiles(): string[] {
  const dirs = ['fixtures/exports', 'fixtures/exports/torchvision', 'fixtures/models'].map((d) => path.join(ROOT, d));
  const files = dirs.flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith('.onnx')).map((f) => path.join(d, f)));
  return files.sort();
}

/** Seeded images for the model's image input (batch 2 unless fixed), in its element type. */
function feedsFor(model: ModelProto, layout: ViTLayout, seed: number, batchWanted = 2): Record<string, Feed> {
  const f = layout.facts;
  const batch = typeof f.batch === 'number' ? f.batch : batchWanted;
  const v = model.graph!.input.find((i) => i.name === layout.input)!;
  const declared = valueInfoShape(v).dims ?? [];
  // NHWC inputs keep their declared order; NCHW otherwise.
  const dims = declared.length === 4 && declared.every((d, i) => i === 0 || typeof d === 'number') ? [batch, ...(declared.slice(1) as number[])] : [batch, f.channels, f.imageSize[0], f.imageSize[1]];
  const n = dims.reduce((a, b) => a * b, 1);
  const rnd = mulberry32(seed);
  const x = Float32Array.from({ length: n }, () => rnd() * 2 - 1);
  if (valueInfoShape(v).dataType === DataType.FLOAT16) return { [layout.input]: { data: Uint16Array.from(x, f32ToF16), dims, type: 'float16' } };
  return { [layout.input]: { data: x, dims } };
}

async function outputsOf(model: ModelProto, feeds: Record<string, Feed>): Promise<Record<string, Float32Array>> {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, o]) => [k, o.type === 'float16' ? Float32Array.from(o.data as Uint16Array, f16ToF32) : Float32Array.from(o.data as Float32Array)]));
  } finally {
    await s.release();
  }
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Per block a seeded keep set: widths differ between blocks (about 40..70% kept). */
function randomKeep(layout: ViTLayout, seed: number): Map<number, number[]> {
  const rnd = mulberry32(seed);
  const plan = new Map<number, number[]>();
  for (const b of layout.blocks) {
    const F = b.fc1.outFeatures;
    const k = Math.max(1, Math.round(F * (0.4 + 0.3 * ((b.index * 7) % 4) / 3)));
    const idx = Array.from({ length: F }, (_, i) => i);
    for (let i = F - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    plan.set(b.index, idx.slice(0, k).sort((a, c) => a - c));
  }
  return plan;
}

async function checkModel(file: string): Promise<void> {
  const loaded = loadModel(file);
  const layout = locateVit(loaded.proto, { label: file });
  const plan = randomKeep(layout, 7);
  const pruned = applyPlan(loaded.proto, layout, { ffn: plan });
  const masks = new Map([...plan].map(([l, keep]) => {
    const m = new Float32Array(layout.blocks[l]!.fc1.outFeatures);
    for (const k of keep) m[k] = 1;
    return [l, m] as const;
  }));
  const masked = maskNeurons(loaded.proto, layout, masks);
  // Exports whose shapes are baked at batch 1 (their input says dynamic) run one image.
  let feeds = feedsFor(loaded.proto, layout, 11);
  let o: Record<string, Float32Array>;
  try {
    o = await outputsOf(loaded.proto, feeds);
  } catch {
    feeds = feedsFor(loaded.proto, layout, 11, 1);
    o = await outputsOf(loaded.proto, feeds);
  }
  const [a, b] = await Promise.all([outputsOf(pruned, feeds), outputsOf(masked, feeds)]);
  const half = loaded.proto.graph!.initializer.some((t) => t.dataType === DataType.FLOAT16);
  for (const name of Object.keys(o)) {
    const scale = Math.max(1, maxAbs(b[name]!));
    const tol = (half ? 4e-3 : 2e-5) * scale;
    expect(maxDiff(a[name]!, b[name]!), `${path.basename(file)} output ${name}`).toBeLessThanOrEqual(tol);
  }
  // The removal changed the logits (so the comparison above could fail).
  expect(maxDiff(o[layout.logits]!, b[layout.logits]!)).toBeGreaterThan(100 * (half ? 4e-3 : 2e-5));
  // Re-located: per-block widths are the kept counts; everything else as before.
  const again = locateVit(pruned, { label: `${file} (pruned)` });
  expect(again.blocks.map((x) => x.fc1.outFeatures)).toEqual(layout.blocks.map((x) => plan.get(x.index)!.length));
  expect(again.blocks.map((x) => x.fc2.inFeatures)).toEqual(layout.blocks.map((x) => plan.get(x.index)!.length));
  expect(again.facts.numBlocks).toBe(layout.facts.numBlocks);
  expect(again.facts.heads).toBe(layout.facts.heads);
  expect(again.facts.ffnWidth).toBe(Math.max(...[...plan.values()].map((k) => k.length)));
  // Weights shrink by exactly the removed rows/columns/bias entries.
  const count = (m: ModelProto) => new Graph(m).nodes.length;
  expect(count(pruned)).toBeLessThanOrEqual(count(loaded.proto));
  const params = (m: ModelProto) => m.graph!.initializer.reduce((s, t) => s + t.dims.reduce((x, d) => x * Number(d), 1), 0);
  const removed = layout.blocks.reduce((s, blk) => {
    const r = blk.fc1.outFeatures - plan.get(blk.index)!.length;
    return s + r * (blk.fc1.inFeatures + (blk.fc1.bias ? 1 : 0) + blk.fc2.outFeatures);
  }, 0);
  expect(params(loaded.proto) - params(pruned)).toBe(removed);
}

describe('FFN pruning equals masking the removed neurons', () => {
  for (const file of modelFiles()) {
    it(path.relative(ROOT, file), async () => {
      await checkModel(file);
    }, 60_000);
  }
  it.skipIf(!fs.existsSync(SHARED))('../shared/models/vit-mnist.onnx', async () => {
    await checkModel(SHARED);
  }, 120_000);
});

/** Drop blocks (and cut FFN neurons in the others): equals gating both branches of the dropped blocks to zero and masking the cut neurons. */
async function checkDrop(file: string): Promise<void> {
  const loaded = loadModel(file);
  const layout = locateVit(loaded.proto, { label: file });
  const L = layout.blocks.length;
  if (L < 2) return;
  const drop = L >= 3 ? [0, 1] : [1];
  const plan = randomKeep(layout, 5);
  for (const l of drop) plan.delete(l);
  const pruned = applyPlan(loaded.proto, layout, { ffn: plan, dropBlocks: drop });
  const masks = new Map([...plan].map(([l, keep]) => {
    const m = new Float32Array(layout.blocks[l]!.fc1.outFeatures);
    for (const k of keep) m[k] = 1;
    return [l, m] as const;
  }));
  const gated = gateBranches(maskNeurons(loaded.proto, layout, masks), layout);
  let feeds = feedsFor(loaded.proto, layout, 13);
  let o: Record<string, Float32Array>;
  try {
    o = await outputsOf(loaded.proto, feeds);
  } catch {
    feeds = feedsFor(loaded.proto, layout, 13, 1);
    o = await outputsOf(loaded.proto, feeds);
  }
  const B = feeds[layout.input]!.dims[0]!;
  const gates = new Float32Array(B * gated.columns).fill(1);
  for (let r = 0; r < B; r++) for (const l of drop) for (const k of ['attn', 'mlp'] as const) gates[r * gated.columns + gateColumn(l, k)] = 0;
  const [a, b] = await Promise.all([outputsOf(pruned, feeds), outputsOf(gated.model, { ...feeds, [gated.gates]: { data: gates, dims: [B, gated.columns] } })]);
  const half = loaded.proto.graph!.initializer.some((t) => t.dataType === DataType.FLOAT16);
  for (const name of Object.keys(o)) {
    const scale = Math.max(1, maxAbs(b[name]!));
    expect(maxDiff(a[name]!, b[name]!), `${path.basename(file)} output ${name}`).toBeLessThanOrEqual((half ? 4e-3 : 2e-5) * scale);
  }
  expect(maxDiff(o[layout.logits]!, b[layout.logits]!)).toBeGreaterThan(100 * (half ? 4e-3 : 2e-5));
  const again = locateVit(pruned, { label: `${file} (dropped)` });
  expect(again.facts.numBlocks).toBe(L - drop.length);
  const kept = layout.blocks.filter((x) => !drop.includes(x.index));
  expect(again.blocks.map((x) => x.fc1.outFeatures)).toEqual(kept.map((x) => plan.get(x.index)!.length));
}

describe('dropping whole blocks equals gating their branches to zero', () => {
  for (const file of modelFiles()) {
    it(path.relative(ROOT, file), async () => {
      await checkDrop(file);
    }, 60_000);
  }
});

/** Keep a seeded subset of heads per block (at least one, at most all but one): equals masking the removed heads before the projection. */
async function checkHeads(file: string): Promise<void> {
  let loaded = loadModel(file);
  let layout = locateVit(loaded.proto, { label: file });
  // Exports that compute head-count shapes at run time are pruned in their shape-folded form (as prune does).
  if (layout.blocks.some((b) => b.attention?.computedShapes.length)) {
    loaded = (await prepareLoaded(loaded, { label: file })).loaded;
    layout = locateVit(loaded.proto, { label: file });
  }
  const rnd = mulberry32(17);
  const keep = new Map<number, number[]>();
  for (const b of layout.blocks) {
    const a = b.attention;
    if (!a?.heads || a.heads < 2 || a.untraced.length || a.computedShapes.length) continue;
    const k = 1 + Math.floor(rnd() * (a.heads - 1));
    const all = Array.from({ length: a.heads }, (_, i) => i);
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    keep.set(b.index, all.slice(0, k).sort((x, y) => x - y));
  }
  expect(keep.size, `${path.basename(file)}: no block with prunable heads`).toBeGreaterThan(0);
  const pruned = applyPlan(loaded.proto, layout, { ffn: new Map(), heads: keep });
  const masked = maskHeads(loaded.proto, layout, keep);
  let feeds = feedsFor(loaded.proto, layout, 19);
  let o: Record<string, Float32Array>;
  try {
    o = await outputsOf(loaded.proto, feeds);
  } catch {
    feeds = feedsFor(loaded.proto, layout, 19, 1);
    o = await outputsOf(loaded.proto, feeds);
  }
  const [a, b] = await Promise.all([outputsOf(pruned, feeds), outputsOf(masked, feeds)]);
  const half = loaded.proto.graph!.initializer.some((t) => t.dataType === DataType.FLOAT16);
  // Outputs holding per-head tensors (attention probabilities) shrink with the heads; the others must agree.
  for (const name of Object.keys(o).filter((n) => a[n]!.length === b[n]!.length)) {
    const scale = Math.max(1, maxAbs(b[name]!));
    expect(maxDiff(a[name]!, b[name]!), `${path.basename(file)} output ${name}`).toBeLessThanOrEqual((half ? 4e-3 : 2e-5) * scale);
  }
  expect(a[layout.logits]!.length).toBe(b[layout.logits]!.length);
  expect(maxDiff(o[layout.logits]!, b[layout.logits]!)).toBeGreaterThan(100 * (half ? 4e-3 : 2e-5));
  const again = locateVit(pruned, { label: `${file} (heads)` });
  for (const blk of again.blocks) {
    const want = keep.get(blk.index)?.length ?? layout.blocks[blk.index]!.attention?.heads;
    expect(blk.attention?.heads, `block ${blk.index}`).toBe(want);
  }
}

describe('attention-head pruning equals masking the removed heads', () => {
  for (const file of modelFiles()) {
    it(path.relative(ROOT, file), async () => {
      await checkHeads(file);
    }, 60_000);
  }
  it.skipIf(!fs.existsSync(SHARED))('../shared/models/vit-mnist.onnx', async () => {
    await checkHeads(SHARED);
  }, 120_000);
});
