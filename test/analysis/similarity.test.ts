// Cosine similarity matrix: hand values, symmetry, agreement with stats.cosine, zero vectors.
import { describe, expect, it } from 'vitest';
import { cosineSimilarityMatrix, matrixToJson, pairwiseCosine } from '../../src/analysis/similarity.js';
import { cosine, mulberry32, randomNormal } from '../../src/analysis/stats.js';

describe('cosineSimilarityMatrix', () => {
  it('matches hand values: e1, e1+e2, -e1', () => {
    const s = pairwiseCosine([[1, 0], [1, 1], [-2, 0]]);
    const r = Math.SQRT1_2;
    const want = [1, r, -1, r, 1, -r, -1, -r, 1];
    want.forEach((w, i) => expect(s[i]).toBeCloseTo(w, 15));
  });

  it('equals pairwise stats.cosine on random vectors and is symmetric', () => {
    const rng = mulberry32(3);
    const m = 6, d = 40;
    const v = Float32Array.from({ length: m * d }, () => randomNormal(rng));
    const s = cosineSimilarityMatrix(v, m, d);
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        expect(s[a * m + b]).toBe(s[b * m + a]);
        expect(s[a * m + b]).toBeCloseTo(cosine(v, v, d, a * d, b * d), 14);
      }
    }
  });

  it('handles zero vectors by the documented policy', () => {
    const conv = pairwiseCosine([[0, 0], [1, 0], [0, 0]]);
    expect(Array.from(conv)).toEqual([1, 0, 1, 0, 1, 0, 1, 0, 1]);
    const nan = pairwiseCosine([[0, 0], [1, 0]], 'nan');
    expect(matrixToJson(nan, 2)).toEqual([[null, null], [null, 1]]);
    expect(() => pairwiseCosine([[1, 2], [1]])).toThrow(/all must match/);
  });
});
