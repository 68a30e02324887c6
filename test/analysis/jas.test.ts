// The two JAS forms, the Riemann steps and topK on hand-computed values.
import { describe, expect, it } from 'vitest';
import { alphas, jasForms, topK } from '../../src/analysis/jas.js';

describe('jasForms', () => {
  it('product = (Σ w / m)(Σ g) and sum = Σ (w / m) g, by hand', () => {
    // w = [0.5, 2, -1], g = [3, -4, 6], m = 4:
    // product = (1.5 / 4) * 5 = 1.875; sum = 0.5*3/4 + 2*(-4)/4 + (-1)*6/4 = 0.375 - 2 - 1.5 = -3.125
    const r = jasForms([0.5, 2, -1], [3, -4, 6], 4);
    expect(r.product).toBe(1.875);
    expect(r.sum).toBe(-3.125);
  });

  it('one layer: both forms are w g / m', () => {
    const r = jasForms([3], [0.25], 2);
    expect(r.product).toBe(0.375);
    expect(r.sum).toBe(0.375);
  });

  it('the forms differ once the layers differ, and agree when one layer carries everything', () => {
    expect(jasForms([1, 0], [2, 5], 1)).toEqual({ product: 7, sum: 2 });
    expect(jasForms([1, 1], [2, 0], 1)).toEqual({ product: 4, sum: 2 });
  });
});

describe('alphas and topK', () => {
  it('left Riemann steps k/m for k = 0..m-1', () => {
    expect(Array.from(alphas(4))).toEqual([0, 0.25, 0.5, 0.75]);
    expect(Array.from(alphas(1))).toEqual([0]);
  });

  it('topK sorts descending, ties to the lower index', () => {
    expect(topK([0.5, 2, 2, -1, 3], 3)).toEqual([
      { index: 4, value: 3 },
      { index: 1, value: 2 },
      { index: 2, value: 2 },
    ]);
    expect(topK([1], 5)).toEqual([{ index: 0, value: 1 }]);
  });
});
