// Finite-difference checks of Softmax/LogSoftmax: every axis (negative too) with pre-13 "coerce to
// 2-D" semantics (opsets 9, 11) and single-axis semantics (13, 18), plus a dynamic batch axis.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { checkAndLog, feed, opModel } from './math-model.js';
import { dynGradCheck, F64, smallModel } from './dyncheck.js';

const dims = [2, 3, 4];

describe('Softmax / LogSoftmax gradient rules', () => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    for (const opset of [9, 11, 13, 18]) {
      it(`${op} opset ${opset}, axis default, 0, 1, 2, -1, -2 (float64)`, async () => {
        for (const axis of [undefined, 0, 1, 2, -1, -2]) {
          const r = await checkAndLog(op, `opset ${opset} axis ${axis ?? 'default'} [2,3,4]`, {
            model: opModel(op, [{ name: 'x', dims }], { axis }, opset),
            inputs: { x: feed(dims, 41, -2, 2) },
            wrt: ['x'],
          });
          expect(r.maxRelErr, `axis ${axis}`).toBeLessThan(1e-6);
        }
      });
    }
  }
  it('Softmax float32 within 1e-3', async () => {
    const r = await checkAndLog('Softmax', 'opset 13 axis -1 float32', {
      model: opModel('Softmax', [{ name: 'x', dims }], {}, 13, DataType.FLOAT),
      inputs: { x: feed(dims, 42, -2, 2, false) },
      wrt: ['x'],
    });
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });
  for (const opset of [11, 13]) {
    it(`Softmax and LogSoftmax over a dynamic batch, opset ${opset} (run at batch 1 and 4)`, async () => {
      for (const op of ['Softmax', 'LogSoftmax']) {
        const model = smallModel(opset, [['x', F64, ['batch', 3, 4]]], (b) => b.op(op, ['x'], { axis: 1 }));
        const r = await dynGradCheck({ model, feeds: (n) => ({ x: feed([n, 3, 4], 43 + n, -2, 2) }), wrt: ['x'] });
        expect(r.outDims[0]).toBeNull();
        expect(r.maxRelErr, op).toBeLessThan(1e-6);
      }
    });
  }
});
