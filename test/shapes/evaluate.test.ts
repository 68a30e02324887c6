// The shape evaluator against ONNX Runtime as an independent oracle: each case is one node of a
// shape-manipulating op at a given opset, run by evaluateNode() and by ONNX Runtime on the same
// inputs; dims, element type and every element must agree exactly. Cases follow the corner cases
// of ONNX's operator tests (negative axes, clamped and reversed slices, 0 and -1 in Reshape
// targets, empty ranges, Shape start/end, integer division and modulo signs).
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { makeGraph, makeModel, makeNode, namedValueInfo, tensorValueInfo } from '../../src/onnx/builder.js';
import type { AttrValue } from '../../src/onnx/attributes.js';
import { encodeModel } from '../../src/onnx/model.js';
import { createSession, type Feed, type ModelSession } from '../../src/runtime/session.js';
import { evaluateNode, FOLDED_OPS, ShapeEvalError } from '../../src/onnx/shapes/evaluate.js';
import { dataTypeOfArray, hostToTensor, type HostTensor } from '../../src/onnx/tensor.js';

const f32 = (data: number[], dims: number[] = [data.length]): HostTensor => ({ dataType: DataType.FLOAT, dims, data: Float32Array.from(data) });
const i64 = (data: (number | bigint)[], dims: number[] = [data.length]): HostTensor => ({ dataType: DataType.INT64, dims, data: BigInt64Array.from(data.map(BigInt)) });
const i32 = (data: number[], dims: number[] = [data.length]): HostTensor => ({ dataType: DataType.INT32, dims, data: Int32Array.from(data) });
const bool = (data: number[], dims: number[] = [data.length]): HostTensor => ({ dataType: DataType.BOOL, dims, data: Uint8Array.from(data) });
const iota = (n: number) => Array.from({ length: n }, (_, i) => i * 0.5 - 1);
const MAX = 2n ** 63n - 1n;

interface Case {
  name: string;
  op: string;
  opset: number;
  attrs?: Record<string, AttrValue>;
  inputs: (HostTensor | undefined)[];
  outputs?: number;
}

