// Read and write NodeProto attributes with plain JS values.
import { create, AttrType, AttributeProtoSchema, type AttributeProto, type NodeProto, type TensorProto, type GraphProto } from './proto.js';

export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}
export function attrInt(node: NodeProto, name: string, dflt: number): number;
export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = getAttr(node, name);
  return a ? Number(a.i) : dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number;
export function attrFloat(node: NodeProto, name: string): number | undefined;
export function attrFloat(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = getAttr(node, name);
  return a ? a.f : dflt;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map(Number) : undefined;
}
export function attrString(node: NodeProto, name: string, dflt?: string): string | undefined {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : dflt;
}
export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return getAttr(node, name)?.t;
}

export type AttrValue = number | bigint | string | number[] | bigint[] | TensorProto | GraphProto | { floats: number[] } | { float: number };

/**
 * Build an attribute. Integers are written as INT/INTS; use `{ float: x }` / `{ floats: [...] }`
 * for float attributes (plain non-integer numbers are also taken as floats).
 */
export function makeAttr(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'bigint') return create(AttributeProtoSchema, { name, type: AttrType.INT, i: v });
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(v) });
    return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: v });
  }
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) {
    return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: (v as (number | bigint)[]).map((x) => BigInt(x)) });
  }
  if ('float' in v) return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: v.float });
  if ('floats' in v) return create(AttributeProtoSchema, { name, type: AttrType.FLOATS, floats: v.floats });
  if ((v as { $typeName?: string }).$typeName === 'onnx.TensorProto') return create(AttributeProtoSchema, { name, type: AttrType.TENSOR, t: v as TensorProto });
  return create(AttributeProtoSchema, { name, type: AttrType.GRAPH, g: v as GraphProto });
}
