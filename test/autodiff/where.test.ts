import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Where gradient rule', () => {
  // cond = x > c (computed, not differentiable); shapes broadcast between cond, x and y.
  const cases: [number[], number[], number[]][] = [
    [[2, 3], [2, 3], [2, 3]],
    [[2, 3], [3], [2, 1]],
    [[1, 3], [2, 3], []],
  ];
  for (const opset of [9, 16, 21]) {
    for (const [cD, xD, yD] of cases) {
      it(`cond ${JSON.stringify(cD)} x ${JSON.stringify(xD)} y ${JSON.stringify(yD)} at opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, xD], ['y', F64, yD], ['c', F64, cD]], (b) => b.op('Where', [b.op('Greater', ['c', b.constF64([0], [])]), 'x', 'y']));
        const r = await gradCheck({ model, inputs: { x: feed(xD, 1), y: feed(yD, 2), c: feed(cD, 3) }, wrt: ['x', 'y'] });
        recordErr('Where', `${JSON.stringify([cD, xD, yD])} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('dynamic batch: attention-mask style Where(cond [1,3], x [B,3], -10), run at batch 1 and 4', async () => {
    const model = smallModel(13, [['x', F64, ['batch', 3]]], (b) => {
      const cond = b.initializer(b.fresh('mask'), Uint8Array.of(1, 0, 1), [1, 3], DataType.BOOL);
      return b.op('Where', [cond, 'x', b.constF64([-10], [])]);
    });
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3], bs) }), wrt: ['x'] });
    expect(r.outDims).toEqual([null, 3]);
    recordErr('Where', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
