// joinStates and pinReshapes on small graphs run in ONNX Runtime: joined rows follow the rows fed at
// the bottom in join order and read their state rows through the join index; a join on a graph output
// or on a graph input is refused; Reshapes that infer a static size (-1) from an empty input fail in
// ONNX Runtime and run once pinned, a shape constant shared by two Reshapes forked per node.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { createSession } from '../../src/runtime/session.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { joinStates, pinReshapes } from '../../src/onnx/rewrite/joinStates.js';

const F32 = DataType.FLOAT;

/** x [b, 2] -> h = Relu(x * 2) -> y = h + 1 (output). */
function chain() {
  const b = new GraphBuilder(13, 'm', ['x']);
  const h = b.op('Relu', [b.op('Mul', ['x', b.constF32([2], [])])], {}, 'h');
  b.op('Add', [h, b.constF32([1], [])], {}, 'y');
  return makeModel({ opset: 13, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', F32, ['b', 2])], [tensorValueInfo('y', F32, ['b', 2])], b.initializers) });
}

describe('joinStates', () => {
  it('appends the joined rows, read from the states through the join index, after the rows from below', async () => {
    const j = joinStates(chain(), { joins: [{ block: 1, tensors: [{ tensor: 'h', dims: [2] }] }] })!;
    expect(j).not.toBeNull();
    const s = await createSession(encodeModel(j.model));
    const out = await s.run({
      x: { data: Float32Array.from([1, -1]), dims: [1, 2] },
      [j.states[1]![0]!]: { data: Float32Array.from([10, 20, 30, 40]), dims: [2, 2] },
      [j.indices[1]!]: { data: BigInt64Array.from([1n, 0n, 1n]), dims: [3] },
    });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([3, 1, 31, 41, 11, 21, 31, 41]);
    expect(out.y!.dims).toEqual([4, 2]);
    await s.release();
    expect(j.added.map((a) => a.dims)).toEqual([[null], [null, 2], [null, 2], [null, 2]]);
  });

  it('refuses a graph output or a graph input as the joined tensor', () => {
    expect(joinStates(chain(), { joins: [{ block: 1, tensors: [{ tensor: 'y', dims: [2] }] }] })).toBeNull();
    expect(joinStates(chain(), { joins: [{ block: 1, tensors: [{ tensor: 'x', dims: [2] }] }] })).toBeNull();
  });
});

describe('pinReshapes', () => {
  it('writes out the -1 of static sizes so that an empty batch runs; a shared shape is forked per Reshape', async () => {
    const b = new GraphBuilder(13, 'm', ['x']);
    const shape = b.constI64([0, 4, -1]);
    const r1 = b.op('Reshape', ['x', shape]);
    const r2 = b.op('Reshape', [b.op('Neg', ['x']), shape]);
    b.op('Add', [r1, r2], {}, 'y');
    const model = makeModel({ opset: 13, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', F32, ['b', 4, 2, 3])], [tensorValueInfo('y', F32, ['b', 4, 6])], b.initializers) });
    const empty = { x: { data: new Float32Array(0), dims: [0, 4, 2, 3] } };
    const plain = await createSession(encodeModel(model));
    await expect(plain.run(empty)).rejects.toThrow(/reshape/i);
    await plain.release();
    const facts = await probeFacts(model);
    const p = pinReshapes(model, facts);
    expect(p.pinned).toBe(2);
    const s = await createSession(encodeModel(p.model));
    expect((await s.run(empty)).y!.dims).toEqual([0, 4, 6]);
    const x = Float32Array.from({ length: 48 }, (_, i) => i);
    const got = await s.run({ x: { data: x, dims: [2, 4, 2, 3] } });
    expect(Array.from(got.y!.data as Float32Array)).toEqual(new Array(48).fill(0));
    await s.release();
  });
});
