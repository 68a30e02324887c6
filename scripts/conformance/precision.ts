// Re-type a test model's floating-point tensors (float16/float32 -> float64, or float16 -> float32)
// so finite differences can run in the widest precision ONNX Runtime has kernels for: value infos,
// initializers, tensor attributes (Constant, ConstantOfShape), Constant value_float(s), and the
// Cast/EyeLike/Random*Like target types.
import { clone, AttrType, DataType, ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/onnx/proto.js';
import { hostToTensor, tensorToHost, toNumbers, type HostTensor } from '../../src/onnx/tensor.js';
import { makeAttr } from '../../src/onnx/attributes.js';

export type FloatTarget = DataType.DOUBLE | DataType.FLOAT;

/** Whether element type `t` is re-typed to `to` (wider floats stay as they are). */
export function widens(t: number, to: FloatTarget): boolean {
  if (to === DataType.DOUBLE) return t === DataType.FLOAT || t === DataType.FLOAT16 || t === DataType.BFLOAT16;
  return t === DataType.FLOAT16 || t === DataType.BFLOAT16;
}

/** A float HostTensor's values in the target type. */
export function castHost(t: HostTensor, to: FloatTarget): HostTensor {
  const v = toNumbers(t);
  return { dataType: to, dims: t.dims, data: to === DataType.DOUBLE ? Float64Array.from(v) : Float32Array.from(v) };
}

function retypeTensor(t: TensorProto, to: FloatTarget): TensorProto {
  if (!widens(t.dataType, to)) return t;
  const h = castHost(tensorToHost(t), to);
  return hostToTensor(t.name, h.data, h.dims, to);
}

function retypeValueInfo(v: ValueInfoProto, to: FloatTarget): void {
  if (v.type?.value.case === 'tensorType' && widens(v.type.value.value.elemType, to)) v.type.value.value.elemType = to;
}

function retypeNode(n: NodeProto, to: FloatTarget): void {
  // LayerNormalization's Mean/InvStdDev have the stash type (float32 by default): widen it with X.
  if (n.opType === 'LayerNormalization' && to === DataType.DOUBLE) {
    n.attribute = [...n.attribute.filter((a) => a.name !== 'stash_type'), makeAttr('stash_type', DataType.DOUBLE)];
  }
  n.attribute = n.attribute.map((a) => {
    if (a.type === AttrType.TENSOR && a.t) a.t = retypeTensor(a.t, to);
    else if (to === DataType.DOUBLE && n.opType === 'Constant' && (a.name === 'value_float' || a.name === 'value_floats')) {
      const scalar = a.name === 'value_float';
      const vals = scalar ? [a.f] : a.floats;
      return makeAttr('value', hostToTensor('', Float64Array.from(vals), scalar ? [] : [vals.length], DataType.DOUBLE));
    } else if (a.type === AttrType.INT && (a.name === 'to' || a.name === 'dtype') && widens(Number(a.i), to)) a.i = BigInt(to);
    return a;
  });
}

/** A copy of `model` with its floating-point tensors re-typed to `to`. Subgraphs are left alone. */
export function retypeFloats(model: ModelProto, to: FloatTarget): ModelProto {
  const m = clone(ModelProtoSchema, model);
  const g = m.graph!;
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) retypeValueInfo(v, to);
  g.initializer = g.initializer.map((t) => retypeTensor(t, to));
  for (const n of g.node) retypeNode(n, to);
  return m;
}