const cases: Case[] = [
  { name: 'Shape of a rank-3 float tensor', op: 'Shape', opset: 13, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Shape start=1 (opset 15)', op: 'Shape', opset: 15, attrs: { start: 1 }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Shape start=-1', op: 'Shape', opset: 15, attrs: { start: -1 }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Shape end=-1', op: 'Shape', opset: 15, attrs: { end: -1 }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Shape start/end clamped', op: 'Shape', opset: 15, attrs: { start: -10, end: 10 }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Size', op: 'Size', opset: 13, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Gather axis 0, negative index', op: 'Gather', opset: 13, inputs: [i64([5, 7, 9, 11]), i64([-1, 0])] },
  { name: 'Gather scalar index drops the axis', op: 'Gather', opset: 13, inputs: [i64([5, 7, 9, 11]), i64([2], [])] },
  { name: 'Gather axis 1 with 2-D indices', op: 'Gather', opset: 13, attrs: { axis: 1 }, inputs: [f32(iota(12), [3, 4]), i64([0, 2, 1, 3], [2, 2])] },
  { name: 'Gather axis -1', op: 'Gather', opset: 11, attrs: { axis: -1 }, inputs: [f32(iota(12), [3, 4]), i64([3, -4])] },
  { name: 'Slice two axes, end past the size', op: 'Slice', opset: 13, inputs: [f32(iota(15), [3, 5]), i64([0, 1]), i64([2, 1000]), i64([0, 1])] },
  { name: 'Slice reversed with step -2', op: 'Slice', opset: 13, inputs: [f32(iota(15), [3, 5]), i64([-1]), i64([-1000]), i64([1]), i64([-2])] },
  { name: 'Slice negative axis, INT64_MAX end', op: 'Slice', opset: 13, inputs: [f32(iota(15), [3, 5]), i64([1]), i64([MAX]), i64([-1])] },
  { name: 'Slice start beyond the end: empty', op: 'Slice', opset: 13, inputs: [f32(iota(15), [3, 5]), i64([7]), i64([9]), i64([1])] },
  { name: 'Slice without axes and steps', op: 'Slice', opset: 10, inputs: [i64([3, 5, 7, 9]), i64([1]), i64([-1])] },
  { name: 'Slice attributes (opset 9)', op: 'Slice', opset: 9, attrs: { starts: [0, -2], ends: [1, 100], axes: [0, 1] }, inputs: [f32(iota(15), [3, 5])] },
  { name: 'Slice backwards from before the start: start clamps to 0', op: 'Slice', opset: 13, inputs: [i64([4, 5, 6]), i64([-100]), i64([-(2n ** 63n)]), i64([0]), i64([-1])] },
  { name: 'Slice backwards from past the end', op: 'Slice', opset: 13, inputs: [i64([4, 5, 6]), i64([100]), i64([0]), i64([0]), i64([-1])] },
  { name: 'Slice step 3 clamped', op: 'Slice', opset: 13, inputs: [i64([0, 1, 2, 3, 4, 5, 6, 7]), i64([-100]), i64([100]), i64([0]), i64([3])] },
  { name: 'Concat axis -1', op: 'Concat', opset: 13, attrs: { axis: -1 }, inputs: [f32(iota(2), [2, 1]), f32(iota(6), [2, 3])] },
  { name: 'Concat of int64 vectors', op: 'Concat', opset: 11, attrs: { axis: 0 }, inputs: [i64([1]), i64([-1, 64]), i64([0])] },
  { name: 'Concat with an empty input', op: 'Concat', opset: 13, attrs: { axis: 0 }, inputs: [i64([], [0]), i64([4, 5])] },
  { name: 'Unsqueeze attribute axes [0,-1] (opset 11)', op: 'Unsqueeze', opset: 11, attrs: { axes: [0, -1] }, inputs: [f32(iota(3))] },
  { name: 'Unsqueeze axes input (opset 13)', op: 'Unsqueeze', opset: 13, inputs: [i64([4], []), i64([0])] },
  { name: 'Unsqueeze unsorted axes', op: 'Unsqueeze', opset: 13, inputs: [f32(iota(6), [2, 3]), i64([3, 0])] },
  { name: 'Squeeze axis -1 (opset 13)', op: 'Squeeze', opset: 13, inputs: [f32(iota(2), [2, 1]), i64([-1])] },
  { name: 'Squeeze without axes', op: 'Squeeze', opset: 13, inputs: [f32(iota(3), [1, 3, 1])] },
  { name: 'Squeeze attribute axes (opset 11)', op: 'Squeeze', opset: 11, attrs: { axes: [0] }, inputs: [i64([7], [1])] },
  { name: 'Reshape with 0 (copy) and -1', op: 'Reshape', opset: 13, inputs: [f32(iota(24), [2, 3, 4]), i64([4, 0, -1])] },
  { name: 'Reshape to a scalar', op: 'Reshape', opset: 13, inputs: [i64([9], [1, 1]), i64([], [0])] },
  { name: 'Reshape allowzero=1 keeps a 0 dim', op: 'Reshape', opset: 14, attrs: { allowzero: 1 }, inputs: [f32([], [0, 3]), i64([3, 0])] },
  { name: 'Expand adds a leading axis', op: 'Expand', opset: 13, inputs: [f32(iota(3), [3, 1]), i64([2, 1, 6])] },
  { name: 'Expand with a shorter shape', op: 'Expand', opset: 13, inputs: [f32(iota(3), [3, 1]), i64([3])] },
  { name: 'Expand of an int64 vector', op: 'Expand', opset: 8, inputs: [i64([1, -1, -1]), i64([2, 3])] },
  { name: 'Range int64', op: 'Range', opset: 11, inputs: [i64([1], []), i64([10], []), i64([3], [])] },
  { name: 'Range int64 negative delta', op: 'Range', opset: 11, inputs: [i64([10], []), i64([1], []), i64([-3], [])] },
  { name: 'Range empty', op: 'Range', opset: 11, inputs: [i64([5], []), i64([1], []), i64([1], [])] },
  { name: 'Range float', op: 'Range', opset: 11, inputs: [f32([1], []), f32([2], []), f32([0.3], [])] },
  { name: 'Range int32', op: 'Range', opset: 11, inputs: [i32([-2], []), i32([3], []), i32([2], [])] },
  { name: 'ConstantOfShape default float zeros', op: 'ConstantOfShape', opset: 9, inputs: [i64([2, 3])] },
  { name: 'ConstantOfShape int64 value', op: 'ConstantOfShape', opset: 9, attrs: { value: hostToTensor('value', BigInt64Array.of(7n), [1]) }, inputs: [i64([2])] },
  { name: 'ConstantOfShape scalar from an empty shape', op: 'ConstantOfShape', opset: 9, inputs: [i64([], [0])] },
  { name: 'Cast float -> int64 truncates', op: 'Cast', opset: 13, attrs: { to: DataType.INT64 }, inputs: [f32([-1.7, 2.5, 3.9, -0.2])] },
  { name: 'Cast int64 -> float', op: 'Cast', opset: 13, attrs: { to: DataType.FLOAT }, inputs: [i64([3, -8, 16777217])] },
  { name: 'Cast int64 -> bool', op: 'Cast', opset: 13, attrs: { to: DataType.BOOL }, inputs: [i64([0, 5, -1])] },
  { name: 'Cast int64 -> int32', op: 'Cast', opset: 13, attrs: { to: DataType.INT32 }, inputs: [i64([7, -2])] },
  { name: 'Div int64 truncates toward zero', op: 'Div', opset: 14, inputs: [i64([7, -7, 6, 9]), i64([2, 2, -4, 3])] },
  { name: 'Div int64 broadcast', op: 'Div', opset: 13, inputs: [i64([64, 96]), i64([8], [])] },
  { name: 'Mul int64 broadcast', op: 'Mul', opset: 14, inputs: [i64([3, -2, 5]), i64([4])] },
  { name: 'Add int32', op: 'Add', opset: 14, inputs: [i32([3, -2, 5]), i32([10, 20, 30])] },
  { name: 'Sub int64', op: 'Sub', opset: 14, inputs: [i64([3, -2, 5]), i64([10], [])] },
  { name: 'Mod int64 (sign of the divisor)', op: 'Mod', opset: 13, inputs: [i64([-4, 7, 5, -9]), i64([3, -3, 2, -4])] },
  { name: 'Mod fmod=1 float', op: 'Mod', opset: 13, attrs: { fmod: 1 }, inputs: [f32([-4.5, 7.25, 5]), f32([3, -3, 2])] },
  { name: 'Equal int64', op: 'Equal', opset: 13, inputs: [i64([2, -1, 3]), i64([-1])] },
  { name: 'Where of int64', op: 'Where', opset: 16, inputs: [bool([0, 1, 0]), i64([1, 1, 1]), i64([2, -1, 3])] },
  { name: 'Less int64', op: 'Less', opset: 13, inputs: [i64([1, 5, 3]), i64([3])] },
  { name: 'Greater float', op: 'Greater', opset: 13, inputs: [f32([1, 5, 3]), f32([3])] },
  { name: 'ReduceProd attribute axes, keepdims 0', op: 'ReduceProd', opset: 13, attrs: { axes: [0], keepdims: 0 }, inputs: [i64([2, 3, 4, 5], [2, 2])] },
  { name: 'ReduceProd of a shape vector', op: 'ReduceProd', opset: 13, attrs: { keepdims: 1 }, inputs: [i64([2, 17, 16])] },
  { name: 'ReduceSum axes input (opset 13)', op: 'ReduceSum', opset: 13, inputs: [i64([1, 2, 3, 4, 5, 6], [2, 3]), i64([-1])] },
  { name: 'ReduceMax axes input (opset 18)', op: 'ReduceMax', opset: 18, attrs: { keepdims: 0 }, inputs: [f32([1, 9, 3, 4, 5, 6], [2, 3]), i64([0])] },
  { name: 'ReduceMin over all axes', op: 'ReduceMin', opset: 13, attrs: { keepdims: 0 }, inputs: [i64([4, -2, 7, 1], [2, 2])] },
  { name: 'Tile', op: 'Tile', opset: 13, inputs: [f32(iota(4), [2, 2]), i64([2, 3])] },
  { name: 'Split by sizes input (opset 13)', op: 'Split', opset: 13, attrs: { axis: 0 }, inputs: [i64([1, 2, 3, 4, 5]), i64([2, 3])], outputs: 2 },
  { name: 'Split num_outputs, last smaller (opset 18)', op: 'Split', opset: 18, attrs: { axis: 0, num_outputs: 3 }, inputs: [i64([1, 2, 3, 4, 5, 6, 7])], outputs: 3 },
  { name: 'Split equal parts (opset 11)', op: 'Split', opset: 11, attrs: { axis: 1 }, inputs: [f32(iota(12), [2, 6])], outputs: 3 },
  { name: 'Transpose default perm', op: 'Transpose', opset: 13, inputs: [f32(iota(6), [2, 3])] },
  { name: 'Transpose perm', op: 'Transpose', opset: 13, attrs: { perm: [1, 2, 0] }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Flatten axis 2', op: 'Flatten', opset: 13, attrs: { axis: 2 }, inputs: [f32(iota(24), [2, 3, 4])] },
  { name: 'Max variadic int64', op: 'Max', opset: 13, inputs: [i64([1, 5, -3]), i64([2]), i64([0, 9, -7])] },
  { name: 'Min int64', op: 'Min', opset: 13, inputs: [i64([1, 5, -3]), i64([2])] },
  { name: 'Sum float', op: 'Sum', opset: 13, inputs: [f32([1, 2]), f32([0.5, 0.25]), f32([4])] },
  { name: 'Neg int64', op: 'Neg', opset: 13, inputs: [i64([3, -4, 0])] },
  { name: 'Abs int64', op: 'Abs', opset: 13, inputs: [i64([3, -4, 0])] },
  { name: 'Sqrt float', op: 'Sqrt', opset: 13, inputs: [f32([4, 2, 0.25])] },
  { name: 'Floor float', op: 'Floor', opset: 13, inputs: [f32([-1.5, 2.5, 3])] },
  { name: 'Ceil float', op: 'Ceil', opset: 13, inputs: [f32([-1.5, 2.5, 3])] },
  { name: 'Not', op: 'Not', opset: 13, inputs: [bool([0, 1])] },
  { name: 'Identity of int64', op: 'Identity', opset: 13, inputs: [i64([1, 2])] },
];

function feedOf(t: HostTensor): Feed {
  if (t.dataType === DataType.BOOL) return { data: t.data as Uint8Array, dims: t.dims, type: 'bool' };
  return { data: t.data as Feed['data'], dims: t.dims };
}

const sessions: ModelSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

/** Run the one-node model in ONNX Runtime. */
async function oracle(c: Case): Promise<{ dims: number[]; type: string; data: unknown[] }[]> {
  const n = c.outputs ?? 1;
  const inNames = c.inputs.map((t, i) => (t ? `in${i}` : ''));
  const outNames = Array.from({ length: n }, (_, i) => `out${i}`);
  const node = makeNode(c.op, inNames, outNames, c.attrs ?? {});
  const inputs = c.inputs.flatMap((t, i) => (t ? [tensorValueInfo(`in${i}`, t.dataType, t.dims)] : []));
  const outputs = outNames.map((o) => namedValueInfo(o));
  const model = makeModel({ graph: makeGraph('case', [node], inputs, outputs), opset: c.opset });
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  sessions.push(s);
  const feeds: Record<string, Feed> = {};
  c.inputs.forEach((t, i) => {
    if (t) feeds[`in${i}`] = feedOf(t);
  });
  const r = await s.run(feeds, outNames);
  return outNames.map((o) => ({ dims: r[o]!.dims, type: r[o]!.type, data: r[o]!.type === 'bool' ? Array.from(r[o]!.data as Uint8Array, (x) => x !== 0) : Array.from(r[o]!.data as ArrayLike<unknown>) }));
}

const ORT_TYPE: Partial<Record<DataType, string>> = { [DataType.FLOAT]: 'float32', [DataType.INT64]: 'int64', [DataType.INT32]: 'int32', [DataType.BOOL]: 'bool', [DataType.DOUBLE]: 'float64' };

describe('evaluateNode agrees with ONNX Runtime', () => {
  it.each(cases)('$name ($op, opset $opset)', async (c) => {
    const node = makeNode(c.op, c.inputs.map((t, i) => (t ? `in${i}` : '')), Array.from({ length: c.outputs ?? 1 }, (_, i) => `out${i}`), c.attrs ?? {});
    const mine = evaluateNode(node, c.opset, c.inputs);
    const want = await oracle(c);
    expect(mine.length).toBe(want.length);
    mine.forEach((m, k) => {
      expect(m.dims, `output ${k} dims`).toEqual(want[k]!.dims);
      expect(ORT_TYPE[m.dataType] ?? `dtype ${m.dataType}`, `output ${k} type`).toBe(want[k]!.type);
      const got = m.dataType === DataType.BOOL ? Array.from(m.data as Uint8Array, (x) => x !== 0) : Array.from(m.data as ArrayLike<unknown>);
      expect(got, `output ${k} values`).toEqual(want[k]!.data);
      expect(dataTypeOfArray(m.data)).toBe(m.dataType === DataType.BOOL ? DataType.UINT8 : m.dataType);
    });
  });
});

describe('evaluateNode refuses what it does not evaluate', () => {
  it('ops without a value rule, and inputs that do not fit', () => {
    expect(() => evaluateNode(makeNode('MatMul', ['a', 'b'], ['c']), 13, [f32([1], [1, 1]), f32([1], [1, 1])])).toThrow(ShapeEvalError);
    expect(() => evaluateNode(makeNode('Reshape', ['a', 'b'], ['c']), 13, [f32(iota(6), [2, 3]), i64([4, -1])])).toThrow(/Reshape/);
    expect(() => evaluateNode(makeNode('Div', ['a', 'b'], ['c']), 13, [i64([1]), i64([0])])).toThrow(/not computed/);
  });
  it('lists the evaluated ops', () => {
    for (const op of ['Shape', 'Size', 'Gather', 'Slice', 'Concat', 'Unsqueeze', 'Squeeze', 'Reshape', 'Expand', 'Range', 'ConstantOfShape']) expect(FOLDED_OPS).toContain(op);
  });
});
