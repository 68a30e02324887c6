// Integration rules: nodes/weights by hand for small m, and each rule's error falling at its known
// order on smooth integrands (ratios of errors as m doubles), Gauss-Legendre exact to degree 2m-1.
import { describe, expect, it } from 'vitest';
import { gaussLegendre, integrate, quadrature, ruleOrder, RULES, type QuadratureRule } from '../../src/analysis/quadrature.js';
import { VitpathError } from '../../src/errors.js';

// ∫_0^1 e^α sin(3α) dα = [e^α (sin 3α − 3 cos 3α)/10]_0^1
const f = (a: number) => Math.exp(a) * Math.sin(3 * a);
const exact = (Math.exp(1) * (Math.sin(3) - 3 * Math.cos(3)) + 3) / 10;
const err = (rule: QuadratureRule, m: number) => Math.abs(integrate(quadrature(rule, m), f) - exact);

describe('quadrature rules', () => {
  it('nodes and weights by hand', () => {
    expect(Array.from(quadrature('left', 4).alphas)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(Array.from(quadrature('right', 4).alphas)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(Array.from(quadrature('midpoint', 4).alphas)).toEqual([0.125, 0.375, 0.625, 0.875]);
    const t = quadrature('trapezoid', 5);
    expect(Array.from(t.alphas)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(t.weights)).toEqual([0.125, 0.25, 0.25, 0.25, 0.125]);
    expect(quadrature('left', 4).zeroIndex).toBe(0);
    expect(quadrature('trapezoid', 4).zeroIndex).toBe(0);
    expect(quadrature('midpoint', 4).zeroIndex).toBe(-1);
    // Gauss-Legendre with 2 nodes: ±1/√3 on [-1, 1], weights 1.
    const g = gaussLegendre(2);
    expect(g.x[0]).toBeCloseTo(-1 / Math.sqrt(3), 15);
    expect(g.x[1]).toBeCloseTo(1 / Math.sqrt(3), 15);
    expect(g.w[0]).toBeCloseTo(1, 14);
    // 3 nodes: 0, ±√(3/5), weights 8/9, 5/9.
    const g3 = gaussLegendre(3);
    expect(g3.x[1]).toBe(0);
    expect(g3.x[2]).toBeCloseTo(Math.sqrt(3 / 5), 15);
    expect(g3.w[1]).toBeCloseTo(8 / 9, 14);
    expect(g3.w[0]).toBeCloseTo(5 / 9, 14);
    for (const rule of RULES) for (const m of [2, 3, 7, 20, 64]) {
      const q = quadrature(rule, m);
      expect(q.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 13);
      for (let k = 1; k < m; k++) expect(q.alphas[k]!).toBeGreaterThan(q.alphas[k - 1]!);
      expect(q.alphas[0]!).toBeGreaterThanOrEqual(0);
      expect(q.alphas[m - 1]!).toBeLessThanOrEqual(1);
    }
  });

  it.each([
    ['left', 1],
    ['right', 1],
    ['midpoint', 2],
    ['trapezoid', 2],
  ] as const)('%s: error falls as 1/m^%i on a smooth integrand', (rule, order) => {
    expect(ruleOrder(rule, 10)).toBe(order);
    // Halving the node spacing h divides the error by 2^order: the measured order approaches it as
    // 1/m (within 4/m at every m). The trapezoid's m nodes span m-1 intervals, so its spacing halves from m to 2m-1 nodes.
    for (const m of [64, 128, 256, 512]) {
      const m2 = rule === 'trapezoid' ? 2 * m - 1 : 2 * m;
      const measured = Math.log2(err(rule, m) / err(rule, m2));
      expect(Math.abs(measured - order)).toBeLessThan(4 / m);
    }
  });

  it('gauss: exact for polynomials of degree 2m-1, not 2m; error falls faster than any power', () => {
    for (const m of [1, 2, 3, 5, 8]) {
      const q = quadrature('gauss', m);
      for (let d = 0; d <= 2 * m - 1; d++) expect(integrate(q, (a) => a ** d)).toBeCloseTo(1 / (d + 1), 13);
      expect(Math.abs(integrate(q, (a) => a ** (2 * m)) - 1 / (2 * m + 1))).toBeGreaterThan(1e-6 / m ** 4);
    }
    // Super-algebraic: the error ratio between m and m+1 grows with m (each step gains more digits).
    const e = [2, 3, 4, 5, 6].map((m) => err('gauss', m));
    for (let i = 1; i < e.length; i++) expect(e[i]!).toBeLessThan(e[i - 1]! / 10);
    expect(e[4]!).toBeLessThan(1e-9);
    // With 6 nodes Gauss beats midpoint with 200.
    expect(err('gauss', 6)).toBeLessThan(err('midpoint', 200));
  });

  it('refuses unknown rules and too few steps with a usage error', () => {
    expect(() => quadrature('simpson' as QuadratureRule, 4)).toThrow(VitpathError);
    expect(() => quadrature('trapezoid', 1)).toThrow(/at least 2 steps/);
    expect(() => quadrature('left', 0)).toThrow(/at least 1 step/);
  });
});
