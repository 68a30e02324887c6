import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

describe('Expand gradient rule', () => {
  const cases: [number[], number[]][] = [
    [[3, 1], [2, 3, 4]],
    [[1, 4], [3, 4]],
    [[2, 1, 4], [2, 3, 4]],
    [[4], [1, 2, 4]],
  ];
  for (const opset of [9, 13, 21]) {
    for (const [inD, shape] of cases) {
      it(`Expand ${JSON.stringify(inD)} to ${JSON.stringify(shape)} at opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, inD]], (b) => b.op('Expand', ['x', b.constI64(shape)]));
        const r = await gradCheck({ model, inputs: { x: feed(inD, 3) }, wrt: ['x'] });
        recordErr('Expand', `${JSON.stringify(inD)}->${JSON.stringify(shape)} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('dynamic batch: class token [1,1,4] expanded to the runtime batch, run at batch 1 and 4', async () => {
    // cls = Expand(token, [Shape(x)[0], 1, 1]); y = cls * x  (the ViT class-token pattern)
    const model = smallModel(13, [['x', F64, ['batch', 1, 4]], ['tok', F64, [1, 1, 4]]], (b) => {
      const bs = b.op('Gather', [b.op('Shape', ['x']), b.constI64([0])], { axis: 0 });
      const shape = b.op('Concat', [bs, b.constI64([1, 1])], { axis: 0 });
      return b.op('Mul', [b.op('Expand', ['tok', shape]), 'x']);
    });
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 1, 4], bs), tok: feed([1, 1, 4], 9) }), wrt: ['tok', 'x'] });
    expect(r.outDims).toEqual([null, 1, 4]);
    recordErr('Expand', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
