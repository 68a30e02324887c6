// The attention locator on every export style: the q/k/v (or fused qkv) and projection tensors and
// head counts the export scripts say they built, as found from structure alone; and, as an
// independent check that the head split and every head-count constant were found, removing one
// head (slicing q/k/v columns and projection rows, rewriting each located constant to perHead x
// (heads - 1)) gives a model that runs and equals the original with that head's v zeroed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, encodeModel, type LoadedModel } from '../../src/onnx/model.js';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphEditor } from '../../src/onnx/edit.js';
import { f32ToF16, f16ToF32, type HostTensor } from '../../src/onnx/tensor.js';
import { Graph } from '../../src/onnx/graph.js';
import { valueInfoShape } from '../../src/onnx/graph.js';
import { createSession, type Feed } from '../../src/runtime/session.js';
import { prepareLoaded } from '../../src/services/prepareModel.js';
import { locateVit } from '../../src/vit/locate.js';
import { buildSyntheticVit, type SynthVitConfig } from '../../src/vit/synth.js';
import { DIGITS_TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/random.js';
import type { LinearRef, ViTLayout } from '../../src/vit/types.js';

const ROOT = path.resolve(__dirname, '../..');
const EXPORTS = path.join(ROOT, 'fixtures/exports');
const TV = path.join(EXPORTS, 'torchvision');
const MODELS = path.join(ROOT, 'fixtures/models');
const VIT_MNIST = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');

/** What scripts/export-fixtures.py builds (MODELS there): heads, and the q/k/v and projection bias names torch gives them. */
const HF = (l: number) => ({ q: `layer.${l}.attention.query.bias`, k: `layer.${l}.attention.key.bias`, v: `layer.${l}.attention.value.bias`, proj: `layer.${l}.attention_output.bias` });
const TIMM = (l: number) => ({ qkv: `blocks.${l}.attn.qkv.bias`, proj: `blocks.${l}.attn.proj.bias` });
const TORCHVISION = (prefix: string) => (l: number) => ({
  qkv: `${prefix}encoder.layers.encoder_layer_${l}.self_attention.in_proj_bias`,
  proj: `${prefix}encoder.layers.encoder_layer_${l}.self_attention.out_proj.bias`,
  projWeight: `${prefix}encoder.layers.encoder_layer_${l}.self_attention.out_proj.weight`,
});
type Truth = { heads: number; dim: number; depth: number; biases: (l: number) => Record<string, string> };
const exportTruth: Record<string, Truth> = {
  'hf-vit.onnx': { heads: 2, dim: 32, depth: 2, biases: HF },
  'hf-vit-fp16.onnx': { heads: 2, dim: 32, depth: 2, biases: HF },
  'timm-vit-gelu20.onnx': { heads: 2, dim: 32, depth: 2, biases: TIMM },
  'timm-vit-gelu20-tanh.onnx': { heads: 2, dim: 32, depth: 2, biases: TIMM },
  'deit-distilled.onnx': { heads: 2, dim: 32, depth: 2, biases: TIMM },
  'cls-meanpool.onnx': { heads: 4, dim: 32, depth: 2, biases: TIMM },
  'cls-meanpool-patches.onnx': { heads: 2, dim: 32, depth: 2, biases: TIMM },
};
// scripts/export-torchvision.py writes its configuration into references.json.
const tvRefs = JSON.parse(fs.readFileSync(path.join(TV, 'references.json'), 'utf8')) as { models: { file: string; config: { heads: number; hidden: number; layers: number } }[] };
for (const m of tvRefs.models) {
  exportTruth[`torchvision/${m.file}`] = { heads: m.config.heads, dim: m.config.hidden, depth: m.config.layers, biases: TORCHVISION(m.file.includes('flat') ? 'vit.' : '') };
}

function expectBiases(layout: ViTLayout, t: Truth): void {
  expect(layout.blocks.length).toBe(t.depth);
  for (const b of layout.blocks) {
    const a = b.attention!;
    expect(a, `block ${b.index} attention`).toBeDefined();
    expect(a.heads).toBe(t.heads);
    expect(a.headDim).toBe(t.dim / t.heads);
    expect(a.dim).toBe(t.dim);
    const want = t.biases(b.index);
    if (want.qkv) {
      expect(a.form).toBe('fused');
      expect(a.qkv!.bias).toBe(want.qkv);
      expect(a.qkv!.outFeatures).toBe(3 * t.dim);
      expect(a.qkvOrder).toEqual(['q', 'k', 'v']);
    } else {
      expect(a.form).toBe('separate');
      for (const r of ['q', 'k', 'v'] as const) expect(a[r]!.bias).toBe(want[r]);
    }
    expect(a.proj.bias).toBe(want.proj);
    if (want.projWeight) expect(a.proj.weight).toBe(want.projWeight);
    expect(a.untraced).toEqual([]);
  }
}

/** Weight axis holding a linear's output features / input features. */
const outAxis = (l: LinearRef) => (l.kind === 'gemm' && l.transB ? 0 : 1);
const inAxis = (l: LinearRef) => 1 - outAxis(l);

function headColumns(dim: number, headDim: number, h: number, keep: boolean, offset = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < dim; i++) if ((Math.floor(i / headDim) === h) !== keep) out.push(i + offset);
  return out;
}

