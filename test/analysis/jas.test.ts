// The two JAS forms and topK on hand-computed values (the rules' nodes and weights: quadrature.test.ts).
import { describe, expect, it } from 'vitest';
import { jasForms, topK } from '../../src/analysis/jas.js';
import { integrate, quadrature } from '../../src/analysis/quadrature.js';

describe('jasForms', () => {
  it('product = (Σ w)(Σ gw) and sum = Σ w gw, by hand', () => {
    // w = [0.5, 2, -1]; gradients constant in α, g = [3, -4, 6], so with any rule gw = g (weights sum to 1):
    // product = 1.5 * 5 = 7.5; sum = 0.5*3 + 2*(-4) + (-1)*6 = -12.5
    const gw = [3, -4, 6].map((g) => integrate(quadrature('left', 4), () => g));
    expect(gw).toEqual([3, -4, 6]);
    const r = jasForms([0.5, 2, -1], gw);
    expect(r.product).toBe(7.5);
    expect(r.sum).toBe(-12.5);
  });

  it('one layer: both forms are w gw', () => {
    const r = jasForms([3], [0.125]);
    expect(r.product).toBe(0.375);
    expect(r.sum).toBe(0.375);
  });

  it('the forms differ once the layers differ (every layer counts), and agree when one layer carries everything', () => {
    expect(jasForms([1, 0], [2, 5])).toEqual({ product: 7, sum: 2 });
    expect(jasForms([1, 1], [2, 0])).toEqual({ product: 4, sum: 2 });
    expect(jasForms([0, 2, 1], [0, 0.5, 4])).toEqual({ product: 13.5, sum: 5 });
  });

  it('rule-weighted gradients: gw is the integral of g(α) (trapezoid, g linear in α, exact)', () => {
    // g(α) = 2 - 2α at layer 0, 4α at layer 1: ∫ = 1 and 2; w = [3, -1].
    const q = quadrature('trapezoid', 3);
    const gw = [integrate(q, (a) => 2 - 2 * a), integrate(q, (a) => 4 * a)];
    const r = jasForms([3, -1], gw);
    expect(r.product).toBeCloseTo(2 * 3, 14);
    expect(r.sum).toBeCloseTo(3 * 1 - 1 * 2, 14);
  });
});

describe('topK', () => {
  it('sorts descending, ties to the lower index', () => {
    expect(topK([0.5, 2, 2, -1, 3], 3)).toEqual([
      { index: 4, value: 3 },
      { index: 1, value: 2 },
      { index: 2, value: 2 },
    ]);
    expect(topK([1], 5)).toEqual([{ index: 0, value: 1 }]);
  });
});
