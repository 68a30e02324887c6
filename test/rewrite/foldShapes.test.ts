// Shape folding: shape subgraphs become constants (Reshape targets with -1/0 on the batch axis,
// open Slice ends), batch-dependent shape values are rebuilt from the image input alone, and the
// folded model computes exactly what the original does at batch 1, 2 and 7, on hand-built graphs
// and on every fixture model; the layout vitpath locates is unchanged.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { Graph } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { toNumbers } from '../../src/onnx/tensor.js';
import { foldShapes, reshapeConstant } from '../../src/onnx/rewrite/foldShapes.js';
import { BATCH, lin, toDim } from '../../src/onnx/shapes/sym.js';
import { locateVit } from '../../src/vit/locate.js';
import { mulberry32 } from '../../src/random.js';
import { runOnce, FIXTURE_MODELS } from './data.js';

const EXPORTED = path.resolve(__dirname, '../../fixtures/exports/torchvision');

/** Seeded inputs for every graph input, batch `n` on the symbolic axis. */
function feedsFor(m: ModelProto, n: number, seed = 3) {
  const rnd = mulberry32(seed);
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const v of m.graph!.input) {
    const t = v.type!.value.value as { shape?: { dim: { value: { case?: string; value?: unknown } }[] } };
    const dims = t.shape!.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : n));
    const size = dims.reduce((a, b) => a * b, 1);
    feeds[v.name] = { data: Float32Array.from({ length: size }, () => rnd() * 2 - 1), dims };
  }
  return feeds;
}

async function sameOutputs(a: ModelProto, b: ModelProto, batches: number[], tol = 0): Promise<number> {
  let worst = 0;
  for (const n of batches) {
    const feeds = feedsFor(a, n, n);
    const ra = await runOnce(a, feeds);
    const rb = await runOnce(b, feeds);
    for (const o of Object.keys(ra)) {
      const x = ra[o]!.data as Float32Array;
      const y = rb[o]!.data as Float32Array;
      expect(rb[o]!.dims).toEqual(ra[o]!.dims);
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(x[i]!)));
    }
  }
  expect(worst).toBeLessThanOrEqual(tol);
  return worst;
}

/** torch MultiheadAttention's reshape of q ([T,B,D] -> [T,B*H,D/H]) with every shape computed. */
function mhaLike(): ModelProto {
  const b = new GraphBuilder(14, 'm');
  const t = b.op('Transpose', ['x'], { perm: [1, 0, 2] }); // [T, B, D]
  const shape = b.op('Shape', [t]);
  const T = b.op('Gather', [shape, b.constI64([0], [])], { axis: 0 });
  const bs = b.op('Gather', [shape, b.constI64([1], [])], { axis: 0 });
  const D = b.op('Gather', [shape, b.constI64([2], [])], { axis: 0 });
  const bh = b.op('Mul', [bs, b.constI64([2], [])]);
  const dh = b.op('Cast', [b.op('Cast', [b.op('Div', [D, b.constI64([2], [])])], { to: DataType.INT64 })], { to: DataType.INT64 });
  const target = b.op('Concat', [b.unsqueeze(T, [0]), b.unsqueeze(bh, [0]), b.unsqueeze(dh, [0])], { axis: 0 });
  const q = b.op('Reshape', [t, target], {}, 'q');
  // chunk(2, dim=-1) as torch exports it: Slice with starts/ends from (size + 1) / 2.
  const last = b.op('Gather', [b.op('Shape', [q]), b.constI64([-1])], { axis: 0 });
  const half = b.op('Div', [b.op('Add', [last, b.constI64([1])]), b.constI64([2])]);
  const first = b.op('Slice', [q, b.constI64([0]), half, b.constI64([-1])], {}, 'first');
  // x[:B] on the batch axis of the original input, and an Expand of a token to the batch.
  const nB = b.slice(b.op('Shape', ['x']), [0], [1], [0]);
  const head = b.op('Slice', ['x', b.constI64([0]), nB, b.constI64([0])], {}, 'head');
  const tok = b.op('Expand', [b.constF32([1, 2, 3, 4], [1, 1, 4]), b.op('Concat', [nB, b.constI64([1, 1])], { axis: 0 })], {}, 'tok');
  const g = makeGraph(
    'mha',
    b.nodes,
    [tensorValueInfo('x', DataType.FLOAT, ['batch', 5, 4])],
    [tensorValueInfo(first, DataType.FLOAT), tensorValueInfo(head, DataType.FLOAT), tensorValueInfo(tok, DataType.FLOAT)],
    b.initializers,
  );
  return makeModel({ graph: g, opset: 14 });
}

