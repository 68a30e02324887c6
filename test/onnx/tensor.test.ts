// TensorProto <-> typed arrays for every element type vitpath handles, and the float16 codec.
import { describe, expect, it } from 'vitest';
import { create, DataType, TensorProtoSchema } from '../../src/onnx/proto.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { f16ToF32, f32ToF16, hostToTensor, int64ToNumbers, numel, tensorToHost, toNumbers } from '../../src/onnx/tensor.js';

describe('raw_data round trip', () => {
  const cases: [string, Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array, DataType][] = [
    ['float32', Float32Array.from([1.5, -2.25, 3e-8, 1e30]), DataType.FLOAT],
    ['float64', Float64Array.from([Math.PI, -1e-300, 7]), DataType.DOUBLE],
    ['float16 bits', Uint16Array.from([0x3c00, 0xc000, 0x7bff]), DataType.FLOAT16],
    ['int8', Int8Array.from([-128, 0, 127]), DataType.INT8],
    ['uint8', Uint8Array.from([0, 128, 255]), DataType.UINT8],
    ['int32', Int32Array.from([-(2 ** 31), 5, 2 ** 31 - 1]), DataType.INT32],
    ['int64', BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 62n]), DataType.INT64],
  ];
  for (const [name, data, dt] of cases) {
    it(name, () => {
      const t = hostToTensor('t', data, [data.length], dt);
      expect(t.dataType).toBe(dt);
      expect(t.rawData.length).toBe(data.byteLength);
      const back = tensorToHost(t);
      expect(back.dims).toEqual([data.length]);
      expect(back.data.constructor).toBe(data.constructor);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
    });
  }
  it('reads raw_data at an unaligned offset (protobuf byte fields may start anywhere)', () => {
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setFloat64(1, -0.125, true);
    const t = create(TensorProtoSchema, { dims: [1n], dataType: DataType.DOUBLE, rawData: buf.subarray(1) });
    expect(Array.from(tensorToHost(t).data as Float64Array)).toEqual([-0.125]);
  });
  it('refuses dims the data does not fill', () => {
    expect(() => hostToTensor('t', Float32Array.of(1, 2, 3), [2, 2])).toThrow(/do not fill/);
  });
});

describe('typed fields (tensors written without raw_data)', () => {
  it('float_data, double_data, int64_data and int32_data for the small types', () => {
    expect(Array.from(tensorToHost(create(TensorProtoSchema, { dims: [2n], dataType: DataType.FLOAT, floatData: [1, 2] })).data as Float32Array)).toEqual([1, 2]);
    expect(Array.from(tensorToHost(create(TensorProtoSchema, { dims: [1n], dataType: DataType.DOUBLE, doubleData: [0.1] })).data as Float64Array)).toEqual([0.1]);
    expect(Array.from(tensorToHost(create(TensorProtoSchema, { dims: [2n], dataType: DataType.INT64, int64Data: [3n, -4n] })).data as BigInt64Array)).toEqual([3n, -4n]);
    expect(Array.from(tensorToHost(create(TensorProtoSchema, { dims: [2n], dataType: DataType.INT8, int32Data: [-5, 6] })).data as Int8Array)).toEqual([-5, 6]);
    const f16 = tensorToHost(create(TensorProtoSchema, { dims: [1n], dataType: DataType.FLOAT16, int32Data: [0x3c00] }));
    expect(toNumbers(f16)).toEqual([1]);
  });
});

describe('element types vitpath does not read', () => {
  // Exit 3 naming the tensor and the type (it used to say "dtype#4"): found on ONNX's uint16/uint32/
  // string/bfloat16 test tensors (test/conformance).
  const cases: [DataType, string, MessageInitShape<typeof TensorProtoSchema>][] = [
    [DataType.UINT16, 'uint16', { rawData: new Uint8Array(4) }],
    [DataType.UINT64, 'uint64', { uint64Data: [1n, 2n] }],
    [DataType.STRING, 'string', { stringData: [new Uint8Array([104]), new Uint8Array([105])] }],
    [DataType.BFLOAT16, 'bfloat16', { rawData: new Uint8Array(4) }],
  ];
  for (const [dt, name, field] of cases) {
    it(name, () => {
      const t = create(TensorProtoSchema, { name: 'w', dims: [2n], dataType: dt, ...field });
      let err: unknown;
      try {
        tensorToHost(t);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VitpathError);
      expect((err as VitpathError).exitCode).toBe(ExitCode.UNSUPPORTED);
      expect((err as VitpathError).message).toMatch(new RegExp(`tensor "w" has element type ${name}, which vitpath does not read`));
    });
  }
});

describe('float16 codec (IEEE binary16, round to nearest even)', () => {
  it('known encodings', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff); // largest finite
    expect(f32ToF16(65520)).toBe(0x7c00); // rounds to infinity
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16(NaN) & 0x3ff).not.toBe(0);
  });
  it('ties go to even', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // halfway between 0x3c00 and 0x3c01: even is 0x3c00
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between 0x3c01 and 0x3c02: even is 0x3c02
  });
  it('every finite half decodes and re-encodes to itself', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // inf / NaN
      expect(f32ToF16(f16ToF32(h))).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });
});

describe('helpers', () => {
  it('numel and int64 to numbers (INT64 extremes clamp to safe integers, as Slice ends use them)', () => {
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([])).toBe(1);
    expect(int64ToNumbers(BigInt64Array.from([5n, 2n ** 63n - 1n, -(2n ** 63n)]))).toEqual([5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);
  });
});
