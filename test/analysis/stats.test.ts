// Numeric helpers against values computed by hand (shown in the comments).
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  argmax,
  argmaxRows,
  blockInfluence,
  cosine,
  cosineRows,
  klDivergenceFromLogits,
  klDivergenceRows,
  logSoftmax,
  mean,
  median,
  mulberry32,
  permutation,
  quantile,
  shuffleInPlace,
  softmax,
  std,
} from '../../src/analysis/stats.js';

const L2 = Math.log(2);
const L5 = Math.log(5);

describe('softmax / logSoftmax', () => {
  it('gives exp(x)/sum exp(x): [0, ln2, ln5] -> [1, 2, 5]/8', () => {
    const p = softmax([0, L2, L5, L5, L2, 0], 2, 3);
    const want = [1 / 8, 2 / 8, 5 / 8, 5 / 8, 2 / 8, 1 / 8];
    want.forEach((w, i) => expect(p[i]).toBeCloseTo(w, 14));
  });

  it('is shift invariant and does not overflow at +-1000', () => {
    for (const shift of [1000, -1000, 700.5]) {
      const p = softmax(new Float32Array([shift, shift + L2, shift + L5]), 1, 3);
      // float32 rounding of shift+ln2 costs ~6e-5 relative at |shift| = 1000.
      expect(p[0]).toBeCloseTo(1 / 8, 3);
      expect(p[2]).toBeCloseTo(5 / 8, 3);
      expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 14);
    }
    const big = softmax(new Float64Array([1e4, 0]), 1, 2);
    expect(big[0]).toBe(1);
    expect(big[1]).toBe(0);
  });

  it('logSoftmax([0, ln3]) = [ln 1/4, ln 3/4], finite at extreme logits', () => {
    const l = logSoftmax([0, Math.log(3)], 1, 2);
    expect(l[0]).toBeCloseTo(Math.log(0.25), 14);
    expect(l[1]).toBeCloseTo(Math.log(0.75), 14);
    const e = logSoftmax([1e4, 0], 1, 2);
    expect(e[0]).toBeCloseTo(0, 14);
    expect(e[1]).toBeCloseTo(-1e4, 9); // log-softmax keeps what softmax underflows to 0
  });

  it('rejects a shape that does not match the data', () => {
    expect(() => softmax([1, 2, 3], 2, 2)).toThrow(/needs 4/);
  });
});

describe('KL divergence', () => {
  it('KL([1/2,1/2] || [1/4,3/4]) = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)', () => {
    const kl = klDivergenceRows([0.5, 0.5, 1, 0, 0.3, 0.7], [0.25, 0.75, 0.5, 0.5, 0.3, 0.7], 3, 2);
    expect(kl[0]).toBeCloseTo(0.5 * Math.log(4 / 3), 14);
    expect(kl[1]).toBeCloseTo(L2, 14); // p=[1,0]: the zero term contributes 0
    expect(kl[2]).toBe(0);
  });

  it('is +Infinity where q = 0 < p', () => {
    expect(klDivergenceRows([0.5, 0.5], [1, 0], 1, 2)[0]).toBe(Infinity);
  });

  it('from logits equals KL of the softmaxes; ln2/ln5 example', () => {
    // p = [1,2,5]/8, q = [1,1,1]/3: KL = sum p ln(3p) = ln 3 + (1/8 ln(1/8) + 2/8 ln(2/8) + 5/8 ln(5/8))
    const want = Math.log(3) + (1 / 8) * Math.log(1 / 8) + (2 / 8) * Math.log(2 / 8) + (5 / 8) * Math.log(5 / 8);
    const kl = klDivergenceFromLogits([0, L2, L5], [7, 7, 7], 1, 3);
    expect(kl[0]).toBeCloseTo(want, 14);
    const viaProbs = klDivergenceRows(softmax([0, L2, L5], 1, 3), softmax([7, 7, 7], 1, 3), 1, 3);
    expect(kl[0]).toBeCloseTo(viaProbs[0], 14);
  });
});

describe('argmax', () => {
  it('breaks ties to the lowest index and skips NaN', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, 1, 0])).toBe(1);
    expect(argmax([-Infinity, -Infinity])).toBe(0);
    expect(argmax([])).toBe(-1);
    expect(Array.from(argmaxRows([0, 5, 5, 9, 1, 9], 2, 3))).toEqual([1, 0]);
    expect(accuracy([1, 0, 2, 2], [1, 1, 2, 0])).toBe(0.5);
  });
});

