// probeFacts at batch 1 and 2 (what the gradient engine uses, to probe faster) learns the same
// facts as at 2 and 3: a dim that is 1 at batch 1 is still batch-dependent, a static dim equal to
// a probe size stays static, and the batch axes found are the same.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { interveneNeurons } from '../../src/onnx/rewrite/intervene.js';
import { batchDim } from '../../src/vit/tokens.js';
import { appendObjective } from '../../src/onnx/autodiff/objective.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { FIXTURE_DIR, fixtureManifest } from '../rewrite/layouts.js';

describe('probe batch sizes', () => {
  it('static dims of 1 and 2 stay static, batch axes are found, at batches (1, 2)', async () => {
    const b = new GraphBuilder(17, 't', new Set(['x', 'y', 'z']));
    // x [B, 1, 2] -> y = x + c with c [1, 2, 2] -> [B, 2, 2]; z = Transpose(y) -> [2, 2, B].
    const c = b.constF32([1, 2, 3, 4], [1, 2, 2]);
    b.op('Add', ['x', c], {}, 'y');
    b.op('Transpose', ['y'], { perm: [1, 2, 0] }, 'z');
    const model = makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['b', 1, 2])], [tensorValueInfo('y', DataType.FLOAT), tensorValueInfo('z', DataType.FLOAT)], b.initializers) });
    for (const batches of [[1, 2], [2, 3]] as [number, number][]) {
      const axes = new Map<string, number>();
      const f = await probeFacts(model, { threads: 1, batches, batchAxes: axes });
      expect(f.get('x')!.dims).toEqual([null, 1, 2]);
      expect(f.get('y')!.dims).toEqual([null, 2, 2]);
      expect(f.get('z')!.dims).toEqual([2, 2, null]);
      expect(axes.get('x')).toBe(0);
      expect(axes.get('z')).toBe(2);
    }
    await expect(probeFacts(model, { threads: 1, batches: [2, 2] })).rejects.toThrow(/distinct/);
  });

  const files = Object.keys(fixtureManifest());
  it.each(files)('%s: the intervened graph has the same facts and batch axes at (1, 2) as at (2, 3)', async (file) => {
    const loaded = loadModel(path.join(FIXTURE_DIR, file));
    const layout = locateVit(loaded.proto);
    const iv = interveneNeurons(loaded.proto, layout, { mode: 'affine', exposeActivations: true });
    const obj = appendObjective(iv.model, { logits: layout.logits, batchDim: batchDim(layout) });
    const a1 = new Map<string, number>();
    const a2 = new Map<string, number>();
    const f1 = await probeFacts(obj.model, { threads: 1, batches: [1, 2], batchAxes: a1 });
    const f2 = await probeFacts(obj.model, { threads: 1, batches: [2, 3], batchAxes: a2 });
    expect([...f1.keys()].sort()).toEqual([...f2.keys()].sort());
    for (const [k, v] of f2) expect(f1.get(k), k).toEqual(v);
    expect([...a1].sort()).toEqual([...a2].sort());
  });
});
