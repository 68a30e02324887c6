// float16 -> float32 upcast: the same graph computed in float32 with the float16 weights converted
// exactly (every float16 value is a float32 value). vitpath analyses float16 models this way, so
// the objective, its gradient graph and every reduction run in float32 instead of accumulating
// float16 rounding through a reverse pass; node and tensor names are unchanged, so a layout
// located on the original model holds for the upcast one.
//
// Changed: float16 initializers and Constant / ConstantOfShape tensors (converted), `Cast` and
// `CastLike`-free type attributes (`to`, `dtype`) naming float16, and the element type of graph
// inputs, outputs and value_info entries. What stays: float attributes (they are float32 already,
// e.g. LayerNormalization's epsilon), integer tensors, and float16 values' exact magnitudes (a
// constant rounded to float16 by the exporter keeps its rounded value).
import { AttrType, create, DataType, TensorProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, AttributeProtoSchema, TypeProtoSchema, TypeProto_TensorSchema, ValueInfoProtoSchema, type AttributeProto, type ModelProto, type TensorProto, type ValueInfoProto } from '../proto.js';
import { f16ToF32, hostToTensor, tensorToHost } from '../tensor.js';

export interface UpcastReport {
  model: ModelProto;
  /** Float16 initializers and constant tensors converted. */
  tensors: number;
  /** Type attributes (Cast `to`, `dtype`) changed from float16 to float32. */
  typeAttributes: number;
  /** Graph inputs / outputs / value_info entries retyped. */
  valueTypes: number;
}

/** Whether the model stores any float16 tensor or declares float16 values (then upcastFloat16 changes it). */
export function hasFloat16(model: ModelProto): boolean {
  const g = model.graph!;
  if (g.initializer.some((t) => t.dataType === DataType.FLOAT16)) return true;
  const typed = (v: ValueInfoProto) => v.type?.value.case === 'tensorType' && v.type.value.value.elemType === DataType.FLOAT16;
  if ([...g.input, ...g.output].some(typed)) return true;
  return g.node.some((n) => n.attribute.some((a) => a.t?.dataType === DataType.FLOAT16 || ((a.name === 'to' || a.name === 'dtype') && a.type === AttrType.INT && Number(a.i) === DataType.FLOAT16)));
}

function toFloat32(t: TensorProto): TensorProto {
  const h = tensorToHost(t);
  const src = h.data as Uint16Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16ToF32(src[i]!);
  return create(TensorProtoSchema, { ...hostToTensor(t.name, out, h.dims, DataType.FLOAT), docString: t.docString });
}

/** The model with every float16 tensor, type attribute and value type turned into float32. */
export function upcastFloat16(model: ModelProto): UpcastReport {
  let tensors = 0;
  let typeAttributes = 0;
  let valueTypes = 0;
  const src = model.graph!;
  const initializer = src.initializer.map((t) => {
    if (t.dataType !== DataType.FLOAT16) return t;
    tensors++;
    return toFloat32(t);
  });
  const attr = (a: AttributeProto): AttributeProto => {
    if (a.t && a.t.dataType === DataType.FLOAT16) {
      tensors++;
      return create(AttributeProtoSchema, { ...a, t: toFloat32(a.t) });
    }
    if ((a.name === 'to' || a.name === 'dtype') && a.type === AttrType.INT && Number(a.i) === DataType.FLOAT16) {
      typeAttributes++;
      return create(AttributeProtoSchema, { ...a, i: BigInt(DataType.FLOAT) });
    }
    return a;
  };
  const node = src.node.map((n) => {
    const attribute = n.attribute.map(attr);
    return attribute.some((a, i) => a !== n.attribute[i]) ? create(NodeProtoSchema, { ...n, attribute }) : n;
  });
  const retype = (v: ValueInfoProto): ValueInfoProto => {
    if (v.type?.value.case !== 'tensorType' || v.type.value.value.elemType !== DataType.FLOAT16) return v;
    valueTypes++;
    const tt = create(TypeProto_TensorSchema, { ...v.type.value.value, elemType: DataType.FLOAT });
    return create(ValueInfoProtoSchema, { ...v, type: create(TypeProtoSchema, { ...v.type, value: { case: 'tensorType', value: tt } }) });
  };
  const graph = create(GraphProtoSchema, {
    ...src,
    node,
    initializer,
    input: src.input.map(retype),
    output: src.output.map(retype),
    valueInfo: src.valueInfo.map(retype),
  });
  return { model: create(ModelProtoSchema, { ...model, graph }), tensors, typeAttributes, valueTypes };
}
