import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { VitpathError } from '../../src/errors.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Concat gradient rule', () => {
  for (const opset of [9, 11, 13, 18, 21]) {
    for (const axis of [1, -1, 0]) {
      it(`three inputs along axis ${axis} at opset ${opset} (float64)`, async () => {
        const dims = (k: number): number[] => (axis === 0 ? [k, 3] : [2, k]);
        const model = smallModel(opset, [['a', F64, dims(1)], ['b', F64, dims(2)], ['c', F64, dims(3)]], (b) => b.op('Concat', ['a', 'b', 'c'], { axis }));
        const r = await gradCheck({ model, inputs: { a: feed(dims(1), 1), b: feed(dims(2), 2), c: feed(dims(3), 3) }, wrt: ['a', 'b', 'c'] });
        recordErr('Concat', `axis ${axis} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('the same tensor twice (gradients accumulate), with a non-differentiated constant', async () => {
    const model = smallModel(13, [['a', F64, [2, 2]]], (b) => b.op('Concat', ['a', b.constF64([5, 6], [2, 1]), 'a'], { axis: 1 }));
    const r = await gradCheck({ model, inputs: { a: feed([2, 2], 4) }, wrt: ['a'] });
    recordErr('Concat', 'repeated input + constant', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('dynamic batch: class-token concat along axis 1 of [B,1,4] and [B,3,4], run at batch 1 and 4', async () => {
    const model = smallModel(13, [['cls', F64, ['batch', 1, 4]], ['p', F64, ['batch', 3, 4]]], (b) => b.op('Concat', ['cls', 'p'], { axis: 1 }));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ cls: feed([bs, 1, 4], bs), p: feed([bs, 3, 4], bs + 10) }), wrt: ['cls', 'p'] });
    expect(r.outDims).toEqual([null, 4, 4]);
    recordErr('Concat', 'dynamic batch, static axis', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  for (const opset of [9, 13]) {
    it(`dynamic batch along the concat axis, one dynamic piece between static ones (opset ${opset})`, async () => {
      const model = smallModel(opset, [['x', F64, ['batch', 3]], ['h', F64, [1, 3]], ['t', F64, [2, 3]]], (b) => b.op('Concat', ['h', 'x', 't'], { axis: 0 }));
      const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3], bs), h: feed([1, 3], 5), t: feed([2, 3], 6) }), wrt: ['x', 'h', 't'] });
      expect(r.outDims).toEqual([null, 3]);
      recordErr('Concat', `dynamic concat axis, one dynamic piece opset ${opset}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('dynamic batch along the concat axis, two dynamic pieces: runtime Shape offsets (opset 13)', async () => {
    const model = smallModel(13, [['x', F64, ['batch', 3]], ['h', F64, [2, 3]]], (b) => b.op('Concat', ['x', 'h', b.op('Mul', ['x', 'x'])], { axis: 0 }));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 3], bs), h: feed([2, 3], 5) }), wrt: ['x', 'h'] });
    recordErr('Concat', 'dynamic concat axis, two dynamic pieces', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('two dynamic pieces at opset 9 are refused with an unsupported error naming the node', async () => {
    const model = smallModel(9, [['x', F64, ['batch', 3]]], (b) => b.op('Concat', ['x', 'x'], { axis: 0 }));
    const facts = await probeFacts(model, { feeds: (bs) => ({ x: feed([bs, 3], bs) }), threads: 1 });
    const y = model.graph!.output[0]!.name;
    expect(() => buildGradientGraph(model, { loss: y, wrt: ['x'], facts })).toThrow(VitpathError);
    expect(() => buildGradientGraph(model, { loss: y, wrt: ['x'], facts })).toThrow(/Concat node .*opset >= 10/);
  });
});
