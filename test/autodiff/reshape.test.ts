import { describe, expect, it } from 'vitest';
import { hostToTensor } from '../../src/onnx/tensor.js';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F32, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Reshape / Flatten gradient rules', () => {
  for (const opset of [9, 14, 21]) {
    it(`Reshape [2,3,4] -> [6,-1] -> Transpose at opset ${opset} (float64)`, async () => {
      const model = smallModel(opset, [['x', F64, [2, 3, 4]]], (b) => b.op('Transpose', [b.op('Reshape', ['x', b.constI64([6, -1])])], { perm: [1, 0] }));
      const r = await gradCheck({ model, inputs: { x: feed([2, 3, 4], 1) }, wrt: ['x'] });
      recordErr('Reshape', `opset ${opset}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  for (const axis of [0, 2, -1]) {
    it(`Flatten axis ${axis} (opset 13, float64)`, async () => {
      const model = smallModel(13, [['x', F64, [2, 3, 4]]], (b) => b.op('Transpose', [b.op('Flatten', ['x'], { axis })], { perm: [1, 0] }));
      const r = await gradCheck({ model, inputs: { x: feed([2, 3, 4], 2) }, wrt: ['x'] });
      recordErr('Flatten', `axis ${axis}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('shape computations carry no gradient: Shape -> ConstantOfShape added to x', async () => {
    // y = x * 2 + ConstantOfShape(Shape(x), 1): the second branch has zero gradient.
    const model = smallModel(17, [['x', F32, [2, 3]]], (b) => {
      const ones = b.op('ConstantOfShape', [b.op('Shape', ['x'])], { value: hostToTensor('v', Float32Array.of(1), [1]) });
      return b.op('Add', [b.op('Mul', ['x', b.constF32([2], [])]), ones]);
    });
    const x = randomArray(6, 3);
    const r = await gradCheck({ model, inputs: { x: { data: x, dims: [2, 3] } }, wrt: ['x'] });
    expect(r.analytic.x!.every((v) => Math.abs(v) > 0)).toBe(true);
    recordErr('Shape/ConstantOfShape', 'non-differentiable branch (float32)', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  // Empty tensors: the gradient is re-viewed with Shape(x), which holds a 0; Reshape reads a 0 as
  // "copy this dim" unless allowzero=1, so before the fix these gradient graphs failed to run
  // (found by the ONNX test test_reshape_allowzero_reordered).
  it('empty input: Reshape [0,3,4] -> [3,4,0] with allowzero=1 (opset 14)', async () => {
    const model = smallModel(14, [['x', F64, [0, 3, 4]]], (b) => b.op('Reshape', ['x', b.constI64([3, 4, 0])], { allowzero: 1 }));
    const r = await gradCheck({ model, inputs: { x: { data: new Float64Array(0), dims: [0, 3, 4] } }, wrt: ['x'] });
    expect(r.analytic.x).toEqual([]);
  });
  for (const opset of [11, 13]) {
    it(`empty input: Unsqueeze and Flatten of [0,3] at opset ${opset} (no allowzero yet)`, async () => {
      const model = smallModel(opset, [['x', F64, [0, 3]]], (b) => b.op('Flatten', [b.unsqueeze('x', [0])], { axis: 2 }));
      const r = await gradCheck({ model, inputs: { x: { data: new Float64Array(0), dims: [0, 3] } }, wrt: ['x'] });
      expect(r.analytic.x).toEqual([]);
    });
  }
  it('dynamic batch: Reshape [B,3,4] -> [0,-1] and Flatten, run at batch 1 and 4', async () => {
    const model = smallModel(14, [['x', F64, ['batch', 3, 4]]], (b) => b.op('Mul', [b.op('Reshape', ['x', b.constI64([0, -1])]), b.op('Flatten', ['x'], { axis: 1 })]));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3, 4], bs) }), wrt: ['x'] });
    expect(r.outDims).toEqual([null, 12]);
    recordErr('Reshape', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
