// Finite-difference checks of ReduceSum/ReduceMean/ReduceSumSquare/ReduceL2/ReduceLogSumExp:
// attribute axes (opset 11; ReduceSum until 12), input axes (ReduceSum from 13, others from 18),
// keepdims 1/0, all axes, noop_with_empty_axes, and a dynamic batch for ReduceMean.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { checkAndLog, feed, opModel, type OpInput } from './math-model.js';
import { dynGradCheck, F64, smallModel } from './dyncheck.js';

const xDims = [2, 3, 4];

function reduceModel(op: string, opset: number, axes: number[] | undefined, keepdims: number, extra: Record<string, number> = {}) {
  const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  const inputs: (OpInput | '')[] = [{ name: 'x', dims: xDims }];
  const attrs: Record<string, number | number[] | undefined> = { keepdims, ...extra };
  if (axesAsInput) {
    if (axes) inputs.push({ name: 'axes', dims: [axes.length], init: axes, dtype: DataType.INT64 });
  } else attrs.axes = axes;
  return opModel(op, inputs, attrs, opset);
}

const ops = ['ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp'];

describe('Reduce* gradient rules', () => {
  for (const op of ops) {
    for (const opset of [11, 13, 18]) {
      it(`${op} opset ${opset}: axes [1], [0,2], [-1], all; keepdims 1/0 (float64)`, async () => {
        for (const axes of [[1], [0, 2], [-1], undefined]) {
          for (const keepdims of [1, 0]) {
            const r = await checkAndLog(op, `opset ${opset} axes ${JSON.stringify(axes ?? 'all')} keepdims ${keepdims}`, {
              model: reduceModel(op, opset, axes, keepdims),
              inputs: { x: feed(xDims, 91, 0.2, 2) },
              wrt: ['x'],
              maxElems: 24,
            });
            expect(r.maxRelErr, `axes ${axes} keepdims ${keepdims}`).toBeLessThan(1e-6);
          }
        }
      });
    }
    it(`${op} noop_with_empty_axes=1 (opset 18)`, async () => {
      const r = await checkAndLog(op, 'noop_with_empty_axes opset 18', {
        model: reduceModel(op, 18, undefined, 1, { noop_with_empty_axes: 1 }),
        inputs: { x: feed(xDims, 92, 0.2, 2) },
        wrt: ['x'],
      });
      expect(r.maxRelErr).toBeLessThan(1e-6);
    });
  }
  it('ReduceMean over a dynamic batch axis (opset 18, run at batch 1 and 4)', async () => {
    const model = smallModel(18, [['x', F64, ['batch', 3, 4]]], (b) => b.op('ReduceMean', ['x', b.constI64([0, 2])], { keepdims: 0 }));
    const r = await dynGradCheck({ model, feeds: (n) => ({ x: feed([n, 3, 4], 93 + n, -2, 2) }), wrt: ['x'] });
    expect(r.outDims[0]).toBe(3);
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