/** The model without head h of block l: q/k/v columns and projection rows sliced, head-count constants rewritten. */
function dropHead(model: ModelProto, layout: ViTLayout, l: number, h: number): ModelProto {
  const a = layout.blocks[l]!.attention!;
  const H = a.heads!;
  const dh = a.headDim!;
  const ed = new GraphEditor(model);
  const cut = (lin: LinearRef, idx: number[]) => {
    ed.sliceInitializer(lin.weight, outAxis(lin), idx);
    if (lin.bias) ed.sliceInitializer(lin.bias, 0, idx);
  };
  if (a.form === 'fused') cut(a.qkv!, [0, 1, 2].flatMap((c) => headColumns(a.dim, dh, h, true, c * a.dim)));
  else for (const r of ['q', 'k', 'v'] as const) cut(a[r]!, headColumns(a.dim, dh, h, true));
  ed.sliceInitializer(a.proj.weight, inAxis(a.proj), headColumns(a.dim, dh, h, true));
  // One new value per (reader, input), all its head-count elements rewritten.
  const g = new Graph(model);
  const byInput = new Map<string, { reader: string; input: number; tensor: string; value: HostTensor }>();
  for (const c of a.headConstants) {
    expect(c.attribute, 'attribute constants are not exercised here').toBeUndefined();
    const key = `${c.reader}#${c.input}`;
    let e = byInput.get(key);
    if (!e) {
      const v = ed.constantValue(c.tensor!)!;
      e = { reader: c.reader, input: c.input!, tensor: c.tensor!, value: { ...v, data: v.data.slice() as HostTensor['data'] } };
      byInput.set(key, e);
    }
    const data = e.value.data;
    const next = c.perHead * (H - 1);
    if (data instanceof BigInt64Array) data[c.index] = BigInt(next);
    else (data as Int32Array)[c.index] = next;
  }
  for (const e of byInput.values()) ed.forkConstant(g.producerOf(e.reader)!, e.input, e.value);
  ed.filterValueInfo(() => false); // stored shapes of the sliced tensors no longer hold
  return ed.model();
}

/** The model with head h of block l silenced: its v columns (and bias entries) zeroed. */
function silenceHead(model: ModelProto, layout: ViTLayout, l: number, h: number): ModelProto {
  const a = layout.blocks[l]!.attention!;
  const ed = new GraphEditor(model);
  const v = a.form === 'fused' ? a.qkv! : a.v!;
  const offset = a.form === 'fused' ? a.qkvOrder!.indexOf('v') * a.dim : 0;
  const cols = new Set(headColumns(a.dim, a.headDim!, h, false, offset));
  const zero = (name: string, axis: number) => {
    const t = ed.constantValue(name)!;
    const data = t.data.slice() as Float32Array | Uint16Array;
    const inner = t.dims.slice(axis + 1).reduce((p, d) => p * d, 1);
    const n = t.dims[axis]!;
    for (let i = 0; i < data.length; i++) if (cols.has(Math.floor(i / inner) % n)) data[i] = 0;
    ed.setConstant(name, { ...t, data });
  };
  zero(v.weight, outAxis(v));
  if (v.bias) zero(v.bias, 0);
  return ed.model();
}

async function run(model: ModelProto, feeds: Record<string, Feed>): Promise<Float32Array> {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    const out = Object.values(await s.run(feeds))[0]!;
    return out.data instanceof Uint16Array ? Float32Array.from(out.data, f16ToF32) : (out.data as Float32Array);
  } finally {
    await s.release();
  }
}

