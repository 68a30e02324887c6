// Finite-difference checks of the pointwise unary rules (Sqrt, Reciprocal, Exp, Log, Tanh,
// Sigmoid, Relu, Erf, Abs) at several opsets; float64 except Erf, which ORT runs in float32 only.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { checkAndLog, feed, opModel } from './math-model.js';

const dims = [2, 3, 4];
// [op, lo, hi]: sample ranges inside the domain and away from kinks (Relu/Abs: |x| >= 0.1 below).
const cases: [string, number, number][] = [
  ['Sqrt', 0.2, 2],
  ['Reciprocal', 0.3, 2],
  ['Exp', -1.5, 1.5],
  ['Log', 0.2, 2],
  ['Tanh', -2, 2],
  ['Sigmoid', -3, 3],
  ['Relu', -1, 1],
  ['Abs', -1, 1],
];

/** Push values within 0.1 of 0 away from the kink, keeping their sign. */
function awayFromZero(a: Float32Array | Float64Array): void {
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]!) < 0.1) a[i] = a[i]! < 0 ? -0.1 - a[i]! : 0.1 + a[i]!;
}

describe('unary gradient rules', () => {
  for (const [op, lo, hi] of cases) {
    for (const opset of [9, 13, 18]) {
      it(`${op} opset ${opset} (float64)`, async () => {
        const x = feed(dims, 11, lo, hi);
        if (op === 'Relu' || op === 'Abs') awayFromZero(x.data as Float64Array);
        const r = await checkAndLog(op, `opset ${opset} [2,3,4]`, { model: opModel(op, [{ name: 'x', dims }], {}, opset), inputs: { x }, wrt: ['x'] });
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('Relu gives exactly 0 below 0 and g above', async () => {
    const x = { data: Float64Array.from([-0.5, -0.2, 0.3, 0.7]), dims: [4] };
    const r = await checkAndLog('Relu', 'signs [4]', { model: opModel('Relu', [{ name: 'x', dims: [4] }], {}, 14), inputs: { x }, wrt: ['x'] });
    expect(Math.abs(r.analytic.x![0]!)).toBe(0);
    expect(Math.abs(r.analytic.x![1]!)).toBe(0);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  for (const opset of [9, 13]) {
    // ORT has no float64 Erf kernel. float32 central differences with h = 3e-3 on a loss of
    // 24 weighted terms: truncation ~ h^2 |f'''| / 6 ~ 1e-5 relative, rounding ~ 24 * 6e-8 / h ~ 5e-4
    // absolute on gradients of order 1 (the harness floors the denominator at 1e-3 * max |g|).
    it(`Erf opset ${opset} (float32, < 1e-3)`, async () => {
      const x = feed(dims, 12, -1.5, 1.5, false);
      const r = await checkAndLog('Erf', `opset ${opset} [2,3,4]`, { model: opModel('Erf', [{ name: 'x', dims }], {}, opset, DataType.FLOAT), inputs: { x }, wrt: ['x'] });
      expect(r.maxRelErr).toBeLessThan(1e-3);
    });
  }
});
