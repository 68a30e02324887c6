import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import type { GraphBuilder } from '../../src/onnx/builder.js';
import { dynGradCheck, F64, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

/** Split x into three equal parts along axis 1 in the form native to the opset; y = p0 * p2 (p1 unused). */
function splitEqual(b: GraphBuilder, opset: number, form: 'sizes' | 'default'): string {
  let parts: string[];
  if (form === 'default') parts = b.node('Split', ['x'], { axis: 1, ...(opset >= 18 ? { num_outputs: 3 } : {}) }, 3);
  else parts = b.split('x', 1, [2, 2, 2]);
  return b.op('Mul', [parts[0]!, parts[2]!]);
}

describe('Split gradient rule', () => {
  for (const opset of [9, 11, 13, 18, 21]) {
    for (const form of ['sizes', 'default'] as const) {
      it(`equal split into 3 (${form === 'sizes' ? 'explicit sizes' : opset >= 18 ? 'num_outputs' : 'no sizes'}), middle output unused, opset ${opset} (float64)`, async () => {
        const model = smallModel(opset, [['x', F64, [2, 6]]], (b) => splitEqual(b, opset, form));
        const r = await gradCheck({ model, inputs: { x: feed([2, 6], opset) }, wrt: ['x'] });
        // The unused middle third must get an exactly zero gradient.
        expect(r.analytic.x!.length).toBe(12);
        expect(r.analytic.x!.filter((_, k) => k % 6 === 2 || k % 6 === 3)).toEqual([0, 0, 0, 0]);
        recordErr('Split', `${form} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-6);
      });
    }
  }
  it('unequal split [1,2,3] along axis 0 with all outputs used (opset 13)', async () => {
    const model = smallModel(13, [['x', F64, [6, 2]]], (b) => {
      const [p0, p1, p2] = b.split('x', 0, [1, 2, 3]);
      return b.op('Concat', [b.op('Mul', [p2!, p2!]), b.op('Neg', [p1!]), p0!], { axis: 0 });
    });
    const r = await gradCheck({ model, inputs: { x: feed([6, 2], 8) }, wrt: ['x'] });
    recordErr('Split', 'unequal, axis 0', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('dynamic batch: q/k/v split of [B,6] along axis 1 with one output unused, run at batch 1 and 4', async () => {
    const model = smallModel(18, [['x', F64, ['batch', 6]]], (b) => splitEqual(b, 18, 'sizes'));
    const r = await dynGradCheck({ model, feeds: (bs) => ({ x: feed([bs, 6], bs) }), wrt: ['x'] });
    expect(r.outDims).toEqual([null, 2]);
    recordErr('Split', 'dynamic batch', r.maxRelErr);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