function imageFeeds(model: ModelProto, layout: ViTLayout, batch: number): Record<string, Feed> {
  const rnd = mulberry32(5);
  const input = model.graph!.input.find((i) => i.name === layout.input)!;
  const d = layout.inputDims.map((x, i) => (i === 0 ? (typeof x === 'number' ? x : batch) : typeof x === 'number' ? x : [0, layout.facts.channels, ...layout.facts.imageSize][i]!));
  const n = d.reduce((p, x) => p * x, 1);
  const vals = Float32Array.from({ length: n }, () => rnd());
  if (valueInfoShape(input).dataType === DataType.FLOAT16) return { [layout.input]: { data: Uint16Array.from(vals, f32ToF16), dims: d, type: 'float16' } };
  return { [layout.input]: { data: vals, dims: d } };
}

/** Drop head h of block l and compare with the silenced original. */
async function expectHeadRemovable(model: ModelProto, layout: ViTLayout, l: number, h: number, batch: number): Promise<void> {
  const feeds = imageFeeds(model, layout, batch);
  const pruned = dropHead(model, layout, l, h);
  const want = await run(silenceHead(model, layout, l, h), feeds);
  const got = await run(pruned, feeds);
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  expect(worst).toBeLessThan(layout.precision ? 2e-2 : 1e-4);
  // The pruned model is located again with one head fewer in that block.
  const again = locateVit(pruned).blocks[l]!.attention!;
  expect(again.heads).toBe(layout.blocks[l]!.attention!.heads! - 1);
  expect(again.dim).toBe(layout.blocks[l]!.attention!.dim - layout.blocks[l]!.attention!.headDim!);
}

async function prepared(file: string): Promise<{ loaded: LoadedModel; layout: ViTLayout; batch: number }> {
  const p = await prepareLoaded(loadModel(file));
  return { loaded: p.loaded, layout: locateVit(p.loaded.proto), batch: p.preparation.batch === 'one-at-a-time' ? 1 : 2 };
}

describe('attention locator on real exports (scripts/export-fixtures.py, scripts/export-torchvision.py)', () => {
  for (const [file, truth] of Object.entries(exportTruth)) {
    const full = path.join(EXPORTS, file);
    it(`${file}: q/k/v/proj and heads as exported, raw and prepared; one head removable`, async () => {
      expectBiases(locateVit(loadModel(full).proto), truth);
      const p = await prepared(full);
      expectBiases(p.layout, truth);
      for (const b of p.layout.blocks) expect(b.attention!.computedShapes).toEqual([]);
      // nn.MultiheadAttention slices q, k, v out of in_proj's output at multiples of heads*headDim.
      if (file.startsWith('torchvision/')) expect(p.layout.blocks[0]!.attention!.headConstants.map((c) => [c.counts, c.perHead])).toContainEqual(['2*heads*headDim', 2 * (truth.dim / truth.heads)]);
      const last = truth.depth - 1;
      await expectHeadRemovable(p.loaded.proto, p.layout, last, truth.heads - 1, p.batch);
    }, 60_000);
  }
});

