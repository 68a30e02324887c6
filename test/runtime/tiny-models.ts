// Tiny hand-built models for runtime tests: y = x·W (+ a batch-independent sum), with known W.
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo, type Dim } from '../../src/onnx/builder.js';
import { DataType } from '../../src/onnx/proto.js';
import { encodeModel } from '../../src/onnx/model.js';

export const IN = 4;
export const OUT = 3;
/** W[i][j] = (i + 1) * 0.5 - j, stored row-major [IN, OUT]. */
export const W = Float32Array.from({ length: IN * OUT }, (_, k) => (Math.floor(k / OUT) + 1) * 0.5 - (k % OUT));

/** Bytes of a MatMul model with input `x` [batch, 4] and output `y` [batch, 3]; batch fixed or symbolic. */
export function matmulModel(batch: number | string, opts: { extraSum?: boolean } = {}): Uint8Array {
  const b = new GraphBuilder(17, 't');
  const w = b.initializer('W', W, [IN, OUT]);
  b.op('MatMul', ['x', w], {}, 'y');
  const outputs = [tensorValueInfo('y', DataType.FLOAT, [batch, OUT] as Dim[])];
  if (opts.extraSum) {
    b.op('ReduceSum', ['x'], { keepdims: 0 }, 'total');
    outputs.push(tensorValueInfo('total', DataType.FLOAT, []));
  }
  const g = makeGraph('tiny', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [batch, IN] as Dim[])], outputs, b.initializers);
  return encodeModel(makeModel({ graph: g, opset: 17 }));
}

/** Reference y = x·W computed in float64 on the host, rows of `x` given row-major. */
export function matmulRef(x: Float32Array): Float64Array {
  const n = x.length / IN;
  const y = new Float64Array(n * OUT);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < OUT; j++) {
      let s = 0;
      for (let i = 0; i < IN; i++) s += x[r * IN + i]! * W[i * OUT + j]!;
      y[r * OUT + j] = s;
    }
  return y;
}

/** Deterministic sample rows: x[r][i] = sin(r * 1.7 + i) (no RNG needed). */
export function sampleRows(n: number): Float32Array {
  return Float32Array.from({ length: n * IN }, (_, k) => Math.sin(Math.floor(k / IN) * 1.7 + (k % IN)));
}
