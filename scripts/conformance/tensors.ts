// Test-data tensors through vitpath's tensor code: read a .pb file (TensorProto) into a HostTensor,
// turn HostTensors into ONNX Runtime feeds, and compare runtime outputs with expected tensors.
import * as fs from 'node:fs';
import { fromBinary, toBinary, DataType, TensorProtoSchema, type ModelProto, type TensorProto } from '../../src/onnx/proto.js';
import { dtypeName, f16ToF32, tensorToHost, type HostTensor } from '../../src/onnx/tensor.js';
import { unsupported } from '../../src/errors.js';
import type { Feed, Output } from '../../src/runtime/session.js';

export interface PbTensor {
  proto: TensorProto;
  host: HostTensor;
  /** Whether decoding and re-encoding the TensorProto gives the file's bytes back. */
  bytesRoundTrip: boolean;
}

/**
 * The graph inputs a test feeds (those without an initializer), in order, with the kind of value
 * each takes. Sequence and optional inputs are refused by name: vitpath reads tensors only.
 */
export function realInputs(model: ModelProto): string[] {
  const g = model.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input.filter((v) => !inits.has(v.name)).map((v) => v.name);
}

/** Refuse a graph value that is not a tensor (sequence, optional, map, sparse tensor). */
export function assertTensorValue(model: ModelProto, name: string, role: 'input' | 'output'): void {
  const g = model.graph!;
  const v = (role === 'input' ? g.input : g.output).find((x) => x.name === name);
  const kind = v?.type?.value.case;
  if (kind && kind !== 'tensorType') {
    throw unsupported(`graph ${role} "${name}" is a ${kind.replace(/Type$/, '')} value; vitpath reads and writes tensors only.`);
  }
}

/** Read a TensorProto file and decode it with vitpath's tensor code (refuses unsupported dtypes, exit 3). */
export function readPbTensor(file: string): PbTensor {
  const bytes = fs.readFileSync(file);
  const proto = fromBinary(TensorProtoSchema, bytes);
  const again = toBinary(TensorProtoSchema, proto);
  const bytesRoundTrip = again.length === bytes.length && Buffer.compare(Buffer.from(again), bytes) === 0;
  const host = tensorToHost(proto);
  return { proto, host, bytesRoundTrip };
}

const FEED_TYPES: Partial<Record<DataType, Feed['type']>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.FLOAT16]: 'float16',
  [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8',
  [DataType.BOOL]: 'bool',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
};

/** An ONNX Runtime feed holding a HostTensor's values (no copy). */
export function feedOf(t: HostTensor): Feed {
  const type = FEED_TYPES[t.dataType];
  if (!type) throw unsupported(`tensor element type ${dtypeName(t.dataType)} cannot be fed to ONNX Runtime by vitpath`);
  return { data: t.data as Feed['data'], dims: t.dims, type };
}

/** The ONNX Runtime type name of each element type the tensor code reads. */
export function ortTypeName(t: DataType): string {
  return FEED_TYPES[t] ?? dtypeName(t);
}

/** Values as float64 numbers (float16 bits decoded, int64 and bool as numbers). */
export function asNumbers(data: HostTensor['data'] | Output['data'], type: string): Float64Array {
  const out = new Float64Array(data.length);
  if (type === 'float16') for (let i = 0; i < data.length; i++) out[i] = f16ToF32((data as Uint16Array)[i]!);
  else for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** Tolerances of ONNX's backend test runner (rtol 1e-3, atol 1e-7), atol raised for float16 and float32 sums. */
export function toleranceFor(type: string): Tolerance {
  if (type === 'float16') return { rtol: 1e-3, atol: 1e-3 };
  if (type === 'float32') return { rtol: 1e-3, atol: 1e-5 };
  if (type === 'float64') return { rtol: 1e-3, atol: 1e-7 };
  return { rtol: 0, atol: 0 };
}

/**
 * Compare a runtime output with an expected tensor: same element type and dims, values within
 * |got - want| <= atol + rtol |want| (NaN where NaN is expected, infinities equal). Returns the
 * first disagreement as text, or undefined when they match.
 */
export function compareTensor(got: Output, want: HostTensor, label: string): string | undefined {
  const wantType = ortTypeName(want.dataType);
  if (got.type !== wantType) return `${label}: ONNX Runtime gives ${got.type}, the test expects ${wantType}`;
  if (got.dims.length !== want.dims.length || got.dims.some((d, i) => d !== want.dims[i])) {
    return `${label}: ONNX Runtime gives dims [${got.dims.join(',')}], the test expects [${want.dims.join(',')}]`;
  }
  const a = asNumbers(got.data, got.type);
  const b = asNumbers(want.data, wantType);
  const { rtol, atol } = toleranceFor(wantType);
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) ? Number.isNaN(x) : x === y || Math.abs(x - y) <= atol + rtol * Math.abs(y)) continue;
    return `${label}[${i}]: ONNX Runtime gives ${x}, the test expects ${y} (rtol ${rtol}, atol ${atol})`;
  }
  return undefined;
}
