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
import { AttrType, DataType, TensorProtoSchema, AttributeProtoSchema, TypeProtoSchema, TypeProto_TensorSchema, ValueInfoProtoSchema, type AttributeProto, type ModelProto, type TensorProto, type ValueInfoProto } from '../proto.js';
import { f16ToF32, hostToTensor, tensorToHost } from '../tensor.js';
import { copyMessage, GraphEditor } from '../edit.js';

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
  return copyMessage(TensorProtoSchema, hostToTensor(t.name, out, h.dims, DataType.FLOAT), { docString: t.docString });
}

/** The model with every float16 tensor, type attribute and value type turned into float32. */
export function upcastFloat16(model: ModelProto): UpcastReport {
  let tensors = 0;
  let typeAttributes = 0;
  let valueTypes = 0;
  const ed = new GraphEditor(model);
  for (const t of model.graph!.initializer) {
    if (t.dataType !== DataType.FLOAT16) continue;
    tensors++;
    ed.replaceInitializer(toFloat32(t));
  }
  const attr = (a: AttributeProto): AttributeProto => {
    if (a.t && a.t.dataType === DataType.FLOAT16) {
      tensors++;
      return copyMessage(AttributeProtoSchema, a, { t: toFloat32(a.t) });
    }
    if ((a.name === 'to' || a.name === 'dtype') && a.type === AttrType.INT && Number(a.i) === DataType.FLOAT16) {
      typeAttributes++;
      return copyMessage(AttributeProtoSchema, a, { i: BigInt(DataType.FLOAT) });
    }
    return a;
  };
  for (const n of ed.graph.nodes) {
    const attribute = n.attribute.map(attr);
    if (attribute.some((a, i) => a !== n.attribute[i])) ed.editNode(n, { attribute });
  }
  const retype = (v: ValueInfoProto): ValueInfoProto => {
    if (v.type?.value.case !== 'tensorType' || v.type.value.value.elemType !== DataType.FLOAT16) return v;
    valueTypes++;
    const tt = copyMessage(TypeProto_TensorSchema, v.type.value.value, { elemType: DataType.FLOAT });
    return copyMessage(ValueInfoProtoSchema, v, { type: copyMessage(TypeProtoSchema, v.type, { value: { case: 'tensorType', value: tt } }) });
  };
  ed.mapValues(retype);
  return { model: ed.model(), tensors, typeAttributes, valueTypes };
}
