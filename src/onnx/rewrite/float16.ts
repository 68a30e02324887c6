// float32 -> float16 conversion with float32 islands: every float tensor computed by the graph goes
// float16 except in the nodes `keep` marks (LayerNorm in any form, Softmax: what overflows or loses
// its precision in float16), whose inputs and outputs are cast at the boundary. Graph inputs and
// outputs stay float32 (a Cast after the input's consumers, before each output). float32 weights read
// only by float16 nodes are stored float16, clamped to ±65504 with a count; Constant values,
// ConstantOfShape values and Cast `to` attributes in the float16 part follow. Element types come from
// vitpath's shape inference (stored value_info is never trusted; float value_info entries are dropped).
import type { ModelProto, NodeProto, TensorProto } from '../proto.js';
import { DataType } from '../proto.js';
import { GraphEditor } from '../edit.js';
import { makeNode } from '../builder.js';
import { makeAttr } from '../attributes.js';
import { f32ToF16, hostToTensor, tensorToHost } from '../tensor.js';
import { inferShapes } from '../shapes/infer.js';
import { valueInfoShape } from '../graph.js';
import { unsupported } from '../../errors.js';

export const FLOAT16_MAX = 65504;

/** Ops computed in float32 whatever `keep` says: their float inputs are not the data type T (e.g. Resize scales). */
const ALWAYS_FLOAT32 = new Set(['Resize', 'Upsample', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial']);

export interface Float16Result {
  model: ModelProto;
  /** float32 weight values beyond ±65504, stored as ±65504. */
  clampedWeights: number;
  /** Non-zero weights below float16's smallest subnormal (stored as 0). */
  flushedWeights: number;
  /** Weights converted (elements). */
  convertedWeights: number;
  /** Nodes kept in float32. */
  float32Nodes: number;
  /** Cast nodes inserted at the float32/float16 boundaries. */
  casts: number;
  /** Float tensors computed in float16 (activations, for an overflow check). */
  float16Activations: string[];
}

function toF16(t: TensorProto, name: string, count: { clamped: number; flushed: number; converted: number }): TensorProto {
  const h = tensorToHost(t);
  const src = h.data as Float32Array;
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    let v = src[i]!;
    if (v > FLOAT16_MAX || v < -FLOAT16_MAX) {
      count.clamped++;
      v = Math.sign(v) * FLOAT16_MAX;
    }
    const h16 = f32ToF16(v);
    if (v !== 0 && (h16 & 0x7fff) === 0) count.flushed++;
    out[i] = h16;
  }
  count.converted += src.length;
  return hostToTensor(name, out, h.dims, DataType.FLOAT16);
}

/** Convert `model` to float16 outside the nodes `keep` accepts (see the file comment). */
export function convertToFloat16(model: ModelProto, keep: (n: NodeProto) => boolean, label = 'model'): Float16Result {
  const ed = new GraphEditor(model);
  const g = ed.graph;
  const inf = inferShapes(model);
  const typeOf = (name: string): DataType | undefined => inf.infos.get(name)?.dataType ?? g.shapeOf(name)?.dataType;
  const isFloat = (name: string) => typeOf(name) === DataType.FLOAT;
  for (const n of g.nodes) {
    for (const o of n.output) {
      if (o && typeOf(o) === undefined && n.opType !== 'Constant') {
        throw unsupported(`${label}: cannot tell the element type of ${o} (op ${n.opType}); float16 conversion needs every tensor's type. Report the op in an issue, or use --mode int8.`);
      }
    }
  }
  const graphOutputs = new Set(g.outputNames);
  const inputs = new Set(g.inputNames);
  const kept = new Set(g.nodes.filter((n) => keep(n) || ALWAYS_FLOAT32.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')));
  // Constant nodes and initializers go float16 when every reader is a float16 node.
  const readersHalf = (name: string) => g.consumersOf(name).length > 0 && g.consumersOf(name).every((c) => !kept.has(c)) && !graphOutputs.has(name);
  for (const n of g.nodes) if (n.opType === 'Constant' && !readersHalf(n.output[0]!)) kept.add(n);
  const half = (n: NodeProto) => !kept.has(n);

  // The float16 / float32 name of every float tensor; home = the type it is computed in.
  const b = ed.builder('fp16');
  const home = new Map<string, DataType>();
  const version = new Map<string, Map<DataType, string>>();
  const count = { clamped: 0, flushed: 0, converted: 0 };
  const fp16Acts: string[] = [];
  for (const t of model.graph!.initializer) {
    if (t.dataType !== DataType.FLOAT) continue;
    if (readersHalf(t.name)) {
      ed.replaceInitializer(toF16(t, t.name, count));
      home.set(t.name, DataType.FLOAT16);
    } else home.set(t.name, DataType.FLOAT);
  }
  for (const name of inputs) if (isFloat(name)) home.set(name, DataType.FLOAT);
  for (const n of g.nodes) {
    for (const o of n.output) {
      if (!o || !isFloat(o)) continue;
      home.set(o, half(n) ? DataType.FLOAT16 : DataType.FLOAT);
      if (half(n) && n.opType !== 'Constant') fp16Acts.push(o);
    }
  }
  for (const [name, t] of home) version.set(name, new Map([[t, name]]));
  // Graph outputs computed in float16: the producer writes a fresh name, a Cast restores the output's name.
  let casts = 0;
  for (const o of graphOutputs) {
    if (home.get(o) !== DataType.FLOAT16) continue;
    const p = g.producerOf(o)!;
    const h = b.fresh(`${o}_float16`);
    ed.editNode(p, (cur) => ({ output: cur.output.map((x) => (x === o ? h : x)) }));
    ed.insertAfter(o, [makeNode('Cast', [h], [o], { to: DataType.FLOAT }, b.fresh('Cast'))]);
    casts++;
    version.set(o, new Map([[DataType.FLOAT16, h], [DataType.FLOAT, o]]));
    fp16Acts[fp16Acts.indexOf(o)] = h;
  }
  const versionOf = (name: string, want: DataType.FLOAT | DataType.FLOAT16): string => {
    const v = version.get(name)!;
    const have = v.get(want);
    if (have) return have;
    const src = v.get(home.get(name)!)!;
    const out = b.fresh(`${name}_${want === DataType.FLOAT16 ? 'float16' : 'float32'}`);
    ed.insertAfter(name, [makeNode('Cast', [src], [out], { to: want }, b.fresh('Cast'))]);
    casts++;
    v.set(want, out);
    return out;
  };

  for (const n of g.nodes) {
    const want = half(n) ? DataType.FLOAT16 : DataType.FLOAT;
    const inputsNow = n.input.map((i) => (i && home.has(i) && home.get(i) !== want ? versionOf(i, want) : i));
    const outputsNow = ed.current(n).output;
    const attrs = n.attribute.map((a) => {
      if (!half(n)) return a;
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) return makeAttr('to', DataType.FLOAT16);
      if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && a.name === 'value' && a.t?.dataType === DataType.FLOAT) return makeAttr('value', toF16(a.t, '', count));
      return a;
    });
    ed.editNode(n, { input: inputsNow, output: outputsNow, attribute: attrs });
  }
  ed.filterValueInfo((v) => {
    const d = valueInfoShape(v).dataType;
    return d !== DataType.FLOAT && d !== DataType.FLOAT16;
  });
  return { model: ed.model(), clampedWeights: count.clamped, flushedWeights: count.flushed, convertedWeights: count.converted, float32Nodes: [...kept].filter((n) => n.opType !== 'Constant').length, casts, float16Activations: fp16Acts };
}
