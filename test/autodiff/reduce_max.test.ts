// Finite-difference checks of ReduceMax/ReduceMin (attribute axes before opset 18, input axes
// from 18; keepdims 0/1; all axes; noop_with_empty_axes; dynamic batch) and the tie convention.
import { describe, expect, it } from 'vitest';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { encodeModel } from '../../src/onnx/model.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession } from '../../src/runtime/session.js';
import { checkAndLog, feed, opModel, type OpInput } from './math-model.js';
import { dynGradCheck, F64, smallModel } from './dyncheck.js';

const xDims = [2, 3, 4];

/** A Reduce* model with axes as attribute (opset < 18) or constant input (opset >= 18). */
function reduceModel(op: string, opset: number, axes: number[] | undefined, keepdims: number, extra: Record<string, number> = {}) {
  const inputs: (OpInput | '')[] = [{ name: 'x', dims: xDims }];
  const attrs: Record<string, number | number[] | undefined> = { keepdims, ...extra };
  if (opset >= 18) {
    if (axes) inputs.push({ name: 'axes', dims: [axes.length], init: axes, dtype: 7 /* INT64 */ });
  } else attrs.axes = axes;
  return opModel(op, inputs, attrs, opset);
}

describe('ReduceMax / ReduceMin gradient rules', () => {
  for (const op of ['ReduceMax', 'ReduceMin']) {
    for (const opset of op === 'ReduceMax' ? [11, 13, 18, 20] : [11, 18]) {
      it(`${op} opset ${opset}: axes [1], [0,2], [-1], all; keepdims 1/0 (float64)`, async () => {
        for (const axes of [[1], [0, 2], [-1], undefined]) {
          for (const keepdims of [1, 0]) {
            const r = await checkAndLog(op, `opset ${opset} axes ${JSON.stringify(axes ?? 'all')} keepdims ${keepdims}`, {
              model: reduceModel(op, opset, axes, keepdims),
              inputs: { x: feed(xDims, 81, -2, 2) },
              wrt: ['x'],
            });
            expect(r.maxRelErr, `axes ${axes} keepdims ${keepdims}`).toBeLessThan(1e-6);
          }
        }
      });
    }
  }
  it('noop_with_empty_axes=1 passes the gradient through (opset 18)', async () => {
    const r = await checkAndLog('ReduceMax', 'noop_with_empty_axes opset 18', {
      model: reduceModel('ReduceMax', 18, undefined, 1, { noop_with_empty_axes: 1 }),
      inputs: { x: feed(xDims, 82, -2, 2) },
      wrt: ['x'],
    });
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
  it('ties share the gradient evenly (torch.amax convention)', async () => {
    const model = opModel('ReduceMax', [{ name: 'x', dims: [2, 4] }], { axes: [1], keepdims: 0 }, 13);
    const x = [1, 3, 3, 2, 5, 5, 5, -1];
    const inputs = { x: { data: Float64Array.from(x), dims: [2, 4] } };
    const facts = await probeFacts(model, { feeds: () => inputs, threads: 1 });
    const { model: gm, gradOutputs } = buildGradientGraph(model, { loss: 'y', wrt: ['x'], facts });
    const s = await createSession(encodeModel(gm), { provider: 'cpu', threads: 1 });
    const dx = Array.from((await s.run(inputs))[gradOutputs.x!]!.data as Float64Array);
    await s.release();
    // Each row's seed gradient (1) is divided among the positions equal to that row's max.
    const want: number[] = [];
    for (let row = 0; row < 2; row++) {
      const vals = x.slice(row * 4, row * 4 + 4);
      const m = Math.max(...vals);
      const ties = vals.filter((v) => v === m).length;
      want.push(...vals.map((v) => (v === m ? 1 / ties : 0)));
    }
    expect(dx).toEqual(want);
  });
  it('dynamic batch, reducing a non-batch axis (opset 18, run at batch 1 and 4)', async () => {
    const model = smallModel(18, [['x', F64, ['batch', 3, 4]]], (b) => b.op('ReduceMax', ['x', b.constI64([2])], { keepdims: 0 }));
    const r = await dynGradCheck({ model, feeds: (n) => ({ x: feed([n, 3, 4], 83 + n, -2, 2) }), wrt: ['x'] });
    expect(r.outDims[0]).toBeNull();
    expect(r.maxRelErr).toBeLessThan(1e-6);
  });
});