describe('attention locator on the synthetic styles and trained models', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')) as Record<string, { config: SynthVitConfig; names: Record<string, string> }>;
  for (const [file, e] of Object.entries(manifest)) {
    it(`${file}: the generator's q/k/v/proj weights; one head removable`, async () => {
      const layout = locateVit(loadModel(path.join(MODELS, file)).proto);
      for (const b of layout.blocks) {
        const a = b.attention!;
        expect(a.heads).toBe(e.config.heads);
        for (const r of ['q', 'k', 'v', 'proj'] as const) expect(a[r]!.weight).toBe(e.names[`block.${b.index}.attn.${r}.weight`]);
        expect(a.untraced).toEqual([]);
      }
      const p = await prepared(path.join(MODELS, file));
      await expectHeadRemovable(p.loaded.proto, p.layout, 0, 0, p.batch);
    }, 60_000);
  }
  for (const file of ['digits-vit.onnx', 'fashion-vit.onnx']) {
    it(`${file}: ${DIGITS_TRAIN_DEFAULTS.vit.heads} heads per block (the trainer's configuration); one head removable`, async () => {
      const p = await prepared(path.join(MODELS, file));
      expect(p.layout.blocks.map((b) => b.attention?.heads)).toEqual(p.layout.blocks.map(() => DIGITS_TRAIN_DEFAULTS.vit.heads));
      await expectHeadRemovable(p.loaded.proto, p.layout, 1, 2, p.batch);
    }, 60_000);
  }
  it('a matrix of synthetic styles (opsets 9..21, Gemm, BatchNorm, fixed batch, 1..4 heads): the generator\'s weights', async () => {
    const small: Partial<SynthVitConfig> = { imageSize: 8, channels: 2, patch: 4, width: 12, depth: 2, heads: 3, ffn: 20, classes: 5 };
    const cases: Partial<SynthVitConfig>[] = [];
    for (let opset = 9; opset <= 21; opset += 3) cases.push({ opset, norm: opset >= 17 ? 'layernorm' : 'decomposed', linear: opset % 2 ? 'matmul' : 'gemm' });
    cases.push({ opset: 13, norm: 'batchnorm', linear: 'gemm', batch: 1 }, { opset: 17, heads: 1 }, { opset: 17, heads: 4, linear: 'gemm', head: 'mean', batch: 2 });
    for (const cfg of cases) {
      const s = buildSyntheticVit({ ...small, ...cfg });
      const layout = locateVit(s.model);
      for (const b of layout.blocks) {
        const a = b.attention!;
        expect(a.heads, JSON.stringify(cfg)).toBe(s.config.heads);
        for (const r of ['q', 'k', 'v', 'proj'] as const) expect(a[r]!.weight).toBe(s.names[`block.${b.index}.attn.${r}.weight`]);
        expect(a.untraced, JSON.stringify(cfg)).toEqual([]);
      }
      if (s.config.heads > 1) await expectHeadRemovable(s.model, layout, 1, 1, s.config.batch === 'dynamic' ? 2 : s.config.batch);
    }
  }, 120_000);
  it.skipIf(!fs.existsSync(VIT_MNIST))('vit-mnist (../shared): fused in_proj, 4 heads of 16, found raw and prepared; one head removable', async () => {
    const raw = locateVit(loadModel(VIT_MNIST).proto);
    const p = await prepared(VIT_MNIST);
    for (const layout of [raw, p.layout]) {
      for (const b of layout.blocks) {
        const a = b.attention!;
        expect([a.form, a.heads, a.headDim, a.qkvOrder]).toEqual(['fused', 4, 16, ['q', 'k', 'v']]);
        expect(a.qkv!.bias).toBe(`transformer_blocks.${b.index}.attention.in_proj_bias`);
        expect(a.proj.weight).toBe(`transformer_blocks.${b.index}.attention.out_proj.weight`);
        expect(a.untraced).toEqual([]);
      }
    }
    expect(p.layout.blocks.every((b) => b.attention!.computedShapes.length === 0)).toBe(true);
    await expectHeadRemovable(p.loaded.proto, p.layout, 2, 1, 2);
  }, 60_000);
});

describe('named linears', () => {
  it('one list in graph order with stable names, as inspect shows them', () => {
    const layout = locateVit(loadModel(path.join(EXPORTS, 'deit-distilled.onnx')).proto);
    expect(layout.linears.map((l) => l.name)).toEqual([
      'patch_embed',
      'blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.0.mlp.fc1', 'blocks.0.mlp.fc2',
      'blocks.1.attn.qkv', 'blocks.1.attn.proj', 'blocks.1.mlp.fc1', 'blocks.1.mlp.fc2',
      'head', 'head_dist',
    ]);
    expect(layout.linears.find((l) => l.name === 'head_dist')!.bias).toBe('head_dist.bias');
    const pe = layout.linears[0]!;
    expect([pe.kind, pe.inFeatures, pe.outFeatures]).toEqual(['conv', 3 * 8 * 8, 32]);
    const hf = locateVit(loadModel(path.join(EXPORTS, 'hf-vit.onnx')).proto);
    expect(hf.linears.filter((l) => l.block === 1).map((l) => [l.name, l.bias])).toEqual([
      ['blocks.1.attn.q', 'layer.1.attention.query.bias'],
      ['blocks.1.attn.k', 'layer.1.attention.key.bias'],
      ['blocks.1.attn.v', 'layer.1.attention.value.bias'],
      ['blocks.1.attn.proj', 'layer.1.attention_output.bias'],
      ['blocks.1.mlp.fc1', 'layer.1.intermediate.bias'],
      ['blocks.1.mlp.fc2', 'layer.1.output.bias'],
    ]);
  });
});
