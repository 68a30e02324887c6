// Gradients of pieces that tile one axis of a tensor (the q/k/v picks of a fused qkv projection,
// slices side by side): one Concat of the pieces' gradients instead of a Sum of full-size zero-pads,
// checked against central differences, with no Pad left in the gradient graph; pieces that do not
// tile the axis (a gap, an overlap) keep the Sum of pads, also checked. A single-element index list
// (the class-token row [0]) is a zero-pad too, not a one-hot MatMul.
import { describe, expect, it } from 'vitest';
import { gradCheck, randomArray } from '../helpers/gradcheck.js';
import { F64, smallModel } from './dyncheck.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import type { GraphBuilder } from '../../src/onnx/builder.js';

const n = (d: number[]) => d.reduce((a, c) => a * c, 1);
const feed = (dims: number[], seed: number) => ({ data: randomArray(n(dims), seed, -1, 1, true), dims });

async function gradOps(model: ModelProto, x: string): Promise<string[]> {
  const facts = await probeFacts(model);
  const loss = model.graph!.output[0]!.name;
  const g = buildGradientGraph(model, { loss, wrt: [x], facts });
  return g.model.graph!.node.filter((nd) => nd.name.startsWith('grad/')).map((nd) => nd.opType);
}

const CASES: [string, number[], (b: GraphBuilder) => string, boolean][] = [
  [
    'q/k/v picks of axis 0 (scalar indices)',
    [3, 2, 4],
    (b) => {
      const [q, k, v] = [0, 1, 2].map((i) => b.op('Gather', ['x', b.constI64([i], [])], { axis: 0 }));
      return b.op('Add', [b.op('Mul', [q!, k!]), b.op('Mul', [v!, v!])]);
    },
    true,
  ],
  [
    'q/k/v picks in another order, on axis 1',
    [2, 3, 4],
    (b) => {
      const [v, q, k] = [2, 0, 1].map((i) => b.op('Gather', ['x', b.constI64([i], [])], { axis: 1 }));
      return b.op('Sub', [b.op('Mul', [q!, v!]), k!]);
    },
    true,
  ],
  [
    'three slices side by side on the last axis',
    [2, 3, 6],
    (b) => {
      const a = b.slice('x', [0], [1], [2]);
      const c = b.slice('x', [1], [4], [2]);
      const d = b.slice('x', [4], [6], [2]);
      return b.op('Mul', [b.op('Add', [b.reduceSum(c, [2], true), a]), b.op('Mul', [d, d])]);
    },
    true,
  ],
  [
    'picks with a gap (indices 0 and 2 of 3): Sum of pads',
    [3, 2, 4],
    (b) => {
      const [q, v] = [0, 2].map((i) => b.op('Gather', ['x', b.constI64([i], [])], { axis: 0 }));
      return b.op('Mul', [q!, v!]);
    },
    false,
  ],
  [
    'overlapping slices: Sum of pads',
    [2, 5],
    (b) => {
      const a = b.slice('x', [0], [3], [1]);
      const c = b.slice('x', [2], [5], [1]);
      return b.op('Mul', [a, c]);
    },
    false,
  ],
];

describe('pieces tiling an axis get a Concat gradient', () => {
  for (const [name, dims, build, tiles] of CASES) {
    it(name, async () => {
      const model = smallModel(13, [['x', F64, dims]], build);
      const r = await gradCheck({ model, inputs: { x: feed(dims, 7) }, wrt: ['x'] });
      expect(r.maxRelErr).toBeLessThan(1e-6);
      const ops = await gradOps(model, 'x');
      if (tiles) {
        expect(ops).not.toContain('Pad');
        expect(ops).toContain('Concat');
      } else expect(ops).toContain('Pad');
    });
  }

  it('a single-element index list ([2] on axis 1) is a zero-pad, not a one-hot MatMul', async () => {
    const dims = [2, 4, 3];
    const model = smallModel(13, [['x', F64, dims]], (b) => {
      const y = b.op('Gather', ['x', b.constI64([2], [1])], { axis: 1 });
      return b.op('Mul', [y, y]);
    });
    const r = await gradCheck({ model, inputs: { x: feed(dims, 8) }, wrt: ['x'] });
    expect(r.maxRelErr).toBeLessThan(1e-6);
    const ops = await gradOps(model, 'x');
    expect(ops).toContain('Pad');
    expect(ops).not.toContain('MatMul');
  });
});
