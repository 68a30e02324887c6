// Shape inference with the batch size symbolic: values of shape arithmetic as a*B + c, refusals
// where a value would not stay linear in B, conflicts for constants baked at batch 1 and the fixes
// offered for them, all on small hand-built graphs whose answer is known.
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto, type NodeProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo, type Dim as DeclDim } from '../../src/onnx/builder.js';
import { inferShapes, ShapePass } from '../../src/onnx/shapes/infer.js';
import type { Repair } from '../../src/onnx/shapes/rule.js';
import { BATCH, dimsText, symText, lin, symAt, symCompare, symDiv, symMul, type SymInt } from '../../src/onnx/shapes/sym.js';
import type { Val } from '../../src/onnx/shapes/value.js';

/** A model with input x [batch, ...rest] built by `body`, which returns the outputs. */
function model(rest: number[], body: (b: GraphBuilder) => string[], opset = 17, batch: DeclDim = 'batch'): ModelProto {
  const b = new GraphBuilder(opset, 't');
  const outs = body(b);
  const g = makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [batch, ...rest])], outs.map((o) => tensorValueInfo(o, DataType.FLOAT)), b.initializers);
  return makeModel({ graph: g, opset });
}

const text = (v: Val | undefined) => (v ? `[${v.data.map((e) => symText(e as SymInt)).join(',')}]` : 'unknown');

describe('sym arithmetic', () => {
  it('stays linear or refuses', () => {
    expect(symMul(BATCH, 3n)).toEqual(lin(3n, 0n));
    expect(symMul(BATCH, BATCH)).toBeUndefined();
    expect(symDiv(lin(6n, 4n), 2n)).toEqual(lin(3n, 2n));
    expect(symDiv(lin(6n, 3n), 2n)).toBeUndefined(); // (6B+3)/2 is not exact for every B
    expect(symDiv(-7n, 2n)).toBe(-3n); // truncation, as ONNX Runtime's int64 Div
    expect(symCompare(lin(2n, 0n), -1n)).toBe(1);
    expect(symCompare(BATCH, 2n)).toBeUndefined();
    expect(symAt(lin(17n, 1n), 3)).toBe(52n);
    expect(symText(lin(-2n, 5n))).toBe('-2B+5');
  });
});

