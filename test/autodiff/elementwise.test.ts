import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';

function binaryModel(op: string, aDims: number[], bDims: number[], opset = 17, dt = DataType.DOUBLE) {
  const b = new GraphBuilder(opset, 't');
  b.op(op, ['a', 'b'], {}, 'y');
  return makeModel({
    opset,
    graph: makeGraph('g', b.nodes, [tensorValueInfo('a', dt, aDims), tensorValueInfo('b', dt, bDims)], [tensorValueInfo('y', dt)], b.initializers),
  });
}

const shapes: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [1, 3, 1]],
  [[3, 4], [2, 3, 4]],
];

describe('elementwise gradient rules', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [aD, bD] of shapes) {
      it(`${op} ${JSON.stringify(aD)} x ${JSON.stringify(bD)} (float64)`, async () => {
        const n = (d: number[]) => d.reduce((x, y) => x * y, 1);
        const a = randomArray(n(aD), 1, -1, 1, true);
        const bv = randomArray(n(bD), 2, 0.5, 1.5, true); // away from 0 for Div
        const r = await gradCheck({ model: binaryModel(op, aD, bD), inputs: { a: { data: a, dims: aD }, b: { data: bv, dims: bD } }, wrt: ['a', 'b'] });
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('MatMul batched x 2-D and 1-D operands (float64)', async () => {
    for (const [aD, bD] of [
      [[2, 3, 4], [4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]],
      [[4], [2, 4, 3]],
      [[2, 3, 4], [4]],
    ] as [number[], number[]][]) {
      const n = (d: number[]) => d.reduce((x, y) => x * y, 1);
      const r = await gradCheck({
        model: binaryModel('MatMul', aD, bD),
        inputs: { a: { data: randomArray(n(aD), 3, -1, 1, true), dims: aD }, b: { data: randomArray(n(bD), 4, -1, 1, true), dims: bD } },
        wrt: ['a', 'b'],
      });
      expect(r.maxRelErr, `${aD} x ${bD}`).toBeLessThan(1e-6);
    }
  });
  it('Add in float32 within 1e-3', async () => {
    const r = await gradCheck({
      model: binaryModel('Mul', [2, 3], [3], 17, DataType.FLOAT),
      inputs: { a: { data: randomArray(6, 5), dims: [2, 3] }, b: { data: randomArray(3, 6), dims: [3] } },
      wrt: ['a', 'b'],
    });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
});
