// Cosine similarity matrices between flattened vectors, e.g. how alike two classes' neuron-path
// frequency tables ([layers x neurons] flattened) are. Pure functions, float64 accumulation.
//
// Zero vectors have no direction, so cosine is undefined for them. Two policies:
//  - 'convention' (default, same as stats.cosine): zero vs zero -> 1, zero vs non-zero -> 0.
//    The matrix stays finite, its diagonal is all 1, and an all-zero class (e.g. no images)
//    reads as "shares nothing" with every other class.
//  - 'nan': every entry in the row and column of a zero vector is NaN (the diagonal too), so
//    a report can write null and say "undefined" instead of inventing a number.

import { usageError } from '../errors.js';
import type { NumArray } from './stats.js';

export type ZeroVectorPolicy = 'convention' | 'nan';

/**
 * Symmetric [m, m] matrix of cos(row_a, row_b) for the m rows of `vectors` ([m, d] row-major).
 * Entries are clamped to [-1, 1]; the diagonal of a non-zero row is exactly 1.
 */
export function cosineSimilarityMatrix(
  vectors: NumArray,
  m: number,
  d: number,
  zeroVectors: ZeroVectorPolicy = 'convention',
): Float64Array {
  if (!Number.isInteger(m) || m < 0 || !Number.isInteger(d) || d < 1) {
    throw usageError(`cosineSimilarityMatrix: invalid shape [${m}, ${d}]`);
  }
  if (vectors.length !== m * d) {
    throw usageError(`cosineSimilarityMatrix: ${vectors.length} values do not form [${m}, ${d}]`);
  }
  const norms = new Float64Array(m);
  for (let a = 0; a < m; a++) {
    let s = 0;
    for (let j = a * d, e = j + d; j < e; j++) s += vectors[j] * vectors[j];
    norms[a] = Math.sqrt(s);
  }
  const out = new Float64Array(m * m);
  for (let a = 0; a < m; a++) {
    for (let b = a; b < m; b++) {
      let v: number;
      const za = norms[a] === 0;
      const zb = norms[b] === 0;
      if (za || zb) {
        v = zeroVectors === 'nan' ? NaN : za && zb ? 1 : 0;
      } else if (a === b) {
        v = 1;
      } else {
        let dot = 0;
        const oa = a * d;
        const ob = b * d;
        for (let j = 0; j < d; j++) dot += vectors[oa + j] * vectors[ob + j];
        v = dot / (norms[a] * norms[b]);
        v = v > 1 ? 1 : v < -1 ? -1 : v;
      }
      out[a * m + b] = v;
      out[b * m + a] = v;
    }
  }
  return out;
}

/** Stack equally long vectors (e.g. each class's flattened path-frequency table) into [m, d]. */
export function stackRows(rows: readonly NumArray[]): { data: Float64Array; m: number; d: number } {
  const m = rows.length;
  if (m === 0) throw usageError('stackRows: no vectors to stack');
  const d = rows[0].length;
  const data = new Float64Array(m * d);
  rows.forEach((r, i) => {
    if (r.length !== d) throw usageError(`stackRows: vector ${i} has ${r.length} values, vector 0 has ${d}; all must match`);
    for (let j = 0; j < d; j++) data[i * d + j] = r[j];
  });
  return { data, m, d };
}

/** Cosine similarity matrix of a list of vectors (stackRows + cosineSimilarityMatrix). */
export function pairwiseCosine(rows: readonly NumArray[], zeroVectors: ZeroVectorPolicy = 'convention'): Float64Array {
  const { data, m, d } = stackRows(rows);
  return cosineSimilarityMatrix(data, m, d, zeroVectors);
}

/** The matrix as nested arrays for JSON, NaN -> null. */
export function matrixToJson(matrix: Float64Array, m: number): (number | null)[][] {
  return Array.from({ length: m }, (_, a) =>
    Array.from({ length: m }, (_, b) => {
      const v = matrix[a * m + b];
      return Number.isNaN(v) ? null : v;
    }),
  );
}
