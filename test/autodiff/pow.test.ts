// Finite-difference checks of the Pow rule: tensor exponents with broadcasting (base > 0),
// constant scalar exponents (incl. negative bases for integer powers), mixed base/exponent
// types (opset 13+), and the documented zero exponent-gradient where the base is not positive.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { encodeModel } from '../../src/onnx/model.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession } from '../../src/runtime/session.js';
import { checkAndLog, feed, opModel } from './math-model.js';

describe('Pow gradient rule', () => {
  for (const opset of [9, 13, 15]) {
    it(`tensor exponent with broadcasting, base and exponent (opset ${opset}, float64)`, async () => {
      for (const [xD, eD] of [
        [[2, 3, 4], [2, 3, 4]],
        [[2, 3, 4], [4]],
        [[3, 1], [2, 3, 4]],
      ]) {
        const model = opModel('Pow', [{ name: 'x', dims: xD! }, { name: 'e', dims: eD! }], {}, opset);
        const r = await checkAndLog('Pow', `tensor exponent ${JSON.stringify(xD)} ^ ${JSON.stringify(eD)} opset ${opset}`, {
          model,
          inputs: { x: feed(xD!, 71, 0.3, 2), e: feed(eD!, 72, -1.5, 2.5) },
          wrt: ['x', 'e'],
        });
        expect(r.maxRelErr, `${xD} ^ ${eD}`).toBeLessThan(1e-6);
      }
    });
    it(`constant scalar exponents 2, 3, 1, 0.5, -1 (opset ${opset}, float64)`, async () => {
      for (const p of [2, 3, 1, 0.5, -1]) {
        const integer = Number.isInteger(p);
        const model = opModel('Pow', [{ name: 'x', dims: [2, 5] }, { name: 'e', dims: [], init: [p] }], {}, opset);
        const x = feed([2, 5], 73, integer && p > 0 ? -2 : 0.3, 2);
        const r = await checkAndLog('Pow', `constant exponent ${p} opset ${opset}`, { model, inputs: { x }, wrt: ['x'] });
        expect(r.maxRelErr, `p=${p}`).toBeLessThan(1e-6);
      }
    });
  }
  it('float32 constant and int64 constant exponents on a float64 base (opset 13)', async () => {
    for (const [dtype, p] of [
      [DataType.FLOAT, 1.5],
      [DataType.INT64, 3],
    ] as [DataType, number][]) {
      const model = opModel('Pow', [{ name: 'x', dims: [6] }, { name: 'e', dims: [], init: [p], dtype }], {}, 13);
      const r = await checkAndLog('Pow', `${DataType[dtype]} constant exponent ${p} opset 13`, { model, inputs: { x: feed([6], 74, 0.3, 2) }, wrt: ['x'] });
      expect(r.maxRelErr).toBeLessThan(1e-6);
    }
  });
  it('float32 exponent input on a float64 base: gradient cast back to float32 (opset 13)', async () => {
    const model = opModel('Pow', [{ name: 'x', dims: [2, 3] }, { name: 'e', dims: [3], dtype: DataType.FLOAT }], {}, 13);
    // x is float64 (step 1e-6); e is float32 (harness step 3e-3, loss in float64): the central
    // difference truncation h^2 |d3/de3| / 6 ~ 1.5e-6 * |Z log^3 X| bounds the error at ~1e-5.
    const r = await checkAndLog('Pow', 'float32 exponent on float64 base', { model, inputs: { x: feed([2, 3], 75, 0.3, 2), e: feed([3], 76, -1, 2, false) }, wrt: ['x', 'e'] });
    expect(r.maxRelErr).toBeLessThan(1e-4);
  });
  it('exponent gradient is 0 where the base is not positive, Z log X elsewhere', async () => {
    const model = opModel('Pow', [{ name: 'x', dims: [4] }, { name: 'e', dims: [4] }], {}, 13);
    const xs = [-2, -0.5, 0.7, 1.9];
    const es = [2, 3, -1.5, 0.5];
    const inputs = { x: { data: Float64Array.from(xs), dims: [4] }, e: { data: Float64Array.from(es), dims: [4] } };
    const facts = await probeFacts(model, { feeds: () => inputs, threads: 1 });
    const { model: gm, gradOutputs } = buildGradientGraph(model, { loss: 'y', wrt: ['x', 'e'], facts });
    const s = await createSession(encodeModel(gm), { provider: 'cpu', threads: 1 });
    const res = await s.run(inputs);
    await s.release();
    const de = Array.from(res[gradOutputs.e!]!.data as Float64Array);
    const dx = Array.from(res[gradOutputs.x!]!.data as Float64Array);
    for (let i = 0; i < 4; i++) {
      const want = xs[i]! > 0 ? Math.pow(xs[i]!, es[i]!) * Math.log(xs[i]!) : 0;
      expect(de[i]).toBeCloseTo(want, 12);
      expect(dx[i]).toBeCloseTo(es[i]! * Math.pow(xs[i]!, es[i]! - 1), 12);
    }
  });
});
