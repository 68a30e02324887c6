// Declare fixed sizes for a graph input's symbolic dims (keeping the ones given as strings), e.g.
// an optimum export's [batch_size, num_channels, height, width] pinned to [batch_size, 3, 224, 224]
// once the image size is known from the model's position embedding. Only the declaration changes.
import { DataType, ValueInfoProtoSchema, type ModelProto } from '../proto.js';
import { tensorValueInfo, type Dim } from '../builder.js';
import { copyMessage, GraphEditor } from '../edit.js';
import { usageError } from '../../errors.js';

/** `model` with input `name` declared as `dims` (same element type). */
export function setInputDims(model: ModelProto, name: string, dims: readonly Dim[]): ModelProto {
  const g = model.graph!;
  const v = g.input.find((x) => x.name === name);
  if (!v) throw usageError(`the model has no input named "${name}"`);
  const elem = v.type?.value.case === 'tensorType' ? (v.type.value.value.elemType as DataType) : DataType.FLOAT;
  const ed = new GraphEditor(model);
  ed.mapValues((x, where) => (where === 'input' && x === v ? copyMessage(ValueInfoProtoSchema, tensorValueInfo(name, elem, dims), { docString: v.docString }) : x));
  return ed.model();
}
