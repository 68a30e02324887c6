// Calibrators: minmax extremes, the growing histogram's exact counts, percentile ranges against
// sorted values, and the entropy threshold on distributions with a known answer.
import { describe, expect, it } from 'vitest';
import { createCalibrator, entropyThreshold, GrowingHistogram } from '../../src/quantize/calibrate.js';
import { gaussian, mulberry32 } from '../../src/vit/synth.js';

function normals(n: number, seed: number): Float32Array {
  const g = gaussian(mulberry32(seed));
  return Float32Array.from({ length: n }, () => g());
}

describe('minmax', () => {
  it('returns the extremes over every batch', () => {
    const c = createCalibrator('minmax');
    c.add(Float32Array.of(1, -2, 0.5));
    c.add(Float32Array.of(7, 0));
    expect(c.range()).toEqual({ min: -2, max: 7, observedMin: -2, observedMax: 7, clippedFraction: 0, count: 5 });
  });
});

describe('GrowingHistogram', () => {
  it('keeps every count when it grows on either side (merging bin pairs)', () => {
    const h = new GrowingHistogram(16);
    const all: number[] = [];
    const rand = mulberry32(5);
    for (let b = 0; b < 6; b++) {
      const x = Array.from({ length: 200 }, () => (rand() - 0.5) * 2 ** b);
      all.push(...x);
      h.add(x);
    }
    expect(h.counts.reduce((a, v) => a + v, 0)).toBe(all.length);
    // Every value falls in the bin the final grid assigns it.
    const recount = new Float64Array(16);
    for (const v of all) recount[Math.min(15, Math.floor(((v - h.origin) * 16) / h.width))]!++;
    expect([...h.counts]).toEqual([...recount]);
    expect(h.min).toBe(Math.min(...all));
    expect(h.max).toBe(Math.max(...all));
  });
});

describe('percentile', () => {
  it('cuts (100 - p)/2 % from each tail, to within one bin of the sorted values', () => {
    const x = normals(100_000, 9);
    const c = createCalibrator('percentile', { percentile: 99 });
    for (let i = 0; i < x.length; i += 10_000) c.add(x.subarray(i, i + 10_000));
    const r = c.range();
    const sorted = Float64Array.from(x).sort();
    const lo = sorted[Math.floor(0.005 * x.length)]!;
    const hi = sorted[Math.ceil(0.995 * x.length) - 1]!;
    const bin = (r.observedMax - r.observedMin) / 2048 * 2; // the grid may have doubled once
    expect(Math.abs(r.min - lo)).toBeLessThanOrEqual(bin);
    expect(Math.abs(r.max - hi)).toBeLessThanOrEqual(bin);
    expect(r.clippedFraction).toBeGreaterThan(0.009);
    expect(r.clippedFraction).toBeLessThanOrEqual(0.01);
  });
  it('keeps the extremes at 100', () => {
    const c = createCalibrator('percentile', { percentile: 100 });
    c.add(Float32Array.of(-3, 1, 2, 5));
    const r = c.range();
    expect([r.min, r.max, r.clippedFraction]).toEqual([-3, 5, 0]);
  });
});

describe('entropy', () => {
  it('keeps the whole range of a uniform distribution (nothing to clip)', () => {
    const counts = new Float64Array(2048).fill(100);
    expect(entropyThreshold(counts, 1, 128).bin).toBe(2048);
  });
  it('clips far outliers of a Gaussian: threshold a few sigma out, below the maximum', () => {
    const x = normals(200_000, 11);
    x[0] = 60; // one outlier 60 sigma out
    const c = createCalibrator('entropy');
    c.add(x);
    const r = c.range();
    expect(r.observedMax).toBe(60);
    expect(r.max).toBeGreaterThan(2.5);
    expect(r.max).toBeLessThan(8);
    expect(r.min).toBe(Math.max(r.observedMin, -r.max)); // symmetric threshold, limited by what was seen
    expect(r.clippedFraction).toBeLessThan(0.01);
  });
});
