import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Transpose gradient rule', () => {
  for (const opset of [9, 13, 21]) {
    for (const perm of [[0, 2, 1, 3], [3, 1, 0, 2], undefined]) {
      it(`perm ${perm ? perm.join(',') : 'default (reverse)'} at opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, [2, 3, 4, 5]]], (b) => b.op('Transpose', ['x'], { perm }));
        const r = await gradCheck({ model, inputs: { x: feed([2, 3, 4, 5], 1) }, wrt: ['x'] });
        recordErr('Transpose', `perm ${perm ?? 'default'} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('dynamic batch: built at batch 2/3, run at batch 1 and 4', async () => {
    const model = smallModel(17, [['x', F64, ['batch', 3, 4]]], (b) => b.op('Transpose', ['x'], { perm: [2, 0, 1] }));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3, 4], bs) }), wrt: ['x'] });
    expect(r.outDims).toEqual([4, null, 3]);
    recordErr('Transpose', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