describe('mean / std / median', () => {
  it('matches hand values', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    // deviations -1.5,-0.5,0.5,1.5: squares sum 5 -> pop var 5/4, sample var 5/3
    expect(std([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(5 / 4), 15);
    expect(std([1, 2, 3, 4], 1)).toBeCloseTo(Math.sqrt(5 / 3), 15);
    expect(median([3, 1, 2])).toBe(2);
    expect(median(new Float32Array([4, 1, 3, 2]))).toBe(2.5);
    expect(median([10, -1])).toBe(4.5); // numeric, not lexicographic, sort
    expect(Number.isNaN(mean([]))).toBe(true);
    expect(Number.isNaN(median([]))).toBe(true);
    expect(Number.isNaN(std([5], 1))).toBe(true);
  });
});

describe('cosine', () => {
  it('matches hand values and the zero-vector rule', () => {
    expect(cosine([1, 0], [0, 1], 2)).toBe(0);
    expect(cosine([1, 1], [2, 2], 2)).toBeCloseTo(1, 15);
    expect(cosine([1, 0], [1, 1], 2)).toBeCloseTo(Math.SQRT1_2, 15);
    expect(cosine([1, 0], [-3, 0], 2)).toBe(-1);
    expect(cosine([0, 0], [0, 0], 2)).toBe(1); // both zero: identical
    expect(cosine([0, 0], [1, 0], 2)).toBe(0); // one zero: nothing shared
    const r = cosineRows([1, 0, 3, 4], [0, 1, 4, 3], 2, 2);
    expect(r[0]).toBe(0);
    expect(r[1]).toBeCloseTo(24 / 25, 15);
  });

  it('blockInfluence = mean over images and tokens of 1 - cos', () => {
    // 2 images x 2 tokens x width 2. Per token 1 - cos: [1,0]->[1,0]: 0; [1,0]->[0,2]: 1;
    // [0,1]->[0,-1]: 2; [3,4]->[4,3]: 1 - 24/25. Mean = (3 + 1/25) / 4 = 0.76.
    const input = new Float32Array([1, 0, 1, 0, 0, 1, 3, 4]);
    const output = new Float32Array([1, 0, 0, 2, 0, -1, 4, 3]);
    expect(blockInfluence(input, output, 2, 2, 2)).toBeCloseTo(0.76, 6);
    expect(blockInfluence(input, input, 2, 2, 2)).toBe(0);
    expect(() => blockInfluence(input, output, 2, 3, 2)).toThrow(/needs 12/);
  });
});

describe('mulberry32 / shuffle', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const a = mulberry32(7), b = mulberry32(7), c = mulberry32(8);
    const sa = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(sa);
    expect(Array.from({ length: 5 }, c)).not.toEqual(sa);
    expect(Array.from(permutation(20, 3))).toEqual(Array.from(permutation(20, 3)));
  });

  it('is uniform on [0,1): chi-square over 10 bins of 100,000 draws', () => {
    const r = mulberry32(123);
    const bins = new Array(10).fill(0);
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r();
      if (!(u >= 0 && u < 1)) outside++;
      else bins[Math.floor(u * 10)]++;
    }
    expect(outside).toBe(0);
    const chi2 = bins.reduce((s, o) => s + (o - 10_000) ** 2 / 10_000, 0);
    expect(chi2).toBeLessThan(27.88); // chi-square(9 dof) 0.999 quantile
  });

  it('shuffles into a uniform permutation: all 6 orders of 3 items about equally often', () => {
    const r = mulberry32(5);
    const counts = new Map<string, number>();
    for (let t = 0; t < 60_000; t++) {
      const key = shuffleInPlace([0, 1, 2], r).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const chi2 = [...counts.values()].reduce((s, o) => s + (o - 10_000) ** 2 / 10_000, 0);
    expect(chi2).toBeLessThan(20.52); // chi-square(5 dof) 0.999 quantile
  });
});

describe('klDivergenceFromLogits with a zero probability (a log-probability of -Infinity)', () => {
  it('counts 0·log 0 as 0: p = [1/2, 1/2, 0], q = [1/4, 1/4, 1/2] gives ln 2', () => {
    // KL = 1/2 ln(2) + 1/2 ln(2) + 0 = ln 2.
    const kl = klDivergenceFromLogits([Math.log(0.5), Math.log(0.5), -Infinity], [Math.log(0.25), Math.log(0.25), Math.log(0.5)], 1, 3);
    expect(kl[0]).toBeCloseTo(L2, 14);
  });
  it('is +Infinity when q is 0 where p is not', () => {
    expect(klDivergenceFromLogits([0, 0], [0, -Infinity], 1, 2)[0]).toBe(Infinity);
  });
});

describe('quantile', () => {
  // Reference values: numpy 1.24 np.quantile(a, q) (linear interpolation).
  const a = [3.2, 1.5, 9.9, 4.4, 0.7, 2.2, 5.0];
  it.each([
    [0, 0.7],
    [0.25, 1.85],
    [0.5, 3.2],
    [0.9, 6.960000000000002],
    [1, 9.9],
  ])('q = %s of [3.2, 1.5, 9.9, 4.4, 0.7, 2.2, 5.0] is %s as numpy', (q, want) => {
    expect(quantile(a, q)).toBeCloseTo(want, 13);
  });
  it('interpolates two values and returns the one value of a singleton; NaN when empty', () => {
    expect(quantile([1, 2], 0.9)).toBeCloseTo(1.9, 14);
    expect(quantile([4], 0.9)).toBe(4);
    expect(quantile([], 0.5)).toBeNaN();
  });
  it('equals the median at q = 0.5 and leaves its input alone', () => {
    const x = [5, 1, 4, 2];
    expect(quantile(x, 0.5)).toBe(median(x));
    expect(x).toEqual([5, 1, 4, 2]);
  });
  it('refuses q outside [0, 1]', () => {
    expect(() => quantile([1], 1.5)).toThrow(/q must be in \[0, 1\]/);
  });
});
