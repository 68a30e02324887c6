// Batch generalization: stale stored shapes are dropped or corrected, shape constants baked at
// batch 1 are rewritten (the fix chosen by looking ahead), and the rewritten model equals the
// original run one image at a time; what cannot be rewritten is reported, with the reason.
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo, type Dim } from '../../src/onnx/builder.js';
import { valueInfoShape } from '../../src/onnx/graph.js';
import { generalizeBatch, dropStaleShapes, fixBatch, conflictText } from '../../src/onnx/rewrite/batch.js';
import { inferShapes } from '../../src/onnx/shapes/infer.js';
import { mulberry32 } from '../../src/random.js';
import { runOnce } from './data.js';

/**
 * A token model traced at batch 1: x [B,4,6] -> Reshape to the fixed [1,4,6]... as a static torch
 * export writes it: patches [1,4,6] joined to a batch-1 class token, a [T,B,D] attention-style
 * reshape to [5*1, 6] for a MatMul and back to [5,1,6].
 */
function baked(batch: Dim = 'batch'): ModelProto {
  const b = new GraphBuilder(17, 'k');
  const rnd = mulberry32(9);
  const w = b.constF32(Array.from({ length: 36 }, () => rnd() - 0.5), [6, 6]);
  const flat = b.op('Reshape', ['x', b.constI64([1, 4, 6])]);
  const cls = b.constF32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [1, 1, 6]);
  const tokens = b.op('Concat', [cls, flat], { axis: 1 }); // [1,5,6]
  const tbd = b.op('Transpose', [tokens], { perm: [1, 0, 2] }); // [5,1,6]
  const merged = b.op('Reshape', [tbd, b.constI64([5, 6])]); // [5*B, 6]
  const y = b.op('MatMul', [merged, w]);
  const back = b.op('Reshape', [y, b.constI64([5, 1, 6])]);
  const out = b.op('Transpose', [back], { perm: [1, 0, 2] }, 'y'); // [1,5,6]
  const g = makeGraph('baked', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [batch, 4, 6])], [tensorValueInfo(out, DataType.FLOAT, [1, 5, 6])], b.initializers);
  g.valueInfo.push(tensorValueInfo(tokens, DataType.FLOAT, [1, 5, 6]), tensorValueInfo(merged, DataType.FLOAT, [5, 6]));
  return makeModel({ graph: g, opset: 17 });
}

function images(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n * 24 }, () => rnd() * 2 - 1);
}

describe('generalizeBatch', () => {
  it('rewrites constants baked at batch 1 and the result equals one-image runs of the original', async () => {
    const m = baked();
    const r = generalizeBatch(m);
    expect(r.status).toBe('rewritten');
    expect(r.repairs.map((x) => (x.kind === 'reshape' ? `reshape ${x.target.join(',')}` : `expand input ${x.input}`))).toEqual([
      'reshape -1,4,6',
      'expand input 0',
      'reshape -1,6', // [5,B,6] -> [5B,6], not [5,6B]: the MatMul after it decides
      'reshape 5,-1,6',
    ]);
    expect(r.stale.dropped.sort()).toEqual(m.graph!.valueInfo.map((v) => v.name).sort());
    expect(r.stale.outputs).toEqual(['y']);
    expect(valueInfoShape(r.model.graph!.output[0]!).dims).toEqual(['batch', 5, 6]);
    const x = images(3, 4);
    const all = await runOnce(r.model, { x: { data: x, dims: [3, 4, 6] } });
    for (let i = 0; i < 3; i++) {
      const one = await runOnce(m, { x: { data: x.slice(i * 24, (i + 1) * 24), dims: [1, 4, 6] } });
      expect(Array.from((all.y!.data as Float32Array).slice(i * 30, (i + 1) * 30))).toEqual(Array.from(one.y!.data as Float32Array));
    }
  });

  it('a declared fixed batch is left alone', () => {
    const r = generalizeBatch(baked(1));
    expect(r.status).toBe('fixed');
    expect(r.repairs).toEqual([]);
  });

  it('reports what it cannot rewrite: an output whose batch is folded into another axis', () => {
    const b = new GraphBuilder(17, 'f');
    const y = b.op('Reshape', [b.op('Relu', ['x']), b.constI64([1, -1])], {}, 'y'); // x.reshape(n, -1) traced at n = 1
    const g = makeGraph('flat', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['batch', 4])], [tensorValueInfo(y, DataType.FLOAT, ['batch', 4])], b.initializers);
    const r = generalizeBatch(makeModel({ graph: g, opset: 17 }));
    expect(r.status).toBe('unproven');
    expect(r.conflicts.map(conflictText)).toEqual([expect.stringContaining('graph output y would be [1,4B]')]);
  });

  it('a model consistent at every batch size is dynamic, untouched', () => {
    const b = new GraphBuilder(17, 'd');
    const y = b.op('Reshape', ['x', b.constI64([0, -1])], {}, 'y');
    const g = makeGraph('d', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['n', 4, 6])], [tensorValueInfo(y, DataType.FLOAT, ['n', 24])], b.initializers);
    const m = makeModel({ graph: g, opset: 17 });
    const r = generalizeBatch(m);
    expect(r.status).toBe('dynamic');
    expect(r.model).toBe(m);
  });
});

describe('dropStaleShapes', () => {
  it('drops value_info that fixes the batch, keeps what agrees, and names the batch of the outputs after the input', () => {
    const b = new GraphBuilder(17, 's');
    const h = b.op('Relu', ['x']);
    const s = b.op('ReduceSum', [h, b.constI64([0])], { keepdims: 0 });
    const y = b.op('Relu', [h], {}, 'y');
    const g = makeGraph('s', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['N', 3])], [tensorValueInfo(y, DataType.FLOAT, [1, 3]), tensorValueInfo(s, DataType.FLOAT, [3])], b.initializers);
    g.valueInfo.push(tensorValueInfo(h, DataType.FLOAT, [1, 3]));
    const m = makeModel({ graph: g, opset: 17 });
    const d = dropStaleShapes(m, inferShapes(m), 'N');
    expect(d.dropped).toEqual([h]);
    expect(d.outputs).toEqual(['y']);
    expect(valueInfoShape(d.model.graph!.output[0]!).dims).toEqual(['N', 3]);
    expect(valueInfoShape(d.model.graph!.output[1]!).dims).toEqual([3]);
  });
});

describe('fixBatch', () => {
  it('fixes the batch input and the batch outputs at n', () => {
    const m = fixBatch(baked(), 1);
    expect(valueInfoShape(m.graph!.input[0]!).dims).toEqual([1, 4, 6]);
    expect(valueInfoShape(m.graph!.output[0]!).dims).toEqual([1, 5, 6]);
    expect(generalizeBatch(m).status).toBe('fixed');
  });
});
