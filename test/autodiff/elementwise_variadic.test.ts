// Finite-difference checks of the variadic/bounded elementwise rules (Sum, Mean, Max, Min, Clip)
// with broadcasting at several opsets, the Max tie convention, and Neg.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { encodeModel } from '../../src/onnx/model.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession } from '../../src/runtime/session.js';
import { checkAndLog, feed, numelOf, opModel } from './math-model.js';

const shapes = [[2, 3, 4], [4], [3, 1]];

/** Distinct values in [-2, 2] spaced >= 0.05 apart across all inputs, so Max/Min have no ties. */
function distinctFeeds(dims: number[][], seed: number) {
  const total = dims.reduce((s, d) => s + numelOf(d), 0);
  const vals = Array.from({ length: total }, (_, i) => -2 + (4 * i) / total);
  // Deterministic shuffle.
  let a = seed;
  for (let i = vals.length - 1; i > 0; i--) {
    a = (a * 1103515245 + 12345) % 2147483648;
    const j = a % (i + 1);
    [vals[i], vals[j]] = [vals[j]!, vals[i]!];
  }
  let k = 0;
  return dims.map((d) => ({ data: Float64Array.from(vals.slice(k, (k += numelOf(d)))), dims: d }));
}

describe('variadic elementwise gradient rules', () => {
  for (const op of ['Sum', 'Mean', 'Max', 'Min']) {
    for (const opset of [9, 13]) {
      // ORT has Mean in float32 only.
      const f32 = op === 'Mean';
      const dt = f32 ? DataType.FLOAT : DataType.DOUBLE;
      const tol = f32 ? 1e-3 : 1e-6;
      it(`${op} of three broadcast inputs, and of one input (opset ${opset}, ${f32 ? 'float32' : 'float64'})`, async () => {
        const names = ['a', 'b', 'c'];
        const fs = distinctFeeds(shapes, 101).map((f) => (f32 ? { data: Float32Array.from(f.data), dims: f.dims } : f));
        const model = opModel(op, names.map((n, i) => ({ name: n, dims: shapes[i]! })), {}, opset, dt);
        const inputs = Object.fromEntries(names.map((n, i) => [n, fs[i]!]));
        const r = await checkAndLog(op, `3 inputs [2,3,4],[4],[3,1] opset ${opset}`, { model, inputs, wrt: names });
        expect(r.maxRelErr).toBeLessThan(tol);
        const r1 = await checkAndLog(op, `1 input opset ${opset}`, { model: opModel(op, [{ name: 'a', dims: [3] }], {}, opset, dt), inputs: { a: feed([3], 102, -1, 1, !f32) }, wrt: ['a'] });
        expect(r1.maxRelErr).toBeLessThan(tol);
      });
    }
  }
  it('Max ties share the gradient evenly (torch.maximum convention)', async () => {
    const model = opModel('Max', [{ name: 'a', dims: [3] }, { name: 'b', dims: [3] }, { name: 'c', dims: [3] }], {}, 13);
    const a = [1, 2, 0];
    const bv = [1, 1, 0];
    const c = [0, 2, 0];
    const inputs = { a: { data: Float64Array.from(a), dims: [3] }, b: { data: Float64Array.from(bv), dims: [3] }, c: { data: Float64Array.from(c), dims: [3] } };
    const facts = await probeFacts(model, { feeds: () => inputs, threads: 1 });
    const { model: gm, gradOutputs } = buildGradientGraph(model, { loss: 'y', wrt: ['a', 'b', 'c'], facts });
    const s = await createSession(encodeModel(gm), { provider: 'cpu', threads: 1 });
    const res = await s.run(inputs);
    await s.release();
    const cols = [a, bv, c];
    for (const [k, name] of ['a', 'b', 'c'].entries()) {
      const want = [0, 1, 2].map((i) => {
        const m = Math.max(a[i]!, bv[i]!, c[i]!);
        const ties = cols.filter((col) => col[i] === m).length;
        return cols[k]![i] === m ? 1 / ties : 0;
      });
      expect(Array.from(res[gradOutputs[name]!]!.data as Float64Array), name).toEqual(want);
    }
  });
  for (const opset of [9, 11, 13]) {
    // ORT runs Clip in float64 only from opset 12.
    const f32 = opset < 12;
    const dt = f32 ? DataType.FLOAT : DataType.DOUBLE;
    it(`Clip with both bounds, one bound, none (opset ${opset}, ${f32 ? 'float32' : 'float64'})`, async () => {
      const x = feed([2, 3, 4], 103, -2, 2, !f32);
      const d = x.data as Float32Array | Float64Array;
      // Keep sample points >= 0.05 away from the bounds -0.5 and 0.8 (kinks).
      for (let i = 0; i < d.length; i++) for (const k of [-0.5, 0.8]) if (Math.abs(d[i]! - k) < 0.05) d[i] = k + 0.1;
      for (const [lo, hi] of [
        [-0.5, 0.8],
        [-0.5, undefined],
        [undefined, 0.8],
        [undefined, undefined],
      ]) {
        const model =
          opset < 11
            ? opModel('Clip', [{ name: 'x', dims: [2, 3, 4] }], { min: lo === undefined ? undefined : { float: lo }, max: hi === undefined ? undefined : { float: hi } }, opset, dt)
            : opModel('Clip', [{ name: 'x', dims: [2, 3, 4] }, lo === undefined ? '' : { name: 'lo', dims: [], init: [lo] }, hi === undefined ? '' : { name: 'hi', dims: [], init: [hi] }], {}, opset, dt);
        const r = await checkAndLog('Clip', `min ${lo} max ${hi} opset ${opset}`, { model, inputs: { x }, wrt: ['x'] });
        expect(r.maxRelErr, `${lo}..${hi}`).toBeLessThan(f32 ? 1e-3 : 1e-6);
      }
    });
  }
  it('Clip with tensor bounds on the gradient path (opset 13, float64)', async () => {
    const model = opModel('Clip', [{ name: 'x', dims: [2, 3] }, { name: 'lo', dims: [] }, { name: 'hi', dims: [] }], {}, 13);
    const x = { data: Float64Array.from([-1, -0.2, 0.3, 0.9, 1.5, 0.1]), dims: [2, 3] };
    const r = await checkAndLog('Clip', 'tensor bounds opset 13', {
      model,
      inputs: { x, lo: { data: Float64Array.of(-0.5), dims: [] }, hi: { data: Float64Array.of(0.8), dims: [] } },
      wrt: ['x', 'lo', 'hi'],
    });
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('Neg at opsets 9 and 13 (float64)', async () => {
    for (const opset of [9, 13]) {
      const r = await checkAndLog('Neg', `opset ${opset}`, { model: opModel('Neg', [{ name: 'x', dims: [2, 3] }], {}, opset), inputs: { x: feed([2, 3], 104) }, wrt: ['x'] });
      expect(r.maxRelErr).toBeLessThan(1e-6);
    }
  });
  it('Max in float32 within 1e-3', async () => {
    const fs = distinctFeeds([[2, 3], [3]], 105).map((f) => ({ data: Float32Array.from(f.data), dims: f.dims }));
    const model = opModel('Max', [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [3] }], {}, 13, DataType.FLOAT);
    const r = await checkAndLog('Max', 'float32 [2,3],[3]', { model, inputs: { a: fs[0]!, b: fs[1]! }, wrt: ['a', 'b'] });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
});
