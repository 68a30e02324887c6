// Finite-difference checks of LayerNormalization (opsets 17/18, one or several normalized axes,
// with/without B, dynamic batch) and inference-mode BatchNormalization (opset 8 spatial forms,
// 9, 14, 15; rank 2/3/4), with gradients for X and every parameter; refusals exit with code 3.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { VitpathError } from '../../src/errors.js';
import { checkAndLog, feed, opModel, type OpInput } from './math-model.js';
import { dynGradCheck, F64, smallModel } from './dyncheck.js';

function refusal(fn: () => unknown): VitpathError {
  try {
    fn();
  } catch (e) {
    if (e instanceof VitpathError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('LayerNormalization gradient rule', () => {
  const xDims = [2, 3, 4];
  for (const opset of [17, 18]) {
    for (const [axis, pDims] of [
      [undefined, [4]],
      [-1, [4]],
      [1, [3, 4]],
      [-2, [3, 4]],
      [0, [2, 3, 4]],
    ] as [number | undefined, number[]][]) {
      it(`axis ${axis ?? 'default'} opset ${opset}: X, Scale, B (float64)`, async () => {
        const inputs: OpInput[] = [
          { name: 'x', dims: xDims },
          { name: 's', dims: pDims },
          { name: 'b', dims: pDims },
        ];
        const r = await checkAndLog('LayerNormalization', `axis ${axis ?? 'default'} opset ${opset}`, {
          model: opModel('LayerNormalization', inputs, { axis, epsilon: { float: 1e-3 } }, opset),
          inputs: { x: feed(xDims, 51, -2, 2), s: feed(pDims, 52, 0.5, 1.5), b: feed(pDims, 53) },
          wrt: ['x', 's', 'b'],
        });
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('no B input, constant Scale, opset 18 (float64)', async () => {
    const model = opModel('LayerNormalization', [{ name: 'x', dims: xDims }, { name: 's', dims: [4], init: [0.5, 1, 1.5, 2] }], {}, 18);
    const r = await checkAndLog('LayerNormalization', 'no B, constant scale', { model, inputs: { x: feed(xDims, 54, -2, 2) }, wrt: ['x'] });
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('Mean and InvStdDev outputs present but off the gradient path (float32 within 1e-3)', async () => {
    const model = opModel('LayerNormalization', [{ name: 'x', dims: xDims }, { name: 's', dims: [4] }, { name: 'b', dims: [4] }], {}, 17, DataType.FLOAT, ['y', 'mean', 'isd']);
    const r = await checkAndLog('LayerNormalization', 'extra outputs, float32', {
      model,
      output: 'y',
      inputs: { x: feed(xDims, 55, -2, 2, false), s: feed([4], 56, 0.5, 1.5, false), b: feed([4], 57, -1, 1, false) },
      wrt: ['x', 's', 'b'],
    });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  it('refuses with exit code 3 when InvStdDev is on the gradient path', () => {
    const model = opModel('LayerNormalization', [{ name: 'x', dims: [2, 4] }, { name: 's', dims: [4] }], {}, 17, DataType.FLOAT, ['y', 'mean', 'isd']);
    const f = (dims: number[]) => ({ dataType: DataType.FLOAT, dims });
    const facts = new Map([
      ['x', f([2, 4])],
      ['s', f([4])],
      ['y', f([2, 4])],
      ['mean', f([2, 1])],
      ['isd', f([2, 1])],
    ]);
    const e = refusal(() => buildGradientGraph(model, { loss: 'isd', wrt: ['x'], facts }));
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/InvStdDev/);
  });
  it('dynamic batch, normalizing the last two axes (opset 18, run at batch 1 and 4)', async () => {
    const model = smallModel(18, [['x', F64, ['batch', 3, 4]]], (b) => {
      const s = b.constF64(Array.from({ length: 12 }, (_, i) => 0.5 + i / 12), [3, 4]);
      const bias = b.constF64(Array.from({ length: 12 }, (_, i) => Math.cos(i)), [3, 4]);
      return b.op('LayerNormalization', ['x', s, bias], { axis: 1 });
    });
    const r = await dynGradCheck({ model, feeds: (n) => ({ x: feed([n, 3, 4], 58 + n, -2, 2) }), wrt: ['x'] });
    expect(r.outDims[0]).toBeNull();
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});

describe('BatchNormalization (inference) gradient rule', () => {
  const params = (c: number[], seed: number) => ({
    s: feed(c, seed, 0.5, 1.5),
    b: feed(c, seed + 1),
    m: feed(c, seed + 2, -0.5, 0.5),
    v: feed(c, seed + 3, 0.5, 1.5),
  });
  const bnInputs = (xDims: number[], pDims: number[]): OpInput[] => [
    { name: 'x', dims: xDims },
    { name: 's', dims: pDims },
    { name: 'b', dims: pDims },
    { name: 'm', dims: pDims },
    { name: 'v', dims: pDims },
  ];
  for (const opset of [9, 14, 15]) {
    for (const xDims of [
      [2, 3],
      [2, 3, 4],
      [2, 3, 2, 2],
    ]) {
      it(`X ${JSON.stringify(xDims)} opset ${opset}: X, scale, B, mean, var (float64)`, async () => {
        const attrs = { epsilon: { float: 1e-3 }, training_mode: opset >= 14 ? 0 : undefined };
        const r = await checkAndLog('BatchNormalization', `X ${JSON.stringify(xDims)} opset ${opset}`, {
          model: opModel('BatchNormalization', bnInputs(xDims, [3]), attrs, opset),
          inputs: { x: feed(xDims, 61, -2, 2), ...params([3], 62) },
          wrt: ['x', 's', 'b', 'm', 'v'],
        });
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  for (const spatial of [1, 0]) {
    it(`opset 8 spatial=${spatial} (float32 within 1e-3)`, async () => {
      const xDims = [2, 3, 2];
      const pDims = spatial ? [3] : [3, 2];
      const f32 = (d: number[], seed: number, lo: number, hi: number) => feed(d, seed, lo, hi, false);
      const r = await checkAndLog('BatchNormalization', `opset 8 spatial=${spatial} float32`, {
        model: opModel('BatchNormalization', bnInputs(xDims, pDims), { spatial }, 8, DataType.FLOAT),
        inputs: { x: f32(xDims, 63, -2, 2), s: f32(pDims, 64, 0.5, 1.5), b: f32(pDims, 65, -1, 1), m: f32(pDims, 66, -0.5, 0.5), v: f32(pDims, 67, 0.5, 1.5) },
        wrt: ['x', 's', 'b', 'm', 'v'],
      });
      expect(r.maxRelErr).toBeLessThan(1e-3);
    });
  }
  it('dynamic batch, X and scale (opset 15, run at batch 1 and 4)', async () => {
    const model = smallModel(15, [['x', F64, ['batch', 3, 2]], ['s', F64, [3]]], (b) => {
      const c = (v: number[]) => b.constF64(v, [3]);
      return b.op('BatchNormalization', ['x', 's', c([0.1, -0.2, 0.3]), c([0.2, 0, -0.3]), c([0.7, 1.2, 0.9])], { epsilon: { float: 1e-3 } });
    });
    const r = await dynGradCheck({ model, feeds: (n) => ({ x: feed([n, 3, 2], 68 + n, -2, 2), s: feed([3], 67, 0.5, 1.5) }), wrt: ['x', 's'] });
    expect(r.outDims[0]).toBeNull();
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('refuses training_mode=1 with exit code 3', () => {
    const model = opModel('BatchNormalization', bnInputs([2, 3], [3]), { training_mode: 1 }, 15, DataType.FLOAT);
    const f = (dims: number[]) => ({ dataType: DataType.FLOAT, dims });
    const facts = new Map([['x', f([2, 3])], ['s', f([3])], ['b', f([3])], ['m', f([3])], ['v', f([3])], ['y', f([2, 3])]]);
    const e = refusal(() => buildGradientGraph(model, { loss: 'y', wrt: ['x'], facts }));
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/training mode/);
  });
});
