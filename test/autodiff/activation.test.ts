// Finite-difference checks of Gelu (opset 20, both approximations) and LeakyRelu.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { VitpathError } from '../../src/errors.js';
import { checkAndLog, feed, opModel } from './math-model.js';

const dims = [2, 3, 5];

/**
 * GELU has a minimum near x = -0.752 where its derivative crosses 0; relative error there
 * measures float32 noise, not the rule. Move float32 sample points out of [-0.95, -0.55].
 */
function awayFromStationary(a: Float32Array | Float64Array): void {
  for (let i = 0; i < a.length; i++) if (a[i]! > -0.95 && a[i]! < -0.55) a[i] = a[i]! + 0.6;
}

describe('activation gradient rules', () => {
  // ORT runs Gelu 'none' only in float32 (no float64 Erf kernel): float32 central differences
  // with h = 3e-3 over 30 weighted terms keep rounding error ~ 30 * 6e-8 / 3e-3 ~ 6e-4 absolute
  // on O(1) gradients, so the bound is 1e-3; the float64 'tanh' case shows the formula is exact.
  it(`Gelu approximate=none opset 20 (float32, < 1e-3)`, async () => {
    const x = feed(dims, 21, -2.5, 2.5, false);
    awayFromStationary(x.data as Float32Array);
    const r = await checkAndLog('Gelu', 'none [2,3,5]', { model: opModel('Gelu', [{ name: 'x', dims }], {}, 20, DataType.FLOAT), inputs: { x }, wrt: ['x'] });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  it(`Gelu approximate=tanh opset 20 (float32, < 1e-3)`, async () => {
    const x = feed(dims, 22, -2.5, 2.5, false);
    awayFromStationary(x.data as Float32Array);
    const r = await checkAndLog('Gelu', 'tanh [2,3,5]', { model: opModel('Gelu', [{ name: 'x', dims }], { approximate: 'tanh' }, 20, DataType.FLOAT), inputs: { x }, wrt: ['x'] });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  // ORT's float64 Gelu-tanh forward differs from the exact formula by up to ~1.4e-7 relative
  // (measured against Math.tanh; it is neither the float64 nor the float32-constant formula),
  // which leaves a step-independent ~7e-7 finite-difference gap; 5e-6 still catches any
  // error in the derivative formula (those are >= 1e-3).
  it(`Gelu approximate=tanh opset 20 (float64, < 5e-6)`, async () => {
    const x = feed(dims, 23, -3, 3);
    const r = await checkAndLog('Gelu', 'tanh [2,3,5]', { model: opModel('Gelu', [{ name: 'x', dims }], { approximate: 'tanh' }, 20), inputs: { x }, wrt: ['x'] });
    expect(r.maxRelErr).toBeLessThan(5e-6);
  });
  it('Gelu with an unknown approximation is refused with exit code 3', () => {
    const model = opModel('Gelu', [{ name: 'x', dims: [3] }], { approximate: 'fast' }, 20, DataType.FLOAT);
    const f = { dataType: DataType.FLOAT, dims: [3] };
    const facts = new Map([
      ['x', f],
      ['y', f],
    ]);
    let err: unknown;
    try {
      buildGradientGraph(model, { loss: 'y', wrt: ['x'], facts });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/approximate="fast"/);
  });
  for (const opset of [16]) {
    it(`LeakyRelu alpha=0.2 opset ${opset} (float64)`, async () => {
      const x = feed(dims, 25, -1, 1);
      const d = x.data as Float64Array;
      for (let i = 0; i < d.length; i++) if (Math.abs(d[i]!) < 0.1) d[i] = d[i]! < 0 ? -0.2 : 0.2;
      const r = await checkAndLog('LeakyRelu', `alpha 0.2 opset ${opset}`, { model: opModel('LeakyRelu', [{ name: 'x', dims }], { alpha: 0.2 }, opset), inputs: { x }, wrt: ['x'] });
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
});
