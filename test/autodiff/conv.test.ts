import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import type { AttrValue } from '../../src/onnx/attributes.js';
import type { Dim } from '../../src/onnx/builder.js';
import { dynGradCheck, F32, recordErr, smallModel } from './dyncheck.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1), dims });

// ONNX Runtime's CPU Conv/ConvTranspose kernels are float32-only, so these checks run in
// float32. The loss is linear in X (W fixed) and in W (X fixed), so central differences are
// exact for any step: a large step (0.25) keeps float32 rounding of the loss (~1e-7 relative)
// far below the 1e-3 target instead of amplifying it as a tiny step would.
const EPS = 0.25;

interface ConvCase {
  label: string;
  x: number[];
  w: number[];
  attrs: Record<string, AttrValue>;
  bias?: boolean;
}

const cases: ConvCase[] = [
  { label: 'patch embedding 4x4/4 (kernel == stride)', x: [2, 3, 8, 8], w: [5, 3, 4, 4], attrs: { kernel_shape: [4, 4], strides: [4, 4] }, bias: true },
  { label: 'patch embedding 4x4/4 with leftover rows/cols (9x10)', x: [2, 2, 9, 10], w: [3, 2, 4, 4], attrs: { kernel_shape: [4, 4], strides: [4, 4] }, bias: true },
  { label: 'general 3x3, stride 1, pad 1', x: [2, 3, 6, 6], w: [4, 3, 3, 3], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, bias: true },
  { label: '3x3, stride 2, asymmetric pads, a row the strides skip', x: [2, 2, 8, 6], w: [3, 2, 3, 3], attrs: { strides: [2, 2], pads: [1, 0, 1, 1] } },
  { label: '3x2, stride (2,1), auto_pad SAME_UPPER', x: [1, 2, 7, 5], w: [2, 2, 3, 2], attrs: { strides: [2, 1], auto_pad: 'SAME_UPPER' }, bias: true },
  { label: '1-D, kernel 3 stride 2, VALID', x: [2, 3, 9], w: [4, 3, 3], attrs: { strides: [2], auto_pad: 'VALID' }, bias: true },
];

function convModel(opset: number, c: ConvCase, batch: Dim = c.x[0]) {
  const ins: [string, typeof F32, Dim[]][] = [['x', F32, [batch, ...c.x.slice(1)]], ['w', F32, c.w]];
  if (c.bias) ins.push(['bias', F32, [c.w[0]!]]);
  return smallModel(opset, ins, (b) => b.op('Conv', c.bias ? ['x', 'w', 'bias'] : ['x', 'w'], c.attrs));
}

describe('Conv gradient rule', () => {
  for (const opset of [9, 11, 13, 18, 21]) {
    for (const c of cases) {
      if (opset !== 13 && !c.label.startsWith('patch embedding 4x4/4 (') && !c.label.startsWith('general')) continue;
      it(`${c.label} at opset ${opset} (float32): dX, dW${c.bias ? ', dB' : ''}`, async () => {
        const inputs: Record<string, ReturnType<typeof feed>> = { x: feed(c.x, 1), w: feed(c.w, 2) };
        if (c.bias) inputs.bias = feed([c.w[0]!], 3);
        const wrt = Object.keys(inputs);
        const r = await gradCheck({ model: convModel(opset, c), inputs, wrt, eps: EPS, maxElems: 48 });
        recordErr('Conv', `${c.label} opset ${opset}`, r.maxRelErr);
        expect(r.maxRelErr).toBeLessThan(1e-3);
      });
    }
  }
  for (const c of [cases[0]!, cases[2]!]) {
    it(`dynamic batch: ${c.label}, run at batch 1 and 4`, async () => {
      const inputs = (bs: number) => {
        const f: Record<string, ReturnType<typeof feed>> = { x: feed([bs, ...c.x.slice(1)], bs), w: feed(c.w, 2) };
        if (c.bias) f.bias = feed([c.w[0]!], 3);
        return f;
      };
      // The dynamic check squares the output: the loss is then quadratic in each input, for
      // which central differences are still exact, so the same large step applies.
      const r = await dynGradCheck({ model: convModel(17, c, 'batch'), feeds: inputs, wrt: Object.keys(inputs(1)), eps: 1, maxElems: 32 });
      expect(r.outDims[0]).toBeNull();
      recordErr('Conv', `dynamic batch ${c.label}`, r.maxRelErr);
      expect(r.maxRelErr).toBeLessThan(1e-3);
    });
  }
  it('group > 1 is refused with an unsupported error naming the node', async () => {
    const c: ConvCase = { label: 'grouped', x: [1, 4, 5, 5], w: [4, 2, 3, 3], attrs: { group: 2 } };
    const model = convModel(13, c);
    const facts = await probeFacts(model, { threads: 1 });
    expect(() => buildGradientGraph(model, { loss: model.graph!.output[0]!.name, wrt: ['x'], facts })).toThrow(/Conv node .*group=2/);
  });
});
