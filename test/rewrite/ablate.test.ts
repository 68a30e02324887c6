// Branch gates: all ones reproduce the model (every fixture style, vit-mnist; to float rounding, since
// ONNX Runtime fuses Add+LayerNorm differently once a Mul sits on the branch); a zero gate
// equals a model whose branch weights are zeroed (an independent way to remove the branch); gates
// are per batch row, so a mixed batch equals separate runs.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { gateBranches, gateColumn, gateRows } from '../../src/onnx/rewrite/ablate.js';
import type { Feed } from '../../src/runtime/session.js';
import { locateVit } from '../../src/vit/locate.js';
import { buildSyntheticVit, synthWeightSpecs } from '../../src/vit/synth.js';
import { modelFiles, randomImages, runOnce } from './data.js';


const run = runOnce;

const files = modelFiles();

describe.each(files.map((f) => ({ name: path.basename(f), file: f })))('gates on $name', ({ file }) => {
  it('all gates 1 give the model logits; a zero gate changes them', async () => {
    const model = loadModel(file).proto;
    const layout = locateVit(model);
    const batch = typeof layout.inputDims[0] === 'number' ? layout.inputDims[0] : 2;
    const [, c, h, w] = layout.inputDims as number[];
    const img: Feed = { data: randomImages(batch, c! * h! * w!, 5), dims: [batch, c!, h!, w!] };
    const clean = await run(model, { [layout.input]: img }, [layout.logits]);
    const gated = gateBranches(model, layout);
    expect(gated.columns).toBe(2 * layout.blocks.length);
    const ones = gateRows(gated.columns, new Array(batch).fill(-1));
    const out = await run(gated.model, { [layout.input]: img, [gated.gates]: { data: ones, dims: [batch, gated.columns] } }, [layout.logits]);
    const got = out[layout.logits]!.data as Float32Array;
    const want = clean[layout.logits]!.data as Float32Array;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]!)));
    const zero = gateRows(gated.columns, new Array(batch).fill(gateColumn(0, 'mlp')));
    const ab = await run(gated.model, { [layout.input]: img, [gated.gates]: { data: zero, dims: [batch, gated.columns] } }, [layout.logits]);
    const abl = ab[layout.logits]!.data as Float32Array;
    expect(Math.max(...Array.from(abl, (v, i) => Math.abs(v - want[i]!)))).toBeGreaterThan(1e-3);
  });
});

describe('a zero gate removes the branch', () => {
  const cfgs = [
    { name: 'matmul, class token', cfg: { depth: 3, seed: 4 } },
    { name: 'gemm (flat MLP), mean pooling', cfg: { depth: 3, seed: 5, linear: 'gemm' as const, head: 'mean' as const } },
  ];
  it.each(cfgs)('equals zeroed branch weights ($name)', async ({ cfg }) => {
    const base = buildSyntheticVit(cfg);
    const layout = locateVit(base.model);
    const n = 3;
    const img: Feed = { data: randomImages(n, 784, 8), dims: [n, 1, 28, 28] };
    const gated = gateBranches(base.model, layout);
    const specs = new Map(synthWeightSpecs(cfg).map((s) => [s.name, s.dims]));
    for (let l = 0; l < 3; l++) {
      for (const kind of ['attn', 'mlp'] as const) {
        const p = kind === 'attn' ? `block.${l}.attn.proj` : `block.${l}.fc2`;
        const zeroed = { ...base.weights };
        for (const s of ['weight', 'bias']) zeroed[`${p}.${s}`] = new Float32Array(specs.get(`${p}.${s}`)!.reduce((a, b) => a * b, 1));
        const ref = await run(buildSyntheticVit({ ...cfg, weights: zeroed }).model, { input: img }, ['logits']);
        const out = await run(gated.model, { input: img, [gated.gates]: { data: gateRows(gated.columns, new Array(n).fill(gateColumn(l, kind))), dims: [n, gated.columns] } }, ['logits']);
        const a = out.logits!.data as Float32Array;
        const b = ref.logits!.data as Float32Array;
        for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
      }
    }
  });

  it('gates act per row: a mixed batch equals separate runs', async () => {
    const sv = buildSyntheticVit({ depth: 2, seed: 6 });
    const layout = locateVit(sv.model);
    const gated = gateBranches(sv.model, layout);
    const one = randomImages(1, 784, 3);
    const n = gated.columns + 1;
    const imgs = new Float32Array(n * 784);
    for (let i = 0; i < n; i++) imgs.set(one, i * 784);
    const cols = Array.from({ length: n }, (_, i) => i - 1); // -1 (none), 0, 1, 2, 3
    const mixed = await run(gated.model, { input: { data: imgs, dims: [n, 1, 28, 28] }, [gated.gates]: { data: gateRows(gated.columns, cols), dims: [n, gated.columns] } }, ['logits']);
    const K = layout.facts.numClasses;
    const rows = new Set<string>();
    for (let i = 0; i < n; i++) {
      const single = await run(gated.model, { input: { data: one, dims: [1, 1, 28, 28] }, [gated.gates]: { data: gateRows(gated.columns, [cols[i]!]), dims: [1, gated.columns] } }, ['logits']);
      const got = (mixed.logits!.data as Float32Array).subarray(i * K, (i + 1) * K);
      const want = single.logits!.data as Float32Array;
      for (let k = 0; k < K; k++) expect(got[k]).toBeCloseTo(want[k]!, 5);
      rows.add(Array.from(got, (v) => v.toFixed(4)).join(','));
    }
    expect(rows.size).toBe(n); // every ablation gave a different output
  });
});
