import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { sliceIndices } from '../../src/onnx/autodiff/rules/slice.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });
const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

type Case = { label: string; starts: (number | bigint)[]; ends: (number | bigint)[]; axes?: number[]; steps?: number[] };
const X = [3, 5, 6];

// Each case: expected indices per axis from an independent reading (Python slicing of range(d)).
const cases: Case[] = [
  { label: 'x[:, 1:4]', starts: [1], ends: [4], axes: [1] },
  { label: 'x[:, 1:] (INT64 max end)', starts: [1], ends: [I64_MAX], axes: [1] },
  { label: 'x[..., -3:-1] negative bounds', starts: [-3], ends: [-1], axes: [-1] },
  { label: 'x[1:, :2, 2:5] no axes input', starts: [1, 0, 2], ends: [I64_MAX, 2, 5] },
  { label: 'x[:, ::2, 1::3] steps', starts: [0, 1], ends: [I64_MAX, I64_MAX], axes: [1, 2], steps: [2, 3] },
  { label: 'x[:, ::-1] reverse (INT64 min end)', starts: [-1], ends: [I64_MIN], axes: [1], steps: [-1] },
  { label: 'x[..., 4:0:-2] negative step 2, with x[1:3]', starts: [4, 1], ends: [0, 3], axes: [2, 0], steps: [-2, 1] },
  { label: 'x[:, 2:100] clamped end', starts: [2], ends: [100], axes: [1] },
];

describe('Slice gradient rule', () => {
  it('sliceIndices follows Python slicing', () => {
    const py = (d: number, s: number | undefined, e: number | undefined, st: number) => {
      // Python semantics written independently: range over normalized bounds.
      const out: number[] = [];
      const norm = (v: number) => (v < 0 ? Math.max(v + d, st > 0 ? 0 : -1) : Math.min(v, st > 0 ? d : d - 1));
      const ss = s === undefined ? (st > 0 ? 0 : d - 1) : norm(s);
      const ee = e === undefined ? (st > 0 ? d : -1) : norm(e);
      for (let i = ss; st > 0 ? i < ee : i > ee; i += st) out.push(i);
      return out;
    };
    expect(sliceIndices(-1, Number.MIN_SAFE_INTEGER, -1, 5)).toEqual(py(5, undefined, undefined, -1));
    expect(sliceIndices(4, 0, -2, 6)).toEqual(py(6, 4, 0, -2));
    expect(sliceIndices(1, Number.MAX_SAFE_INTEGER, 3, 6)).toEqual([1, 4]);
    expect(sliceIndices(-3, -1, 1, 6)).toEqual([3, 4]);
    expect(sliceIndices(-100, 2, 1, 6)).toEqual([0, 1]);
  });
  for (const opset of [9, 10, 11, 13, 18, 21]) {
    for (const c of cases) {
      const attrForm = opset < 10;
      if (attrForm && (c.steps || c.starts.some((v) => typeof v === 'bigint'))) continue;
      it(`${c.label} at opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, X]], (b) => {
          const ins = attrForm
            ? b.op('Slice', ['x'], { starts: c.starts as number[], ends: c.ends as number[], ...(c.axes ? { axes: c.axes } : {}) })
            : b.op('Slice', ['x', b.constI64(c.starts), b.constI64(c.ends), ...(c.axes || c.steps ? [b.constI64(c.axes ?? [0, 1, 2].slice(0, c.starts.length))] : []), ...(c.steps ? [b.constI64(c.steps)] : [])]);
          return b.op('Mul', [ins, ins]);
        });
        const r = await gradCheck({ model, inputs: { x: feed(X, 3) }, wrt: ['x'], maxElems: 90 });
        recordErr('Slice', `${c.label} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('opset 9 attribute form without axes', async () => {
    const model = smallModel(9, [['x', F64, X]], (b) => b.op('Slice', ['x'], { starts: [1, 2], ends: [3, -1] }));
    const r = await gradCheck({ model, inputs: { x: feed(X, 4) }, wrt: ['x'], maxElems: 90 });
    recordErr('Slice', 'opset 9 no axes', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  for (const opset of [9, 13]) {
    it(`dynamic batch: drop the class token x[:, 1:] and x[1:] along the batch axis (opset ${opset}), run at batch 1 and 4`, async () => {
      const model = smallModel(opset, [['x', F64, ['batch', 5, 4]]], (b) => {
        const tail = b.slice('x', [1], [2147483647], [1]);
        const rest = b.slice('x', [1], [2147483647], [0]);
        // [B,4,4] + [1,1,4]: the batch-axis slice is summed so the output keeps the runtime batch
        return b.op('Add', [b.op('Mul', [tail, tail]), b.reduceSum(rest, [0, 1], true)]);
      });
      const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 5, 4], bs) }), wrt: ['x'], runBatches: [1, 4] });
      expect(r.outDims).toEqual([null, 4, 4]);
      recordErr('Slice', `dynamic batch opset ${opset}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('a slice whose placement depends on the batch size is refused, naming the node', async () => {
    const model = smallModel(13, [['x', F64, ['batch', 3]]], (b) => b.slice('x', [0], [-1], [0]));
    const facts = await probeFacts(model, { feeds: (bs) => ({ x: feed([bs, 3], bs) }), threads: 1 });
    expect(() => buildGradientGraph(model, { loss: model.graph!.output[0]!.name, wrt: ['x'], facts })).toThrow(/Slice node .*depends on the batch size/);
  });
});
