// Tail extraction (final norm + pooling + head as its own model): fed the last block's output it
// reproduces the model's logits exactly on every fixture style and on vit-mnist; the row form
// equals an independent plain-JS LayerNorm + head on a synthetic model, for class-token and
// mean-pooled heads; a head that reads anything besides the residual stream is refused (exit 3).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { exposeOutputs } from '../../src/onnx/rewrite/expose.js';
import { extractTail } from '../../src/onnx/rewrite/tail.js';
import type { Feed } from '../../src/runtime/session.js';
import { create, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { locateVit } from '../../src/vit/locate.js';
import { buildSyntheticVit } from '../../src/vit/synth.js';
import { VitpathError } from '../../src/errors.js';
import { modelFiles, randomImages, runOnce } from './data.js';


const run = runOnce;

const files = modelFiles();

describe.each(files.map((f) => ({ name: path.basename(f), file: f })))('tail of $name', ({ file }) => {
  it('tokens form fed the last block output gives the model logits bit for bit', async () => {
    const model = loadModel(file).proto;
    const layout = locateVit(model);
    const batch = typeof layout.inputDims[0] === 'number' ? layout.inputDims[0] : 3;
    const [, c, h, w] = layout.inputDims as number[];
    const img: Feed = { data: randomImages(batch, c! * h! * w!, 5), dims: [batch, c!, h!, w!] };
    const last = layout.blocks[layout.blocks.length - 1]!.output;
    const full = await run(exposeOutputs(model, [last]), { [layout.input]: img }, [layout.logits, last]);
    const tail = extractTail(model, layout);
    expect(tail.copiedNodes).toBeGreaterThan(0);
    const out = await run(tail.model, { [tail.input]: { data: full[last]!.data, dims: full[last]!.dims } });
    expect(Array.from(out[tail.output]!.data as Float32Array)).toEqual(Array.from(full[layout.logits]!.data as Float32Array));
    // The tail holds only what it needs: no patch embedding, no block weights.
    expect(tail.model.graph!.initializer.some((t) => t.name === layout.patchEmbed.weight)).toBe(false);
    expect(tail.model.graph!.initializer.some((t) => t.name === layout.blocks[0]!.fc1.weight)).toBe(false);
  });
});

/** Plain-JS LayerNorm (biased variance, eps) then head, torch layout weights. */
function jsReadout(row: Float32Array, D: number, gamma: Float32Array, beta: Float32Array, W: Float32Array, bias: Float32Array, eps: number): number[] {
  let m = 0;
  for (let j = 0; j < D; j++) m += row[j]!;
  m /= D;
  let v = 0;
  for (let j = 0; j < D; j++) v += (row[j]! - m) ** 2;
  v /= D;
  const y = Array.from({ length: D }, (_, j) => ((row[j]! - m) / Math.sqrt(v + eps)) * gamma[j]! + beta[j]!);
  const K = bias.length;
  return Array.from({ length: K }, (_, k) => {
    let s = bias[k]!;
    for (let j = 0; j < D; j++) s += W[k * D + j]! * y[j]!;
    return s;
  });
}

describe('row form', () => {
  for (const head of ['cls', 'mean'] as const) {
    it(`applies the final norm and head to one row (${head} pooling), as a JS reference does`, async () => {
      const sv = buildSyntheticVit({ head, seed: 7, depth: 2 });
      const layout = locateVit(sv.model);
      const D = layout.facts.width;
      const n = 4;
      const rows = randomImages(n, D, 9).map((x) => 4 * x - 2);
      const tail = extractTail(sv.model, layout, { input: 'row' });
      const out = await run(tail.model, { [tail.input]: { data: rows, dims: [n, D] } });
      const got = out[tail.output]!.data as Float32Array;
      const K = layout.facts.numClasses;
      for (let i = 0; i < n; i++) {
        const ref = jsReadout(rows.subarray(i * D, (i + 1) * D), D, sv.weights['norm.weight']!, sv.weights['norm.bias']!, sv.weights['head.weight']!, sv.weights['head.bias']!, 1e-5);
        for (let k = 0; k < K; k++) expect(got[i * K + k]).toBeCloseTo(ref[k]!, 4);
      }
    });
  }

  it('on a class-token model, the class-token row of the last block reproduces the logits', async () => {
    const sv = buildSyntheticVit({ head: 'cls', seed: 3 });
    const layout = locateVit(sv.model);
    const last = layout.blocks[layout.blocks.length - 1]!.output;
    const n = 3;
    const T = layout.facts.tokens;
    const D = layout.facts.width;
    const full = await run(exposeOutputs(sv.model, [last]), { input: { data: randomImages(n, 784, 2), dims: [n, 1, 28, 28] } });
    const x = full[last]!.data as Float32Array;
    const cls = new Float32Array(n * D);
    for (let i = 0; i < n; i++) cls.set(x.subarray(i * T * D, i * T * D + D), i * D);
    const tail = extractTail(sv.model, layout, { input: 'row' });
    const out = await run(tail.model, { [tail.input]: { data: cls, dims: [n, D] } });
    const got = out[tail.output]!.data as Float32Array;
    const want = full.logits!.data as Float32Array;
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
  });
});

describe('refusals', () => {
  it('a head that also reads the image input is unsupported (exit 3)', () => {
    const sv = buildSyntheticVit({ head: 'cls', seed: 3 });
    const layout = locateVit(sv.model);
    // logits' = logits + ReduceMean(input) (a skip from the image to the head).
    const g = sv.model.graph!;
    const renamed = g.node.map((n) => (n.output.includes('logits') ? create(NodeProtoSchema, { ...n, output: n.output.map((o) => (o === 'logits' ? 'logits_pre' : o)) }) : n));
    const extra = [
      create(NodeProtoSchema, { opType: 'ReduceMean', input: ['input'], output: ['img_mean'], attribute: [] }),
      create(NodeProtoSchema, { opType: 'Add', input: ['logits_pre', 'img_mean'], output: ['logits'] }),
    ];
    // ReduceMean over all axes keeps dims [1,1,1,1] by default; squeeze not needed for the check.
    const model = create(ModelProtoSchema, { ...sv.model, graph: create(GraphProtoSchema, { ...g, node: [...renamed, ...extra] }) });
    let err: unknown;
    try {
      extractTail(model, layout);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(3);
    expect((err as Error).message).toContain('"input"');
  });
});