describe('foldShapes on a hand-built attention reshape', () => {
  const m = mhaLike();
  const f = foldShapes(m);
  const g = new Graph(f.model);

  it('turns the Reshape target and Slice bounds into constants, -1 where the batch is', () => {
    const reshape = g.producerOf('q')!;
    expect(toNumbers(g.constantValue(reshape.input[1]!)!)).toEqual([5, -1, 2]);
    const slice = g.producerOf('first')!;
    expect(slice.input.slice(1).map((i) => toNumbers(g.constantValue(i)!))).toEqual([[0], [1], [-1]]);
    const head = g.producerOf('head')!;
    expect(g.constantValue(head.input[2]!)!.data[0]).toBe(2n ** 63n - 1n); // x[:B]: to the end
    expect(f.batchShapes.map((s) => `${s.value}:${s.as}`).sort()).toEqual(['[5,2B,2]:constant', '[B,1,1]:batch-source', '[B]:constant']);
  });

  it('keeps only the batch size computed, read once from the input', () => {
    const shapes = f.model.graph!.node.filter((n) => n.opType === 'Shape');
    expect(shapes.map((n) => n.input[0])).toEqual(['x']);
    expect(f.refused).toEqual([]);
    expect(f.batchAxes.get('head')).toBe(0); // [B,5,4]
    expect(f.batchAxes.has('q')).toBe(false); // [5,2B,2]: the batch is merged with the heads
  });

  it('computes the same at batch 1, 2 and 7', async () => {
    await sameOutputs(m, f.model, [1, 2, 7]);
  });
});

describe('foldShapes reports what it leaves', () => {
  it('a Shape of a tensor with unknown dims (an op of another domain) stays, with the reason', () => {
    const b = new GraphBuilder(17, 'u');
    const c = b.node('Mystery', ['x'], {}, 1, 'com.example')[0]!;
    const y = b.op('Reshape', ['x', b.op('Shape', [c])], {}, 'y');
    const g = makeGraph('u', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['batch', 3])], [tensorValueInfo(y, DataType.FLOAT)], b.initializers);
    const f = foldShapes(makeModel({ graph: g, opset: 17 }));
    expect(f.removed).toBe(0);
    expect(f.refused).toEqual([{ node: expect.any(String), op: 'Shape', reason: expect.stringMatching(/dims of .* are not known \(from Mystery/) }]);
  });

  it('reshapeConstant: 0 where the batch dim is copied from the same axis, -1 for one other, none when two remain', () => {
    expect(reshapeConstant([BATCH, 4, 6], [BATCH, 24], false)).toEqual([0n, 24n]);
    expect(reshapeConstant([4, BATCH, 6], [toDim(lin(4n, 0n)), 6], false)).toEqual([-1n, 6n]);
    expect(reshapeConstant([BATCH, 4], [BATCH, 4], true)).toEqual([-1n, 4n]);
    expect(reshapeConstant([4, BATCH], [BATCH, toDim(lin(2n, 0n)), 2], false)).toBeUndefined();
  });
});

const exported = fs.existsSync(EXPORTED) ? fs.readdirSync(EXPORTED).filter((f) => /^tv-vit-op\d+\.onnx$/.test(f)) : [];
const fixtures = fs.readdirSync(FIXTURE_MODELS).filter((f) => f.endsWith('.onnx'));

describe.each(fixtures)('foldShapes on fixtures/models/%s', (file) => {
  it('leaves the outputs and the located layout as they were', async () => {
    const m = loadModel(path.join(FIXTURE_MODELS, file)).proto;
    const f = foldShapes(m);
    expect(locateVit(f.model)).toEqual(locateVit(m));
    await sameOutputs(m, f.model, [1, 2, 7].filter((n) => n === 1 || !/fixed-batch1/.test(file)));
  });
});

describe.each(exported)('foldShapes on the torchvision export %s', (file) => {
  it('folds nn.MultiheadAttention shape arithmetic and computes the same at batch 1, 2 and 7', async () => {
    const m = loadModel(path.join(EXPORTED, file)).proto;
    const f = foldShapes(m);
    const left = f.model.graph!.node.filter((n) => n.opType === 'Shape');
    expect(left).toHaveLength(1); // the batch size, for the class token's Expand
    expect(f.refused).toEqual([]);
    for (const n of f.model.graph!.node.filter((x) => x.opType === 'Slice' || x.opType === 'Reshape')) {
      for (const i of n.input.slice(1)) if (i) expect(new Graph(f.model).isConstant(i), `${n.name} input ${i}`).toBe(true);
    }
    // ONNX Runtime fuses the folded graph differently: equal to float rounding.
    await sameOutputs(m, f.model, [1, 2, 7], 1e-5);
  });
});
