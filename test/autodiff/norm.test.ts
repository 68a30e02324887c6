// Finite-difference checks of LayerNormalization (opsets 17/18, one or several normalized axes,
// with/without B, dynamic batch, Mean and InvStdDev outputs on the gradient path) and inference-mode
// BatchNormalization (opset 8 spatial forms, 9, 14, 15; rank 2/3/4), with gradients for X and every
// parameter; refusals exit with code 3.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { VitpathError } from '../../src/errors.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession } from '../../src/runtime/session.js';
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
  for (const [axis, xType] of [
    [1, DataType.DOUBLE],
    [-1, DataType.DOUBLE],
    [0, DataType.FLOAT],
  ] as [number, DataType][]) {
    const f64x = xType === DataType.DOUBLE;
    it(`Mean and InvStdDev on the gradient path, axis ${axis}, ${f64x ? 'float64 X with float32 statistics' : 'float32'} (vs a float64 reference here, not ONNX Runtime)`, async () => {
      // loss = <W1, Y> + <W2, Mean> + <W3, InvStdDev>. ONNX Runtime keeps the statistics in float32
      // (stash_type 1; it has no float64 one), so their finite differences would drown in rounding: the
      // oracle is central differences of the float64 reference below. (Before: exit 3 for this loss.)
      const dims = [2, 3, 4];
      const rank = dims.length;
      const ax = axis < 0 ? axis + rank : axis;
      const pDims = dims.slice(ax);
      const eps = 1e-3;
      const statType = DataType.FLOAT;
      const b = new GraphBuilder(17, 't');
      b.node('LayerNormalization', ['x', 's', 'b'], { axis, epsilon: { float: eps } }, ['y', 'mean', 'isd']);
      const statDims = dims.map((d, i) => (i < ax ? d : 1));
      const w = (k: number, n: number) => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(7 * i + k)));
      const nY = dims.reduce((a, c) => a * c, 1);
      const nS = statDims.reduce((a, c) => a * c, 1);
      const [w1, w2, w3] = [w(1, nY), w(2, nS), w(3, nS)];
      const term = (t: string, v: number[], d: number[], dt: DataType) => {
        const r = b.op('ReduceSum', [b.op('Mul', [t, b.constFloat(dt, v, d)])], { keepdims: 0 });
        return dt === DataType.DOUBLE ? r : b.op('Cast', [r], { to: DataType.DOUBLE });
      };
      b.op('Sum', [term('y', w1, dims, xType), term('mean', w2, statDims, statType), term('isd', w3, statDims, statType)], {}, 'loss');
      const vi = (n: string, d: number[]) => tensorValueInfo(n, xType, d);
      const model = makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [vi('x', dims), vi('s', pDims), vi('b', pDims)], [tensorValueInfo('loss', DataType.DOUBLE, [])], b.initializers) });
      const inputs = { x: feed(dims, 71, -2, 2, f64x), s: feed(pDims, 72, 0.5, 1.5, f64x), b: feed(pDims, 73, -1, 1, f64x) };
      const facts = await probeFacts(model, { feeds: () => inputs, threads: 1 });
      const { model: gm, gradOutputs } = buildGradientGraph(model, { loss: 'loss', wrt: ['x', 's', 'b'], facts });
      const s = await createSession(encodeModel(gm), { provider: 'cpu', threads: 1 });
      const out = await s.run(inputs);
      await s.release();

      // The reference: LayerNormalization in float64 over axes [ax, rank).
      const inner = pDims.reduce((a, c) => a * c, 1);
      const lossRef = (x: Float64Array, sc: Float64Array, bi: Float64Array) => {
        let l = 0;
        for (let o = 0; o < nS; o++) {
          let m = 0;
          for (let i = 0; i < inner; i++) m += x[o * inner + i]!;
          m /= inner;
          let v = 0;
          for (let i = 0; i < inner; i++) v += (x[o * inner + i]! - m) ** 2;
          const r = 1 / Math.sqrt(v / inner + eps);
          for (let i = 0; i < inner; i++) l += w1[o * inner + i]! * ((x[o * inner + i]! - m) * r * sc[i]! + bi[i]!);
          l += w2[o]! * m + w3[o]! * r;
        }
        return l;
      };
      const f = (a: unknown) => Float64Array.from(a as ArrayLike<number>);
      const base = { x: f(inputs.x.data), s: f(inputs.s.data), b: f(inputs.b.data) };
      let worst = 0;
      for (const k of ['x', 's', 'b'] as const) {
        const g = out[gradOutputs[k]!]!.data as Float64Array | Float32Array;
        const h = 1e-6;
        const num = Array.from(base[k], (_, i) => {
          const p = { ...base, [k]: base[k].slice() };
          const m = { ...base, [k]: base[k].slice() };
          p[k][i]! += h;
          m[k][i]! -= h;
          return (lossRef(p.x, p.s, p.b) - lossRef(m.x, m.s, m.b)) / (2 * h);
        });
        const scale = Math.max(...num.map(Math.abs));
        num.forEach((n, i) => (worst = Math.max(worst, Math.abs(g[i]! - n) / Math.max(Math.abs(g[i]!), Math.abs(n), 1e-3 * scale))));
      }
      // float32: the gradient graph itself runs in float32 (about 1e-7 relative per op).
      expect(worst).toBeLessThan(f64x ? 1e-6 : 1e-4);
    });
  }
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
