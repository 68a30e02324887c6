// Test-only model edits with src/onnx: float16 weights (stored float16, Cast back to float32), int8
// QDQ weights (symmetric per-tensor int8 + DequantizeLinear) and one weight row zeroed — the kinds
// of models quantize and prune write, and a deliberately damaged copy for eval's checks.
import { clone, DataType, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { makeNode } from '../../src/onnx/builder.js';
import { f32ToF16, hostToTensor, tensorToHost } from '../../src/onnx/tensor.js';

function floatInitializers(m: ModelProto) {
  return m.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT);
}

/** Every float32 initializer stored as float16 and cast back to float32 by a Cast node at the graph's start. */
export function withFloat16Weights(model: ModelProto): ModelProto {
  const m = clone(ModelProtoSchema, model);
  const g = m.graph!;
  const casts = [];
  for (const t of floatInitializers(m)) {
    const h = tensorToHost(t);
    const name = `${t.name}__f16`;
    g.initializer[g.initializer.indexOf(t)] = hostToTensor(name, Uint16Array.from(h.data as Float32Array, f32ToF16), h.dims, DataType.FLOAT16);
    casts.push(makeNode('Cast', [name], [t.name], { to: DataType.FLOAT }, `${name}__cast`));
  }
  g.node.unshift(...casts);
  return m;
}

/** Every rank-2 float32 initializer (linear weights) as symmetric per-tensor int8 with a DequantizeLinear. */
export function withInt8QdqWeights(model: ModelProto): ModelProto {
  const m = clone(ModelProtoSchema, model);
  const g = m.graph!;
  const nodes = [];
  for (const t of floatInitializers(m)) {
    if (t.dims.length !== 2) continue;
    const h = tensorToHost(t);
    const w = h.data as Float32Array;
    let max = 0;
    for (const v of w) max = Math.max(max, Math.abs(v));
    const scale = max / 127 || 1;
    const q = Int8Array.from(w, (v) => Math.max(-127, Math.min(127, Math.round(v / scale))));
    const base = t.name;
    g.initializer[g.initializer.indexOf(t)] = hostToTensor(`${base}__q`, q, h.dims, DataType.INT8);
    g.initializer.push(hostToTensor(`${base}__scale`, Float32Array.of(scale), []), hostToTensor(`${base}__zp`, Int8Array.of(0), [], DataType.INT8));
    nodes.push(makeNode('DequantizeLinear', [`${base}__q`, `${base}__scale`, `${base}__zp`], [base], {}, `${base}__dq`));
  }
  g.node.unshift(...nodes);
  return m;
}

/** A copy with row `row` of the 2-D initializer `name` set to zero. */
export function withZeroedRow(model: ModelProto, name: string, row: number): ModelProto {
  const m = clone(ModelProtoSchema, model);
  const g = m.graph!;
  const t = g.initializer.find((x) => x.name === name);
  if (!t || t.dims.length !== 2) throw new Error(`no 2-D initializer ${name}`);
  const h = tensorToHost(t);
  const cols = h.dims[1]!;
  const d = Float32Array.from(h.data as Float32Array).fill(0, row * cols, (row + 1) * cols);
  g.initializer[g.initializer.indexOf(t)] = hostToTensor(name, d, h.dims);
  return m;
}
