import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });
const X = [2, 3, 4];

describe('Gather gradient rule', () => {
  for (const opset of [9, 11, 13, 18, 21]) {
    for (const [axis, idx] of [[1, 0], [1, -1], [0, 1], [2, 3]] as [number, number][]) {
      it(`scalar constant index ${idx} on axis ${axis} at opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, X]], (b) => b.op('Gather', ['x', b.constI64([idx], [])], { axis }));
        const r = await gradCheck({ model, inputs: { x: feed(X, 1) }, wrt: ['x'] });
        recordErr('Gather', `scalar ${idx} axis ${axis} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  const arrays: [number, number[], number[]][] = [
    [0, [1, 0, 1], [3]],
    [1, [2, 0, 2, -3], [4]],
    [2, [3, 3, 0], [3]],
    [1, [0, 1, 1, 2, -1, 0], [2, 3]],
    [-1, [1, 2, 3, 0], [2, 1, 2]],
  ];
  for (const opset of [9, 13, 21]) {
    for (const [axis, vals, idims] of arrays) {
      it(`constant indices ${JSON.stringify(vals)} shaped ${JSON.stringify(idims)} on axis ${axis} (repeats accumulate) at opset ${opset}`, async () => {
        const model = smallModel(opset, [['x', F64, X]], (b) => {
          const y = b.op('Gather', ['x', b.constI64(vals, idims)], { axis });
          return b.op('Mul', [y, y]);
        });
        const r = await gradCheck({ model, inputs: { x: feed(X, 2) }, wrt: ['x'] });
        recordErr('Gather', `const ${JSON.stringify(vals)} axis ${axis} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  for (const [opset, itype] of [[9, DataType.INT64], [13, DataType.INT32], [21, DataType.INT64]] as [number, DataType][]) {
    it(`computed (graph input) ${itype === DataType.INT32 ? 'int32' : 'int64'} indices with repeats and negatives at opset ${opset}`, async () => {
      const model = smallModel(opset, [['x', F64, X], ['i', itype, [2, 2]]], (b) => {
        const y = b.op('Gather', ['x', 'i'], { axis: 1 });
        return b.op('Mul', [y, y]);
      });
      const vals = [2, -1, 0, 2];
      const i = itype === DataType.INT32 ? { data: Int32Array.from(vals), dims: [2, 2] } : { data: BigInt64Array.from(vals.map(BigInt)), dims: [2, 2] };
      const r = await gradCheck({ model, inputs: { x: feed(X, 5), i }, wrt: ['x'] });
      recordErr('Gather', `runtime indices opset ${opset}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('dynamic batch: class token x[:, 0] and q/k/v pick qkv[1] with batch on axis 1, run at batch 1 and 4', async () => {
    const model = smallModel(13, [['x', F64, ['batch', 5, 4]], ['qkv', F64, [3, 'batch', 4]]], (b) => {
      const cls = b.op('Gather', ['x', b.constI64([0], [])], { axis: 1 });
      const k = b.op('Gather', ['qkv', b.constI64([1], [])], { axis: 0 });
      const rows = b.op('Gather', ['x', b.constI64([4, 1, 4])], { axis: 1 });
      return b.op('Add', [b.op('Mul', [cls, k]), b.reduceSum(rows, [1], false)]);
    });
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 5, 4], bs), qkv: feed([3, bs, 4], bs + 7) }), wrt: ['x', 'qkv'] });
    expect(r.outDims).toEqual([null, 4]);
    recordErr('Gather', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
