// The float16 -> float32 upcast vitpath analyses float16 models with: every float16 tensor,
// type attribute and declared type becomes float32 with exactly the same values, names stay, and
// the upcast graph computes the float16 model's function in float32 (checked against a float64
// evaluation in JS of the same float16 weights). Plus the committed float16 export run natively.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttrType, DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel, loadModel } from '../../src/onnx/model.js';
import { f16ToF32, f32ToF16, hostToTensor, tensorToHost } from '../../src/onnx/tensor.js';
import { hasFloat16, upcastFloat16 } from '../../src/onnx/rewrite/upcast.js';
import { createSession } from '../../src/runtime/session.js';
import { Graph } from '../../src/onnx/graph.js';

const W = [0.1, -0.333, 2.5, 1e-3, -7.25, 0.0999];
const C = 1.4142135; // rounds to 1.4140625 in float16

/** y = Cast_f16(x_f32) @ W_f16 / c_f16 (Constant node), output float16; input float32 (keep_io_types style) or float16. */
function tiny(inputType: DataType): ModelProto {
  const b = new GraphBuilder(17, 't', new Set());
  const w = b.initializer('w', Uint16Array.from(W, f32ToF16), [3, 2], DataType.FLOAT16);
  const x = inputType === DataType.FLOAT ? b.op('Cast', ['x'], { to: DataType.FLOAT16 }) : 'x';
  const c = b.op('Constant', [], { value: hostToTensor('c', Uint16Array.of(f32ToF16(C)), [], DataType.FLOAT16) });
  const y = b.op('Div', [b.op('MatMul', [x, w]), c], {}, 'y');
  const graph = makeGraph('t', b.nodes, [tensorValueInfo('x', inputType, ['n', 3])], [tensorValueInfo(y, DataType.FLOAT16, ['n', 2])], b.initializers);
  return makeModel({ graph, opset: 17 });
}

describe('upcastFloat16', () => {
  it('converts tensors, Cast targets and declared types exactly, keeping names', () => {
    const m = tiny(DataType.FLOAT16);
    expect(hasFloat16(m)).toBe(true);
    const r = upcastFloat16(m);
    expect(hasFloat16(r.model)).toBe(false);
    const g = r.model.graph!;
    const w = tensorToHost(g.initializer.find((t) => t.name === 'w')!);
    expect(w.dataType).toBe(DataType.FLOAT);
    expect(Array.from(w.data as Float32Array)).toEqual(W.map((v) => f16ToF32(f32ToF16(v))));
    const cNode = g.node.find((n) => n.opType === 'Constant')!;
    expect(Array.from(tensorToHost(cNode.attribute[0]!.t!).data as Float32Array)).toEqual([1.4140625]);
    const declared = new Graph(r.model);
    expect(declared.shapeOf('x')?.dataType).toBe(DataType.FLOAT);
    expect(declared.shapeOf('y')?.dataType).toBe(DataType.FLOAT);
    expect(g.node.map((n) => n.output[0])).toEqual(m.graph!.node.map((n) => n.output[0]));
    expect(r).toMatchObject({ tensors: 2, typeAttributes: 0, valueTypes: 2 });

    const io = upcastFloat16(tiny(DataType.FLOAT));
    const cast = io.model.graph!.node.find((n) => n.opType === 'Cast')!;
    expect(cast.attribute.find((a) => a.name === 'to' && a.type === AttrType.INT)!.i).toBe(BigInt(DataType.FLOAT));
    expect(io).toMatchObject({ tensors: 2, typeAttributes: 1, valueTypes: 1 });
  });

  it('computes the float16 model in float32: equal to a float64 evaluation of the float16 values', async () => {
    const x = Float32Array.from([0.5, -1.25, 3.0, 0.1, 0.2, -0.3]);
    const up = upcastFloat16(tiny(DataType.FLOAT)).model;
    const s = await createSession(encodeModel(up), { provider: 'cpu', threads: 1 });
    const y = (await s.run({ x: { data: x, dims: [2, 3] } }, ['y'])).y!.data as Float32Array;
    await s.release();
    const w = W.map((v) => f16ToF32(f32ToF16(v)));
    const xs = Array.from(x); // the input's Cast to float16 became a Cast to float32: inputs are not rounded
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        let acc = 0;
        for (let k = 0; k < 3; k++) acc += xs[i * 3 + k]! * w[k * 2 + j]!;
        expect(Math.abs(y[i * 2 + j]! - acc / 1.4140625)).toBeLessThan(2e-7 * Math.abs(acc / 1.4140625)); // float32 rounding
      }
    }
  });

  it('leaves a float32 model alone', () => {
    const { proto } = loadModel(path.resolve(__dirname, '../../fixtures/exports/hf-vit.onnx'));
    expect(hasFloat16(proto)).toBe(false);
    expect(upcastFloat16(proto)).toMatchObject({ tensors: 0, typeAttributes: 0, valueTypes: 0 });
  });
});

describe('the committed float16 export (hf-vit-fp16)', () => {
  const EXPORTS = path.resolve(__dirname, '../../fixtures/exports');
  const doc = JSON.parse(fs.readFileSync(path.join(EXPORTS, 'hf-vit-fp16.reference.json'), 'utf8')) as { allImages: string[]; allLogits: number[][] };

  it('runs natively in float16 within float16 rounding of the float64 reference (5e-3), upcast within 1e-5', async () => {
    const { proto } = loadModel(path.join(EXPORTS, 'hf-vit-fp16.onnx'));
    const { discoverImages } = await import('../../src/data/sources.js');
    const { loadBatch } = await import('../../src/data/dataset.js');
    const { inferPreprocess } = await import('../../src/data/preprocess.js');
    const items = doc.allImages.map((f) => discoverImages(path.join(EXPORTS, f)).items[0]!);
    const x = await loadBatch(items, inferPreprocess(['n', 1, 28, 28]), { concurrency: 1 });
    const n = items.length;
    const native = await createSession(encodeModel(proto), { provider: 'cpu', threads: 1 });
    const zh = (await native.run({ pixel_values: { data: Uint16Array.from(x, f32ToF16), dims: [n, 1, 28, 28], type: 'float16' } }, ['logits'])).logits!.data as Uint16Array;
    await native.release();
    const up = await createSession(encodeModel(upcastFloat16(proto).model), { provider: 'cpu', threads: 1 });
    const zu = (await up.run({ pixel_values: { data: x, dims: [n, 1, 28, 28] } }, ['logits'])).logits!.data as Float32Array;
    await up.release();
    let dNative = 0;
    let dUp = 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 10; c++) {
        const ref = doc.allLogits[i]![c]!;
        dNative = Math.max(dNative, Math.abs(f16ToF32(zh[i * 10 + c]!) - ref));
        dUp = Math.max(dUp, Math.abs(zu[i * 10 + c]! - ref));
      }
    }
    // float16 keeps 11 significant bits: logits of magnitude ~2-4 carry ~2e-3 of rounding each step.
    expect(dNative).toBeLessThan(5e-3);
    expect(dNative).toBeGreaterThan(1e-5); // it really ran in float16
    expect(dUp).toBeLessThan(1e-5);
  });
});
