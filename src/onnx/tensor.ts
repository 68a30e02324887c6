// TensorProto <-> typed arrays for the element types vitpath handles.
import { create, DataType, TensorProtoSchema, DataLocation, type TensorProto } from './proto.js';
import { unsupported } from '../errors.js';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array // float16 bits
  | Int8Array
  | Uint8Array
  | Int32Array
  | BigInt64Array;

/** A decoded tensor: element type, dims and a typed array in row-major order. */
export interface HostTensor {
  dataType: DataType;
  dims: number[];
  data: TypedArray;
}

export const DTYPE_NAMES: Partial<Record<DataType, string>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.BOOL]: 'bool',
};

/** Every ONNX element type by its TensorProto.DataType number (for messages about types vitpath lacks). */
const ONNX_TYPE_NAMES = [
  'undefined', 'float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'float64',
  'uint32', 'uint64', 'complex64', 'complex128', 'bfloat16', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz',
  'uint4', 'int4', 'float4e2m1', 'float8e8m0', 'uint2', 'int2',
];

export function dtypeName(t: DataType): string {
  return DTYPE_NAMES[t] ?? ONNX_TYPE_NAMES[t] ?? `ONNX data type ${t}`;
}

/** The refusal (exit 3) for a tensor whose element type vitpath does not read. */
function unsupportedType(t: DataType, tensorName?: string): Error {
  const which = tensorName ? `tensor "${tensorName}" has element type` : 'tensor element type';
  return unsupported(`${which} ${dtypeName(t)}, which vitpath does not read; it reads ${Object.values(DTYPE_NAMES).join(', ')} tensors.`);
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function bytesPerElement(t: DataType): number {
  switch (t) {
    case DataType.FLOAT:
    case DataType.INT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
      return 8;
    case DataType.FLOAT16:
      return 2;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
      return 1;
    default:
      throw unsupportedType(t);
  }
}

function viewOf(t: DataType, buf: Uint8Array, n: number): TypedArray {
  // Copy into an aligned buffer: protobuf byte fields may sit at any offset.
  const bytes = new Uint8Array(n * bytesPerElement(t));
  bytes.set(buf.subarray(0, bytes.length));
  const ab = bytes.buffer;
  switch (t) {
    case DataType.FLOAT:
      return new Float32Array(ab);
    case DataType.DOUBLE:
      return new Float64Array(ab);
    case DataType.FLOAT16:
      return new Uint16Array(ab);
    case DataType.INT8:
      return new Int8Array(ab);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(ab);
    case DataType.INT32:
      return new Int32Array(ab);
    case DataType.INT64:
      return new BigInt64Array(ab);
    default:
      throw unsupportedType(t);
  }
}

/**
 * Decode a TensorProto whose data is inline (raw_data or typed fields).
 * External tensors must be resolved first (see externalData.ts).
 */
export function tensorToHost(t: TensorProto): HostTensor {
  const dims = t.dims.map((d) => Number(d));
  const n = numel(dims);
  const dataType = t.dataType as DataType;
  if (DTYPE_NAMES[dataType] === undefined) throw unsupportedType(dataType, t.name);
  if (t.dataLocation === DataLocation.EXTERNAL) {
    throw new Error(`tensor ${t.name} has external data that was not loaded`);
  }
  if (t.rawData.length > 0) {
    if (t.rawData.length < n * bytesPerElement(dataType)) {
      throw new Error(`tensor ${t.name}: raw_data holds ${t.rawData.length} bytes, dims need ${n * bytesPerElement(dataType)}`);
    }
    return { dataType, dims, data: viewOf(dataType, t.rawData, n) };
  }
  switch (dataType) {
    case DataType.FLOAT:
      return { dataType, dims, data: Float32Array.from(t.floatData.slice(0, n)) };
    case DataType.DOUBLE:
      return { dataType, dims, data: Float64Array.from(t.doubleData.slice(0, n)) };
    case DataType.INT64:
      return { dataType, dims, data: BigInt64Array.from(t.int64Data.slice(0, n)) };
    case DataType.INT32:
      return { dataType, dims, data: Int32Array.from(t.int32Data.slice(0, n)) };
    case DataType.INT8:
      return { dataType, dims, data: Int8Array.from(t.int32Data.slice(0, n)) };
    case DataType.UINT8:
    case DataType.BOOL:
      return { dataType, dims, data: Uint8Array.from(t.int32Data.slice(0, n)) };
    case DataType.FLOAT16:
      return { dataType, dims, data: Uint16Array.from(t.int32Data.slice(0, n)) };
    default:
      throw unsupportedType(dataType, t.name);
  }
}

export function dataTypeOfArray(a: TypedArray): DataType {
  if (a instanceof Float32Array) return DataType.FLOAT;
  if (a instanceof Float64Array) return DataType.DOUBLE;
  if (a instanceof Uint16Array) return DataType.FLOAT16;
  if (a instanceof Int8Array) return DataType.INT8;
  if (a instanceof Uint8Array) return DataType.UINT8;
  if (a instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

/** Encode a typed array as a TensorProto with raw_data (little-endian, as ONNX requires). */
export function hostToTensor(name: string, data: TypedArray, dims: readonly number[], dataType?: DataType): TensorProto {
  if (numel(dims) !== data.length) throw new Error(`tensor ${name}: ${data.length} values do not fill dims [${dims.join(',')}]`);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType: dataType ?? dataTypeOfArray(data),
    rawData: raw,
  });
}

/** int64 values as JS numbers, throwing if any is outside the safe integer range. */
export function int64ToNumbers(a: BigInt64Array): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      // INT64 max/min are used as "to the end" markers in Slice; clamp them.
      out[i] = v > 0n ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
    } else out[i] = Number(v);
  }
  return out;
}

/** Numeric values of any integer or float tensor as JS numbers. */
export function toNumbers(t: HostTensor): number[] {
  if (t.data instanceof BigInt64Array) return int64ToNumbers(t.data);
  if (t.dataType === DataType.FLOAT16) return Array.from(t.data as Uint16Array, f16ToF32);
  return Array.from(t.data as ArrayLike<number>);
}

// ---- float16 helpers (IEEE 754 binary16, round to nearest even) ----
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
