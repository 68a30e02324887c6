// Gradient of Range with float start/limit/delta (opset 11): y[i] = start + i delta, so dstart =
// sum(g), ddelta = sum(g i), dlimit = 0. (Range was registered as having no gradient at all, which
// gave 0 for start and delta: a silent wrong gradient the ONNX conformance suite found.)
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../helpers/gradcheck.js';
import { F32, F64, recordErr, smallModel } from './dyncheck.js';

const scalar = (v: number, f64 = true) => ({ data: f64 ? Float64Array.of(v) : Float32Array.of(v), dims: [] as number[] });

describe('Range gradient rule', () => {
  for (const [label, start, limit, delta] of [
    ['ascending, 5 values', 0.3, 4.1, 0.8],
    ['descending, 4 values', 2.5, -1.2, -1.1],
  ] as [string, number, number, number][]) {
    it(`${label}: start, limit, delta as inputs, squared so the seed varies (float64)`, async () => {
      const model = smallModel(11, [['start', F64, []], ['limit', F64, []], ['delta', F64, []]], (b) => {
        const y = b.op('Range', ['start', 'limit', 'delta']);
        return b.op('Mul', [y, y]);
      });
      const r = await gradCheck({ model, inputs: { start: scalar(start), limit: scalar(limit), delta: scalar(delta) }, wrt: ['start', 'limit', 'delta'] });
      recordErr('Range', label, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
      // The old rule gave 0 for all three: start/delta must be clearly non-zero, limit exactly 0
      // (the output's length is piecewise constant in it).
      expect(Math.abs(r.analytic.start![0]!)).toBeGreaterThan(1e-3);
      expect(Math.abs(r.analytic.delta![0]!)).toBeGreaterThan(1e-3);
      expect(r.analytic.limit![0]).toBe(0);
    });
  }
  it('float32, start and delta only, limit a constant', async () => {
    const model = smallModel(17, [['start', F32, []], ['delta', F32, []]], (b) => b.op('Range', ['start', b.constF32([3], []), 'delta']));
    const r = await gradCheck({ model, inputs: { start: scalar(-0.4, false), delta: scalar(0.7, false) }, wrt: ['start', 'delta'], eps: 1e-2 });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
});