describe('inferShapes', () => {
  it('carries the batch size through Shape -> Gather -> Mul/Div -> Unsqueeze -> Concat -> Reshape (torch MultiheadAttention)', () => {
    let target = '';
    let half = '';
    let inexact = '';
    const m = model([6, 4], (b) => {
      const shape = b.op('Shape', ['x']);
      const bs = b.op('Gather', [shape, b.constI64([0], [])], { axis: 0 });
      const heads = b.op('Mul', [bs, b.constI64([2], [])]);
      const dh = b.op('Div', [b.op('Gather', [shape, b.constI64([2], [])], { axis: 0 }), b.constI64([2], [])]);
      half = dh;
      inexact = b.op('Div', [bs, b.constI64([2], [])]);
      target = b.op('Concat', [b.constI64([6]), b.unsqueeze(heads, [0]), b.unsqueeze(dh, [0])], { axis: 0 });
      const t = b.op('Transpose', ['x'], { perm: [1, 0, 2] });
      return [b.op('Reshape', [t, target])];
    });
    const r = inferShapes(m);
    expect(r.conflicts).toEqual([]);
    expect(text(r.infos.get(target)?.value)).toBe('[6,2B,2]');
    expect(text(r.infos.get(half)?.value)).toBe('[2]');
    expect(r.infos.get(inexact)?.value).toBeUndefined(); // B/2 is not an integer for every B
    expect(dimsText(r.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[6,2B,2]');
  });

  it('decides Equal/Where on batch-dependent values when the answer holds for every B (torch expand(n, -1, -1))', () => {
    let where = '';
    const m = model([3], (b) => {
      const n = b.slice(b.op('Shape', ['x']), [0], [1], [0]);
      const shape = b.op('Concat', [n, b.constI64([-1, -1])], { axis: 0 });
      const ones = b.op('ConstantOfShape', [b.op('Shape', [shape])], { value: (() => { const h = new GraphBuilder(17); h.constI64([1]); return h.initializers[0]!; })() });
      const minus = b.op('Mul', [ones, b.constI64([-1], [])]);
      where = b.op('Where', [b.op('Equal', [shape, minus]), ones, shape]);
      return [b.op('Expand', [b.constF32([0.5, 0.25, 1], [1, 1, 3]), where])];
    });
    const r = inferShapes(m);
    expect(text(r.infos.get(where)?.value)).toBe('[B,1,1]');
    expect(dimsText(r.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[B,1,3]');
  });

  it('Slice of the batch axis: [k:] and [:INT64_MAX] follow B; [0:1] is one row at every B', () => {
    const m = model([3], (b) => [b.slice('x', [1], [2 ** 31 - 1], [0]), b.slice('x', [0], [1], [0]), b.slice('x', [-1], [2 ** 31 - 1], [1])]);
    const r = inferShapes(m);
    const o = m.graph!.output.map((v) => dimsText(r.infos.get(v.name)?.dims));
    expect(o).toEqual(['[B-1,3]', '[1,3]', '[B,1]']);
  });

  it('Range up to a batch-dependent limit has a batch-dependent length', () => {
    let range = '';
    const m = model([2], (b) => {
      const n = b.op('Gather', [b.op('Shape', ['x']), b.constI64([0], [])], { axis: 0 });
      range = b.op('Range', [b.constI64([0], []), n, b.constI64([1], [])]);
      return [b.op('Cast', [range], { to: DataType.FLOAT })];
    });
    const r = inferShapes(m);
    expect(dimsText(r.infos.get(range)?.dims)).toBe('[B]');
    expect(r.infos.get(range)?.value).toBeUndefined();
  });

  it('a Reshape target fixed at batch 1 is a conflict, with fixes offered (-1 on the batch axis first)', () => {
    const m = model([4, 6], (b) => [b.op('Reshape', ['x', b.constI64([1, 24])])]);
    const r = inferShapes(m);
    expect(r.conflicts.map((c) => c.message)).toEqual(['Reshape of [B,4,6] to a fixed [1,24] holds only at batch 1']);
    const offered: Repair[][] = [];
    const fixed = ShapePass.start(m, {}, (c) => {
      offered.push(c);
      return c[0];
    })
      .run()
      .result();
    expect(offered[0]!.map((c) => (c.kind === 'reshape' ? c.target.join(',') : ''))).toEqual(['-1,24', '1,-1']);
    expect(fixed.conflicts).toEqual([]);
    expect(dimsText(fixed.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[B,24]');
  });

  it('offers every axis the batch can take in a merged dim ([17,B,8] -> [17,8]: [17B,8] or [17,8B])', () => {
    const m = model([17, 8], (b) => [b.op('Reshape', [b.op('Transpose', ['x'], { perm: [1, 0, 2] }), b.constI64([17, 8])])]);
    const offered: string[] = [];
    ShapePass.start(m, {}, (c) => {
      offered.push(...c.map((x) => (x.kind === 'reshape' ? x.target.join(',') : '')));
      return undefined;
    }).run();
    expect(offered.sort()).toEqual(['-1,8', '17,-1']);
  });

  it('a batch-1 constant joined to the batch-dependent stream: Concat conflict, fixed by expanding it', () => {
    const m = model([4, 3], (b) => [b.op('Concat', [b.constF32([1, 2, 3], [1, 1, 3]), 'x'], { axis: 1 })]);
    const r = inferShapes(m);
    expect(r.conflicts).toHaveLength(1);
    expect(dimsText(r.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[1,5,3]');
    const fixed = ShapePass.start(m, {}, (c) => c[0]).run().result();
    expect(fixed.repairs.map((x) => x.kind)).toEqual(['concat-expand']);
    expect(dimsText(fixed.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[B,5,3]');
  });

  it('flags Squeeze of the batch axis and a product whose inner size depends on the batch', () => {
    const m = model([3], (b) => [b.squeeze('x', [0]), b.op('MatMul', [b.op('Transpose', ['x'], { perm: [1, 0] }), b.constF32([1, 2, 3], [3, 1])])]);
    const r = inferShapes(m);
    expect(r.conflicts.map((c) => c.node.opType).sort()).toEqual(['MatMul', 'Squeeze']);
  });

  it('a fixed batch is a plain number; nodes of other domains and ops without a rule leave their outputs unknown', () => {
    const m = model(
      [3],
      (b) => {
        const c = b.node('Custom', ['x'], {}, 1, 'com.example')[0]!;
        return [b.op('Reshape', [b.op('Relu', [c]), b.op('Shape', [c])]), b.op('Reshape', ['x', b.constI64([6])])];
      },
      17,
      2,
    );
    const r = inferShapes(m);
    expect(r.unknownOps.get('Custom')).toBe(1);
    expect(dimsText(r.infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[?]');
    expect(dimsText(r.infos.get(m.graph!.output[1]!.name)?.dims)).toBe('[6]');
    expect(r.conflicts).toEqual([]);
  });

  it('never reads stored value_info', () => {
    const m = model([3], (b) => [b.op('Relu', ['x'])]);
    m.graph!.valueInfo.push(tensorValueInfo(m.graph!.output[0]!.name, DataType.FLOAT, [1, 3]));
    expect(dimsText(inferShapes(m).infos.get(m.graph!.output[0]!.name)?.dims)).toBe('[B,3]');
  });

  it('reports the node of the first conflict and can stop there', () => {
    const m = model([4], (b) => [b.op('Reshape', [b.op('Reshape', ['x', b.constI64([4])]), b.constI64([2, 2])])]);
    const r = inferShapes(m, { stopAtConflict: true });
    expect((r.order[r.firstConflict] as NodeProto).opType).toBe('Reshape');
    expect(r.conflicts).toHaveLength(1);
  });
});
