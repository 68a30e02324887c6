// Wilson interval, McNemar's exact test and the paired accuracy difference against reference values:
// Wilson bounds are the roots of (p̂ - p)² = z² p(1-p)/n solved in 50-digit decimal arithmetic in
// Python (z = Φ⁻¹(0.975) = 1.959963984540054235524594...); at 4 decimals they are the values Newcombe
// (Stat Med 1998;17:857-872, Table I, method 3) publishes for 81/263, 15/148, 0/20 and 1/29. McNemar
// p-values are exact sums 2·Σ_{i<=min(b,c)} C(b+c, i)/2^(b+c) in Python fractions.
import { describe, expect, it } from 'vitest';
import { mcnemarExactP, pairedCounts, pairedDifference, wilsonInterval, Z95 } from '../../src/analysis/intervals.js';

describe('Z95', () => {
  it('is Φ⁻¹(0.975) to the last bit', () => {
    expect(Z95).toBe(1.959963984540054235524594430520551527955550);
  });
});

describe('wilsonInterval', () => {
  it.each([
    [81, 263, 0.25528851987827423, 0.36620957698280007, 0.2553, 0.3662],
    [15, 148, 0.06238639953073628, 0.16048724172330804, 0.0624, 0.1605],
    [0, 20, 0, 0.16112515805281939, 0, 0.1611],
    [1, 29, 0.0061132142927626605, 0.17175521879320288, 0.0061, 0.1718],
    [9773, 10000, 0.97419225438928307, 0.98004118076606905, 0.9742, 0.98],
    [29, 29, 0.88303020150025923, 1, 0.883, 1],
    [7, 10, 0.39677814746114532, 0.89220873259369898, 0.3968, 0.8922],
  ])('%i / %i -> [%s, %s]', (k, n, lo, hi, lo4, hi4) => {
    const ci = wilsonInterval(k, n);
    expect(ci.low).toBeCloseTo(lo, 14);
    expect(ci.high).toBeCloseTo(hi, 14);
    expect(Number(ci.low.toFixed(4))).toBe(lo4);
    expect(Number(ci.high.toFixed(4))).toBe(hi4);
  });
  it('is exactly 0 at k = 0 and 1 at k = n, NaN for n = 0', () => {
    expect(wilsonInterval(0, 5).low).toBe(0);
    expect(wilsonInterval(5, 5).high).toBe(1);
    const e = wilsonInterval(0, 0);
    expect(e.low).toBeNaN();
    expect(e.high).toBeNaN();
  });
  it('refuses counts that are not 0 <= k <= n integers', () => {
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(1.5, 2)).toThrow(RangeError);
  });
});

describe('mcnemarExactP', () => {
  it.each([
    [0, 0, 1],
    [1, 0, 1],
    [5, 1, 0.21875],
    [12, 2, 0.012939453125],
    [10, 10, 1],
    [3, 20, 0.00048828125],
    [100, 150, 0.001883300935076157],
    [2000, 2200, 0.0021323556719912346],
  ])('b = %i, c = %i -> %s', (b, c, p) => {
    expect(mcnemarExactP(b, c)).toBeCloseTo(p, 13);
    expect(mcnemarExactP(c, b)).toBe(mcnemarExactP(b, c));
    expect(Math.abs(mcnemarExactP(b, c) - p) / p).toBeLessThan(1e-11);
  });
});

describe('pairedCounts / pairedDifference', () => {
  it('tallies the four cells from per-image outcomes', () => {
    const model = [1, 1, 0, 0, 1, 0, true, false];
    const ref = [1, 0, 1, 0, 1, 1, false, false];
    expect(pairedCounts(model, ref)).toEqual({ n: 8, bothCorrect: 2, referenceOnly: 2, modelOnly: 2, bothWrong: 2 });
    expect(() => pairedCounts([1], [1, 0])).toThrow(RangeError);
  });
  it.each([
    // n, b (reference only), c (model only), difference, low, high
    [50, 12, 2, -0.2, -0.33579028808914063, -0.064209711910859377],
    [10000, 40, 25, -0.0015, -0.0030798999668385737, 7.9899966838573518e-5],
    [100, 0, 0, 0, 0, 0],
  ])('n = %i, b = %i, c = %i: (c - b)/n with the McNemar-variance Wald interval', (n, b, c, d, lo, hi) => {
    const r = pairedDifference({ n, bothCorrect: n - b - c, referenceOnly: b, modelOnly: c, bothWrong: 0 });
    expect(r.difference).toBeCloseTo(d, 15);
    expect(r.interval.low).toBeCloseTo(lo, 14);
    expect(r.interval.high).toBeCloseTo(hi, 14);
    expect(r.mcnemarP).toBe(mcnemarExactP(b, c));
  });
  it('is NaN for no images', () => {
    const r = pairedDifference({ n: 0, bothCorrect: 0, referenceOnly: 0, modelOnly: 0, bothWrong: 0 });
    expect(r.difference).toBeNaN();
    expect(r.mcnemarP).toBeNaN();
  });
});
