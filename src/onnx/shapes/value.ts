// Small tensors as plain element lists for the shape evaluator: floats as numbers, integers and
// booleans as bigints, and integers that depend on the batch size as Lin. Conversions from and to
// HostTensor, element-type rounding and wrapping, and row-major index helpers.
import { DataType } from '../proto.js';
import { f16ToF32, f32ToF16, numel, type HostTensor } from '../tensor.js';
import { isLin, type Lin, type SymInt } from './sym.js';

export type Elem = number | bigint | Lin;

/** A tensor whose dims are known numbers and whose elements are listed in row-major order. */
export interface Val {
  dataType: DataType;
  dims: number[];
  data: Elem[];
}

const INT_BITS: Partial<Record<DataType, [number, boolean]>> = {
  [DataType.INT64]: [64, true],
  [DataType.INT32]: [32, true],
  [DataType.INT16]: [16, true],
  [DataType.INT8]: [8, true],
  [DataType.UINT64]: [64, false],
  [DataType.UINT32]: [32, false],
  [DataType.UINT16]: [16, false],
  [DataType.UINT8]: [8, false],
};

export function isIntType(t: DataType): boolean {
  return INT_BITS[t] !== undefined;
}
export function isFloatType(t: DataType): boolean {
  return t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16 || t === DataType.BFLOAT16;
}
/** Types the evaluator computes with (strings and complex numbers are not). */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round to bfloat16 (round to nearest even, NaN kept). */
function toBf16(v: number): number {
  if (Number.isNaN(v)) return NaN;
  f32[0] = v;
  const x = u32[0]!;
  const rounded = (x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000;
  u32[0] = rounded >>> 0;
  return f32[0]!;
}

/** A float value rounded to the precision of `t`. */
export function roundFloat(t: DataType, v: number): number {
  switch (t) {
    case DataType.FLOAT:
      return Math.fround(v);
    case DataType.FLOAT16:
      return f16ToF32(f32ToF16(v));
    case DataType.BFLOAT16:
      return toBf16(v);
    default:
      return v;
  }
}

/** An integer wrapped to the range of `t` (two's complement, as C casts do); bool is 0/1. */
export function wrapInt(t: DataType, v: bigint): bigint {
  if (t === DataType.BOOL) return v !== 0n ? 1n : 0n;
  const b = INT_BITS[t];
  if (!b) return v;
  return b[1] ? BigInt.asIntN(b[0], v) : BigInt.asUintN(b[0], v);
}

/** A number or bigint element converted to the element kind of `t` (no Lin). */
export function castElem(t: DataType, v: number | bigint): number | bigint {
  if (isFloatType(t)) return roundFloat(t, typeof v === 'bigint' ? Number(v) : v);
  if (typeof v === 'bigint') return wrapInt(t, v);
  if (t === DataType.BOOL) return v !== 0 ? 1n : 0n;
  if (!Number.isFinite(v)) return wrapInt(t, v > 0 ? 2n ** 63n - 1n : v < 0 ? -(2n ** 63n) : 0n);
  return wrapInt(t, BigInt(Math.trunc(v)));
}

/** A HostTensor as a Val; undefined for element types the evaluator does not handle. */
export function fromHost(t: HostTensor): Val | undefined {
  const dims = [...t.dims];
  const n = numel(dims);
  const data: Elem[] = new Array(n);
  const src = t.data;
  switch (t.dataType) {
    case DataType.FLOAT16:
      for (let i = 0; i < n; i++) data[i] = f16ToF32((src as Uint16Array)[i]!);
      break;
    case DataType.FLOAT:
    case DataType.DOUBLE:
      for (let i = 0; i < n; i++) data[i] = (src as Float32Array)[i]!;
      break;
    case DataType.INT64:
      for (let i = 0; i < n; i++) data[i] = (src as BigInt64Array)[i]!;
      break;
    case DataType.INT32:
    case DataType.INT8:
    case DataType.UINT8:
      for (let i = 0; i < n; i++) data[i] = BigInt((src as Int32Array)[i]!);
      break;
    case DataType.BOOL:
      for (let i = 0; i < n; i++) data[i] = (src as Uint8Array)[i]! ? 1n : 0n;
      break;
    default:
      return undefined;
  }
  return { dataType: t.dataType, dims, data };
}

/** Whether every element is known (no element depends on the batch size). */
export function isConcrete(v: Val): boolean {
  return v.data.every((e) => !isLin(e));
}

/** A concrete Val as a HostTensor; undefined when an element depends on B or the type has no typed array here. */
export function toHost(v: Val): HostTensor | undefined {
  if (!isConcrete(v)) return undefined;
  const n = v.data.length;
  const num = (i: number) => {
    const e = v.data[i]!;
    return typeof e === 'bigint' ? Number(e) : (e as number);
  };
  const big = (i: number) => {
    const e = v.data[i]!;
    return typeof e === 'bigint' ? e : BigInt(Math.trunc(e as number));
  };
  switch (v.dataType) {
    case DataType.FLOAT: {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = num(i);
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.DOUBLE: {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = num(i);
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.FLOAT16: {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = f32ToF16(num(i));
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.INT64: {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = big(i);
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.INT32: {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = Number(big(i));
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.INT8: {
      const a = new Int8Array(n);
      for (let i = 0; i < n; i++) a[i] = Number(big(i));
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    case DataType.UINT8:
    case DataType.BOOL: {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = Number(big(i));
      return { dataType: v.dataType, dims: [...v.dims], data: a };
    }
    default:
      return undefined;
  }
}

/** Row-major strides of dims. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

/** Integer elements as SymInts (undefined if some element is a float). */
export function symInts(v: Val): SymInt[] | undefined {
  const out: SymInt[] = [];
  for (const e of v.data) {
    if (typeof e === 'number') return undefined;
    out.push(e);
  }
  return out;
}

/** Concrete integer elements as numbers (undefined if an element is symbolic or a float). */
export function intsOf(v: Val | undefined): number[] | undefined {
  if (!v) return undefined;
  const out: number[] = [];
  for (const e of v.data) {
    if (typeof e !== 'bigint') return undefined;
    out.push(clampNumber(e));
  }
  return out;
}

/** A bigint as a number, clamped to the safe range (INT64 min/max mean "to the end" in Slice). */
export function clampNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

export function scalarVal(dataType: DataType, e: Elem): Val {
  return { dataType, dims: [], data: [e] };
}
