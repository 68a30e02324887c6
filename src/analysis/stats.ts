// Small numeric helpers shared by the analyses: stable softmax / log-softmax, KL per row,
// argmax, summary statistics, row cosine similarity, Block Influence and a seeded PRNG.
// Pure functions over row-major typed arrays ([n, k] means n rows of k values).

import { usageError } from '../errors.js';

/** Any flat numeric array the analyses accept (ONNX Runtime hands back Float32Array). */
export type NumArray = Float32Array | Float64Array | ArrayLike<number>;

function checkShape(name: string, a: NumArray, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) {
    throw usageError(`${name}: invalid shape [${rows}, ${cols}]; rows must be >= 0 and columns >= 1`);
  }
  if (a.length !== rows * cols) {
    throw usageError(`${name}: array has ${a.length} values but shape [${rows}, ${cols}] needs ${rows * cols}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32 lives in src/random.ts, shared with the synthetic ViT builder)

export { mulberry32 } from '../random.js';
import { mulberry32 } from '../random.js';


/** Integer in [0, n) from a [0,1) generator. */
export function randomInt(rng: () => number, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher-Yates shuffle in place (deterministic for a given generator state). Returns `arr`. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: () => number): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}

/** A seeded permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, mulberry32(seed));
}

/** Standard normal draw (Box-Muller) from a [0,1) generator; used to build synthetic data. */
export function randomNormal(rng: () => number): number {
  let u = rng();
  while (u <= 0) u = rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

// ---------------------------------------------------------------------------------------------
// Softmax family (row-wise over [n, k])

/** Row-wise log-softmax, computed as x - max - log(sum(exp(x - max))) so it never overflows. */
export function logSoftmax(logits: NumArray, n: number, k: number): Float64Array {
  checkShape('logSoftmax', logits, n, k);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let m = -Infinity;
    for (let c = 0; c < k; c++) if (logits[o + c] > m) m = logits[o + c];
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(logits[o + c] - m);
    const lse = m + Math.log(s);
    for (let c = 0; c < k; c++) out[o + c] = logits[o + c] - lse;
  }
  return out;
}

/** Row-wise softmax, max-subtracted (stable for large logits). */
export function softmax(logits: NumArray, n: number, k: number): Float64Array {
  checkShape('softmax', logits, n, k);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let m = -Infinity;
    for (let c = 0; c < k; c++) if (logits[o + c] > m) m = logits[o + c];
    let s = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(logits[o + c] - m);
      out[o + c] = e;
      s += e;
    }
    for (let c = 0; c < k; c++) out[o + c] /= s;
  }
  return out;
}

/**
 * KL(p || q) = sum_c p_c log(p_c / q_c) for each row of two probability tables [n, k].
 * Terms with p_c = 0 contribute 0; p_c > 0 with q_c = 0 gives +Infinity.
 */
export function klDivergenceRows(p: NumArray, q: NumArray, n: number, k: number): Float64Array {
  checkShape('klDivergenceRows(p)', p, n, k);
  checkShape('klDivergenceRows(q)', q, n, k);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = i * k, e = c + k; c < e; c++) {
      const pc = p[c];
      if (pc > 0) s += pc * (Math.log(pc) - Math.log(q[c]));
    }
    out[i] = s;
  }
  return out;
}

/**
 * KL(softmax(a) || softmax(b)) per row, straight from logits via log-softmax (no underflow to
 * log 0). Used by the logit lens: a = final logits, b = logits read out at an earlier layer.
 */
export function klDivergenceFromLogits(logitsP: NumArray, logitsQ: NumArray, n: number, k: number): Float64Array {
  const lp = logSoftmax(logitsP, n, k);
  const lq = logSoftmax(logitsQ, n, k);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = i * k, e = c + k; c < e; c++) if (lp[c] !== -Infinity) s += Math.exp(lp[c]) * (lp[c] - lq[c]); // 0·log 0 = 0
    out[i] = Math.max(0, s); // clamp tiny negative rounding
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Argmax

/** Index of the largest value; ties go to the lowest index; NaN values are never chosen. -1 if empty/all NaN. */
export function argmax(a: NumArray, start = 0, end = a.length): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = start; i < end; i++) {
    const v = a[i];
    if (v > bv || (best < 0 && v === -Infinity)) {
      bv = v;
      best = i;
    }
  }
  return best < 0 ? -1 : best - start;
}

/** Row-wise argmax over [n, k] (ties to the lowest column). */
export function argmaxRows(a: NumArray, n: number, k: number): Int32Array {
  checkShape('argmaxRows', a, n, k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmax(a, i * k, i * k + k);
  return out;
}

/** Fraction of positions where predicted equals truth. */
export function accuracy(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (pred.length !== truth.length) throw usageError(`accuracy: ${pred.length} predictions vs ${truth.length} labels`);
  if (pred.length === 0) return NaN;
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === truth[i]) ok++;
  return ok / pred.length;
}

// ---------------------------------------------------------------------------------------------
// Summary statistics

/** Arithmetic mean (NaN for an empty array). */
export function mean(a: ArrayLike<number>): number {
  if (a.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/**
 * Standard deviation with `ddof` delta degrees of freedom: sqrt(sum (x - mean)^2 / (n - ddof)).
 * ddof = 0 (default) is the population std, as numpy's np.std; ddof = 1 is the sample std.
 */
export function std(a: ArrayLike<number>, ddof = 0): number {
  const n = a.length;
  if (n - ddof <= 0) return NaN;
  const m = mean(a);
  let s = 0;
  for (let i = 0; i < n; i++) s += (a[i] - m) * (a[i] - m);
  return Math.sqrt(s / (n - ddof));
}

/** Median (mean of the two middle values for even length; NaN when empty). Does not modify `a`. */
export function median(a: ArrayLike<number>): number {
  const n = a.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(a as ArrayLike<number>).sort();
  return n % 2 === 1 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * The q-quantile (0 <= q <= 1) with linear interpolation between order statistics, as numpy's
 * default np.quantile: position q·(n-1) in the sorted values. NaN when empty. Does not modify `a`.
 */
export function quantile(a: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 1)) throw usageError(`quantile: q must be in [0, 1] (got ${q})`);
  const n = a.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(a as ArrayLike<number>).sort();
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  const f = pos - lo;
  return f === 0 ? s[lo] : s[lo] + (s[hi] - s[lo]) * f;
}

// ---------------------------------------------------------------------------------------------
// Cosine similarity

/**
 * Cosine similarity of a[aOff .. aOff+d) and b[bOff .. bOff+d), accumulated in float64.
 * Zero vectors: both zero -> 1 (identical), exactly one zero -> 0 (no direction to share).
 */
export function cosine(a: NumArray, b: NumArray, d: number, aOff = 0, bOff = 0): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let j = 0; j < d; j++) {
    const x = a[aOff + j];
    const y = b[bOff + j];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  const c = dot / (Math.sqrt(na) * Math.sqrt(nb));
  return c > 1 ? 1 : c < -1 ? -1 : c;
}

/** Cosine similarity between matching rows of a and b, both [n, d]. Zero-vector rule as `cosine`. */
export function cosineRows(a: NumArray, b: NumArray, n: number, d: number): Float64Array {
  checkShape('cosineRows(a)', a, n, d);
  checkShape('cosineRows(b)', b, n, d);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = cosine(a, b, d, i * d, i * d);
  return out;
}

/**
 * Block Influence (ShortGPT, Men et al. 2024): the mean over images and tokens of
 * 1 - cos(block input, block output). `input` and `output` are [n, tokens, width] row-major
 * (the residual stream entering and leaving one block). 0 means the block changes nothing's
 * direction; larger means the block rewrites its input more.
 */
export function blockInfluence(input: NumArray, output: NumArray, n: number, tokens: number, width: number): number {
  const rows = n * tokens;
  checkShape('blockInfluence(input)', input, rows, width);
  checkShape('blockInfluence(output)', output, rows, width);
  if (rows === 0) return NaN;
  let s = 0;
  for (let r = 0; r < rows; r++) s += 1 - cosine(input, output, width, r * width, r * width);
  return s / rows;
}
