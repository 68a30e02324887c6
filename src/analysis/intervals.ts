// Confidence intervals and tests for classifier accuracy: the Wilson score interval of one
// proportion, and the paired comparison of two classifiers on the same images (McNemar's exact
// test on the discordant pairs, Wald interval of the accuracy difference). Plain functions over counts.

/** The two-sided 95% standard normal quantile, Φ⁻¹(0.975). */
export const Z95 = 1.9599639845400543; // 1.95996398454005423552... rounded to the nearest double

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval of a proportion k/n (Wilson 1927; Newcombe 1998, method 3):
 * (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n). The bounds are exactly 0 at k = 0 and 1 at k = n.
 * NaN bounds for n = 0.
 */
export function wilsonInterval(k: number, n: number, z = Z95): Interval {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n < 0 || k > n) throw new RangeError(`wilsonInterval: need integers 0 <= k <= n (got k=${k}, n=${n})`);
  if (n === 0) return { low: NaN, high: NaN };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: k === 0 ? 0 : Math.max(0, center - half), high: k === n ? 1 : Math.min(1, center + half) };
}

/**
 * Two-sided exact McNemar p-value: with b and c the discordant counts, X ~ Binomial(b + c, 1/2),
 * p = min(1, 2·P(X <= min(b, c))). 1 when there is no discordant pair.
 */
export function mcnemarExactP(b: number, c: number): number {
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) throw new RangeError(`mcnemarExactP: counts must be non-negative integers (got ${b}, ${c})`);
  const m = b + c;
  if (m === 0) return 1;
  const lo = Math.min(b, c);
  // Sum C(m, i) 2^-m for i = 0..lo in log space: log C(m, i+1) = log C(m, i) + log(m - i) - log(i + 1).
  const ln2m = m * Math.LN2;
  let logC = 0;
  let tail = 0;
  for (let i = 0; i <= lo; i++) {
    tail += Math.exp(logC - ln2m);
    logC += Math.log(m - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * tail);
}

/** Paired outcomes of a model and a reference on the same n labelled images. */
export interface PairedCounts {
  n: number;
  /** Both right. */
  bothCorrect: number;
  /** The reference right, the model wrong (the pairs that make the model worse). */
  referenceOnly: number;
  /** The model right, the reference wrong. */
  modelOnly: number;
  /** Both wrong. */
  bothWrong: number;
}

export interface PairedDifference extends PairedCounts {
  /** Accuracy of the model minus accuracy of the reference, (modelOnly - referenceOnly) / n. */
  difference: number;
  /**
   * Wald interval of the difference with the paired (McNemar) variance
   * ((b + c) - (c - b)²/n) / n², clamped to [-1, 1]; zero width when there is no discordant pair.
   */
  interval: Interval;
  /** Two-sided exact McNemar p-value on the discordant pairs. */
  mcnemarP: number;
}

/** Tally paired outcomes from per-image correctness flags (index i: the same image for both). */
export function pairedCounts(modelCorrect: ArrayLike<number | boolean>, referenceCorrect: ArrayLike<number | boolean>): PairedCounts {
  if (modelCorrect.length !== referenceCorrect.length) throw new RangeError(`pairedCounts: ${modelCorrect.length} model outcomes vs ${referenceCorrect.length} reference outcomes`);
  const r: PairedCounts = { n: modelCorrect.length, bothCorrect: 0, referenceOnly: 0, modelOnly: 0, bothWrong: 0 };
  for (let i = 0; i < modelCorrect.length; i++) {
    const m = Boolean(modelCorrect[i]);
    const f = Boolean(referenceCorrect[i]);
    if (m && f) r.bothCorrect++;
    else if (f) r.referenceOnly++;
    else if (m) r.modelOnly++;
    else r.bothWrong++;
  }
  return r;
}

/** The accuracy difference (model - reference) of paired counts, its interval and McNemar's exact p. */
export function pairedDifference(counts: PairedCounts, z = Z95): PairedDifference {
  const { n, referenceOnly: b, modelOnly: c } = counts;
  if (n === 0) return { ...counts, difference: NaN, interval: { low: NaN, high: NaN }, mcnemarP: NaN };
  const d = (c - b) / n;
  const variance = Math.max(0, b + c - ((c - b) * (c - b)) / n) / (n * n);
  const half = z * Math.sqrt(variance);
  return { ...counts, difference: d, interval: { low: Math.max(-1, d - half), high: Math.min(1, d + half) }, mcnemarP: mcnemarExactP(b, c) };
}
