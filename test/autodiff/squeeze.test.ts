import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Squeeze / Unsqueeze gradient rules', () => {
  // Opset 9/11 take axes as an attribute, 13+ as an input; the builder emits the right form.
  for (const opset of [9, 11, 13, 18, 21]) {
    it(`Unsqueeze [1,3] then Squeeze [0] of [2,1,3] at opset ${opset} (float64)`, async () => {
      const model = smallModel(opset, [['x', F64, [2, 1, 3]]], (b) => b.squeeze(b.unsqueeze(b.squeeze('x', [1]), [1, 3]), [3]));
      const r = await gradCheck({ model, inputs: { x: feed([2, 1, 3], opset) }, wrt: ['x'] });
      recordErr('Squeeze/Unsqueeze', `opset ${opset}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('Squeeze without axes (all size-1 axes) at opset 13', async () => {
    const model = smallModel(13, [['x', F64, [1, 4, 1]]], (b) => b.op('Squeeze', ['x']));
    const r = await gradCheck({ model, inputs: { x: feed([1, 4, 1], 5) }, wrt: ['x'] });
    recordErr('Squeeze/Unsqueeze', 'Squeeze no axes', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('dynamic batch: Unsqueeze(-1) of [B,3] at opset 13, run at batch 1 and 4', async () => {
    const model = smallModel(13, [['x', F64, ['batch', 3]]], (b) => b.op('Mul', [b.unsqueeze('x', [-1]), b.unsqueeze('x', [1])]));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3], bs) }), wrt: ['x'] });
    expect(r.outDims).toEqual([null, 3, 3]);
    recordErr('Squeeze/Unsqueeze', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
