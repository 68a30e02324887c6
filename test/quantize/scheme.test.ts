// The int8 schemes: per-channel symmetric weights within half a step of the float weights, uint8
// activation parameters that represent 0 exactly and cover the range, int32 biases at s_x·s_w.
import { describe, expect, it } from 'vitest';
import { activationParams, fakeQuantU8, quantizeBias, quantizeWeightPerChannel, roundHalfEven } from '../../src/onnx/quantScheme.js';
import { mulberry32 } from '../../src/random.js';

describe('roundHalfEven', () => {
  it('rounds ties to the even neighbour, like QuantizeLinear', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -3, 3]);
  });
});

describe('quantizeWeightPerChannel', () => {
  const rand = mulberry32(3);
  const rows = 7;
  const cols = 5;
  // Channels of very different magnitudes, one all-zero column.
  const w = Float32Array.from({ length: rows * cols }, (_, i) => (i % cols === 3 ? 0 : (rand() - 0.5) * 10 ** (i % cols - 2)));

  for (const axis of [1, 0] as const) {
    it(`keeps every dequantized weight within half a step (channel axis ${axis})`, () => {
      const { q, scale, zeroChannels } = quantizeWeightPerChannel(w, rows, cols, axis);
      expect(scale.length).toBe(axis === 1 ? cols : rows);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const i = r * cols + c;
          const s = scale[axis === 1 ? c : r]!;
          expect(Math.abs(q[i]!)).toBeLessThanOrEqual(127);
          // float32 product as DequantizeLinear computes it; half a step plus float32 rounding of the product.
          expect(Math.abs(Math.fround(q[i]! * s) - w[i]!)).toBeLessThanOrEqual(s / 2 + Math.abs(w[i]!) * 2 ** -23);
        }
      }
      if (axis === 1) {
        expect(zeroChannels).toBe(1);
        expect(scale[3]).toBe(1);
        // The largest |w| of each non-zero channel maps to ±127.
        for (const c of [0, 1, 2, 4]) {
          let m = 0;
          for (let r = 0; r < rows; r++) m = Math.max(m, Math.abs(q[r * cols + c]!));
          expect(m).toBe(127);
        }
      }
    });
  }
});

describe('activationParams', () => {
  it('represents 0 exactly and covers the calibrated range', () => {
    for (const [lo, hi] of [
      [-1.3, 4.7],
      [0.2, 3],
      [-5, -0.5],
      [-0.17, 12.5],
    ] as const) {
      const a = activationParams(lo, hi);
      expect(Number.isInteger(a.zeroPoint) && a.zeroPoint >= 0 && a.zeroPoint <= 255).toBe(true);
      expect(fakeQuantU8(0, a)).toBe(0);
      expect(a.low).toBeLessThanOrEqual(Math.min(lo, 0) + a.scale / 2);
      expect(a.high).toBeGreaterThanOrEqual(Math.max(hi, 0) - a.scale / 2);
      // Inside the range fake quantization errs by at most half a step.
      for (let k = 0; k <= 50; k++) {
        const x = Math.min(lo, 0) + ((Math.max(hi, 0) - Math.min(lo, 0)) * k) / 50;
        expect(Math.abs(fakeQuantU8(x, a) - x)).toBeLessThanOrEqual(a.scale / 2 + 1e-6);
      }
    }
    expect(Math.abs(activationParams(-1, 1).zeroPoint - 127.5)).toBe(0.5);
    expect(activationParams(0, 0)).toEqual({ scale: 1, zeroPoint: 0, low: 0, high: 255 });
  });
});

describe('quantizeBias', () => {
  it('stores the bias at scale s_x·s_w within half a step, and refuses int32 overflow', () => {
    const b = Float32Array.of(0.5, -1.25, 3e-4);
    const ws = Float32Array.of(0.01, 0.002, 0.05);
    const r = quantizeBias(b, 0.03, ws)!;
    for (let c = 0; c < 3; c++) {
      expect(r.scale[c]).toBe(Math.fround(0.03 * ws[c]!));
      expect(Math.abs(r.q[c]! * r.scale[c]! - b[c]!)).toBeLessThanOrEqual(r.scale[c]! / 2 + 1e-12);
    }
    expect(quantizeBias(Float32Array.of(1e6), 1e-3, Float32Array.of(1e-3))).toBeNull();
  });
});
