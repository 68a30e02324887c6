// The integer schemes of int8 quantization as plain functions over typed arrays: int8 weights
// symmetric per output channel, uint8 activations asymmetric per tensor, int32 biases at the
// product of the input and weight scales (what QLinearMatMul / MatMulIntegerToFloat / QGemm take).
// Scales are float32 (as stored in the model) and every rounding is round-half-to-even, like
// ONNX's QuantizeLinear.

/** Round half to even (ONNX QuantizeLinear's rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface WeightQuant {
  /** int8 values, same layout as the float weight. */
  q: Int8Array;
  /** One float32 scale per output channel. */
  scale: Float32Array;
  /** Channels whose weights are all zero (scale 1, values 0). */
  zeroChannels: number;
}

/**
 * Symmetric int8 per output channel of a 2-D weight `w` [rows, cols]: `channelAxis` 1 when the
 * weight is stored [in, out] (MatMul, Gemm without transB), 0 when [out, in] (Gemm with transB).
 * scale_c = max|w_c| / 127, q = round(w / scale_c) in [-127, 127] (zero point 0), so the
 * dequantized value q * scale_c is within half a step of w.
 */
export function quantizeWeightPerChannel(w: Float32Array, rows: number, cols: number, channelAxis: 0 | 1): WeightQuant {
  if (w.length !== rows * cols) throw new Error(`quantizeWeightPerChannel: ${w.length} values for [${rows}, ${cols}]`);
  const channels = channelAxis === 1 ? cols : rows;
  const absMax = new Float64Array(channels);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = channelAxis === 1 ? c : r;
      const a = Math.abs(w[r * cols + c]!);
      if (a > absMax[ch]!) absMax[ch] = a;
    }
  }
  const scale = new Float32Array(channels);
  let zeroChannels = 0;
  for (let ch = 0; ch < channels; ch++) {
    const s = Math.fround(absMax[ch]! / 127);
    if (s > 0 && Number.isFinite(s)) scale[ch] = s;
    else {
      scale[ch] = 1;
      zeroChannels++;
    }
  }
  const q = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const s = scale[channelAxis === 1 ? c : r]!;
      q[i] = Math.max(-127, Math.min(127, roundHalfEven(w[i]! / s)));
    }
  }
  return { q, scale, zeroChannels };
}

export interface ActivationQuant {
  /** float32 scale. */
  scale: number;
  /** uint8 zero point. */
  zeroPoint: number;
  /** The float range the scale and zero point represent: [(0 - zp) * s, (255 - zp) * s]. */
  low: number;
  high: number;
}

/**
 * Asymmetric uint8 parameters of a float range: the range is widened to hold 0 (so zero and zero
 * padding are exact), scale = (high - low) / 255, zero point = round(-low / scale).
 */
export function activationParams(min: number, max: number): ActivationQuant {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new Error(`activationParams: bad range [${min}, ${max}]`);
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (hi === lo) return { scale: 1, zeroPoint: 0, low: 0, high: 255 };
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = Math.max(0, Math.min(255, roundHalfEven(-lo / scale)));
  return { scale, zeroPoint, low: (0 - zeroPoint) * scale, high: (255 - zeroPoint) * scale };
}

/** Fake quantization of one value: what QuantizeLinear then DequantizeLinear give. */
export function fakeQuantU8(x: number, a: Pick<ActivationQuant, 'scale' | 'zeroPoint'>): number {
  const q = Math.max(0, Math.min(255, roundHalfEven(x / a.scale) + a.zeroPoint));
  return Math.fround((q - a.zeroPoint) * a.scale);
}

export interface BiasQuant {
  q: Int32Array;
  /** Per output channel: input scale × weight scale (float32). */
  scale: Float32Array;
}

const INT32_MAX = 2 ** 31 - 1;

/** int32 bias at scale s_x · s_w[c], zero point 0; null when a value would not fit in int32. */
export function quantizeBias(b: Float32Array, inputScale: number, weightScale: Float32Array): BiasQuant | null {
  if (b.length !== weightScale.length) throw new Error(`quantizeBias: ${b.length} biases for ${weightScale.length} channels`);
  const scale = new Float32Array(b.length);
  const q = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const s = Math.fround(inputScale * weightScale[c]!);
    scale[c] = s;
    const v = roundHalfEven(b[c]! / s);
    if (!(s > 0) || !Number.isFinite(v) || Math.abs(v) > INT32_MAX) return null;
    q[c] = v;
  }
  return { q, scale };
}
