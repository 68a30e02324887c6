// Re-exports of the ONNX protobuf schema (onnx-buf) plus the few enum values we use by name.
export {
  ModelProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  AttributeProtoSchema,
  ValueInfoProtoSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  AttributeProto_AttributeType as AttrType,
  TensorProto_DataType as DataType,
  TensorProto_DataLocation as DataLocation,
} from 'onnx-buf';
export type {
  ModelProto,
  GraphProto,
  NodeProto,
  TensorProto,
  AttributeProto,
  ValueInfoProto,
  TypeProto,
  OperatorSetIdProto,
  StringStringEntryProto,
} from 'onnx-buf';
export { create, fromBinary, toBinary, clone } from '@bufbuild/protobuf';
