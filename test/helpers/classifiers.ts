// Hand-built image classifiers with a known answer, for evaluation tests: logits = flatten(x) · W + b
// over [N, 1, 2, 2] images, in float32 or float16, with a dynamic or fixed batch, optionally
// followed by Softmax / LogSoftmax or reshaped to [N, K, 1, 1].
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { f32ToF16 } from '../../src/onnx/tensor.js';

export interface LinearSpec {
  /** [4][K] weights. */
  W: number[][];
  b: number[];
  type?: 'float32' | 'float16';
  batch?: 'dynamic' | number;
  head?: 'logits' | 'softmax' | 'logsoftmax' | 'nchw';
  opset?: number;
}

export function linearClassifier(s: LinearSpec): ModelProto {
  const K = s.b.length;
  const dt = s.type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const opset = s.opset ?? 17;
  const g = new GraphBuilder(opset, 'lin');
  const vals = (a: number[]) => (dt === DataType.FLOAT16 ? Uint16Array.from(a, f32ToF16) : Float32Array.from(a));
  const w = g.initializer('W', vals(s.W.flat()), [4, K], dt);
  const b = g.initializer('B', vals(s.b), [K], dt);
  const flat = g.op('Flatten', ['image'], { axis: 1 });
  const mm = g.op('MatMul', [flat, w]);
  let y = g.op('Add', [mm, b]);
  let dims: Array<number | string> = [s.batch === undefined || s.batch === 'dynamic' ? 'N' : s.batch, K];
  if (s.head === 'softmax') y = g.op('Softmax', [y], { axis: -1 });
  if (s.head === 'logsoftmax') y = g.op('LogSoftmax', [y], { axis: -1 });
  if (s.head === 'nchw') {
    y = g.op('Reshape', [y, g.constI64([0, K, 1, 1])]);
    dims = [...dims, 1, 1];
  }
  g.op('Identity', [y], {}, 'scores');
  const graph = makeGraph('linear', g.nodes, [tensorValueInfo('image', dt, [dims[0]!, 1, 2, 2])], [tensorValueInfo('scores', dt, dims)], g.initializers);
  return makeModel({ graph, opset });
}

/** The logits the linear classifier computes, in float64: x[i] · W + b. */
export function linearLogits(s: LinearSpec, x: Float32Array, n: number): Float64Array {
  const K = s.b.length;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) for (let c = 0; c < K; c++) {
    let v = s.b[c]!;
    for (let j = 0; j < 4; j++) v += x[i * 4 + j]! * s.W[j]![c]!;
    out[i * K + c] = v;
  }
  return out;
}
