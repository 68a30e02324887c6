// The preparation every command starts with: the batch status it settles on (fixed, dynamic,
// rewritten, one image at a time), the numeric check behind "rewritten" and behind graphs whose
// shapes inference cannot follow, and the one notice of the fallback.
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo, type Dim } from '../../src/onnx/builder.js';
import { valueInfoShape } from '../../src/onnx/graph.js';
import type { LoadedModel } from '../../src/onnx/model.js';
import { prepareLoaded } from '../../src/services/prepareModel.js';

function loaded(proto: ModelProto): LoadedModel {
  return { proto, path: '/x/model.onnx', sha256: 'f'.repeat(64), sizeBytes: 0, externalFiles: [] };
}

/** y = op(x) for x [batch, 4, 3], with one node built by `body`. */
function model(body: (b: GraphBuilder) => string, batch: Dim = 'batch', outDims: Dim[] = ['batch', 4, 3]): ModelProto {
  const b = new GraphBuilder(17, 'p');
  const y = b.op('Identity', [body(b)], {}, 'y');
  const g = makeGraph('p', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [batch, 4, 3])], [tensorValueInfo(y, DataType.FLOAT, outDims)], b.initializers);
  return makeModel({ graph: g, opset: 17 });
}

describe('prepareLoaded', () => {
  it('a declared fixed batch stays fixed', async () => {
    const p = await prepareLoaded(loaded(model((b) => b.op('Relu', ['x']), 2, [2, 4, 3])));
    expect(p.preparation).toMatchObject({ batch: 'fixed', summary: 'fixed', verifiedMaxDiff: null });
    expect(p.loaded.prepared).toMatch(/:fixed$/);
  });

  it('where inference cannot follow the shapes (an op without a shape rule), a run at batch 3 against one-image runs decides', async () => {
    const ok = await prepareLoaded(loaded(model((b) => b.op('Einsum', ['x'], { equation: 'bij->bji' }), 'batch', ['batch', 3, 4])));
    expect(ok.preparation).toMatchObject({ batch: 'dynamic', verifiedMaxDiff: 0 });
    // GatherElements with [1,4,3] indices keeps one row whatever the batch: not what one-image runs give.
    const bad = model((b) => b.op('GatherElements', ['x', b.constI64([0, 1, 2, 2, 1, 0, 0, 0, 1, 2, 2, 2], [1, 4, 3])], { axis: 2 }));
    const p = await prepareLoaded(loaded(bad));
    expect(p.preparation.batch).toBe('one-at-a-time');
    expect(p.preparation.notice).toMatch(/at batch 3 its outputs differ from one-image runs|at batch 3 it fails/);
  });

  it('the fallback fixes the batch at 1 and calls the notice once', async () => {
    const lines: string[] = [];
    const p = await prepareLoaded(loaded(model((b) => b.op('Reshape', ['x', b.constI64([1, -1])]), 'batch', ['batch', 12])), { notice: (l) => lines.push(l) });
    expect(p.preparation.batch).toBe('one-at-a-time');
    expect(lines).toEqual([expect.stringMatching(/^vitpath: \/x\/model\.onnx: the export fixes the batch at 1 .*graph output y would be \[1,12B\].*running one image at a time\.$/)]);
    expect(valueInfoShape(p.loaded.proto.graph!.input[0]!).dims).toEqual([1, 4, 3]);
    expect(p.original).not.toBe(p.loaded.proto);
  });

  it('rewritten constants are checked numerically', async () => {
    const p = await prepareLoaded(loaded(model((b) => b.op('Reshape', [b.op('Reshape', ['x', b.constI64([1, 12])]), b.constI64([1, 4, 3])]))));
    expect(p.preparation.batch).toBe('rewritten');
    expect(p.preparation.rewrites.map((r) => r.detail)).toEqual(['target [-1,12]', 'target [-1,4,3]']);
    expect(p.preparation.verifiedMaxDiff).toBe(0);
    expect(p.preparation.summary).toBe('fixed at 1 in the export; rewritten (2 shape constants, checked against one-image runs)');
  });
});
