// Declare fixed sizes for a graph input's symbolic dims (keeping the ones given as strings), e.g.
// an optimum export's [batch_size, num_channels, height, width] pinned to [batch_size, 3, 224, 224]
// once the image size is known from the model's position embedding. Only the declaration changes.
import { create, DataType, GraphProtoSchema, ModelProtoSchema, type ModelProto } from '../proto.js';
import { tensorValueInfo, type Dim } from '../builder.js';
import { usageError } from '../../errors.js';

/** `model` with input `name` declared as `dims` (same element type). */
export function setInputDims(model: ModelProto, name: string, dims: readonly Dim[]): ModelProto {
  const g = model.graph!;
  const i = g.input.findIndex((v) => v.name === name);
  if (i < 0) throw usageError(`the model has no input named "${name}"`);
  const v = g.input[i]!;
  const elem = v.type?.value.case === 'tensorType' ? (v.type.value.value.elemType as DataType) : DataType.FLOAT;
  const input = [...g.input];
  input[i] = { ...tensorValueInfo(name, elem, dims), docString: v.docString };
  return create(ModelProtoSchema, { ...model, graph: create(GraphProtoSchema, { ...g, input }) });
}
