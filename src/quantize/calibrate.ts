// Calibrators: strategies that turn the values an activation took on calibration images into the
// float range its uint8 quantization covers. One factory, one interface (add values, then ask for
// the range): minmax (the observed extremes), percentile (cut the given share of values from the
// tails) and entropy (TensorRT's KL-divergence threshold search over a 2048-bin histogram of |x|).
// Histograms grow by merging bin pairs when a value falls outside, so they never need a first pass.

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

export interface CalibratedRange {
  /** The range to quantize to (before widening to hold 0). */
  min: number;
  max: number;
  /** The extremes observed. */
  observedMin: number;
  observedMax: number;
  /** Share of observed values outside [min, max] (clipped by the quantization); 0 for minmax. */
  clippedFraction: number;
  /** Values seen. */
  count: number;
}

export interface Calibrator {
  readonly method: CalibrationMethod;
  add(values: ArrayLike<number>): void;
  range(): CalibratedRange;
}

export interface CalibratorOptions {
  /** percentile: the share of values kept, in percent (default 99.99): (100 - p)/2 % is cut from each tail. */
  percentile?: number;
  /** Histogram bins (default 2048). */
  bins?: number;
  /** entropy: quantized levels the threshold search compares against (default 128, as TensorRT for 8 bits). */
  quantizedBins?: number;
}

export function createCalibrator(method: CalibrationMethod, o: CalibratorOptions = {}): Calibrator {
  if (method === 'minmax') return new MinMaxCalibrator();
  if (method === 'percentile') return new PercentileCalibrator(o.percentile ?? 99.99, o.bins ?? 2048);
  if (method === 'entropy') return new EntropyCalibrator(o.bins ?? 2048, o.quantizedBins ?? 128);
  throw new Error(`unknown calibration method "${String(method)}"`);
}

class MinMaxCalibrator implements Calibrator {
  readonly method = 'minmax' as const;
  private min = Infinity;
  private max = -Infinity;
  private count = 0;
  add(values: ArrayLike<number>): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
    this.count += values.length;
  }
  range(): CalibratedRange {
    if (this.count === 0) throw new Error('calibrator: no values were added');
    return { min: this.min, max: this.max, observedMin: this.min, observedMax: this.max, clippedFraction: 0, count: this.count };
  }
}

/**
 * A histogram over [origin, origin + width) with a fixed number of bins that doubles its span (merging
 * bin pairs, which keeps every count exact) until a new value fits. `counts[i]` covers
 * [origin + i·w, origin + (i+1)·w), w = width / bins.
 */
export class GrowingHistogram {
  counts: Float64Array;
  origin = 0;
  width = 0;
  min = Infinity;
  max = -Infinity;
  total = 0;
  constructor(readonly bins: number) {
    if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0) throw new Error(`histogram bins must be an even integer >= 2 (got ${bins})`);
    this.counts = new Float64Array(bins);
  }

  /** Double the span to the right (the origin stays) or to the left (the old span becomes the right half). */
  private grow(left: boolean): void {
    const n = this.bins;
    const merged = new Float64Array(n);
    const half = n / 2;
    for (let i = 0; i < half; i++) merged[(left ? half : 0) + i] = this.counts[2 * i]! + this.counts[2 * i + 1]!;
    if (left) this.origin -= this.width;
    this.width *= 2;
    this.counts = merged;
  }

  add(values: ArrayLike<number>): void {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (values.length === 0) return;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error('calibrator: an activation holds a non-finite value (NaN or infinity) on the calibration images');
    if (this.total === 0) {
      // The first batch fixes the bin grid: its span, slightly widened so its max falls inside.
      const span = hi - lo;
      this.origin = lo;
      this.width = span > 0 ? span * (1 + 1 / this.bins) : Math.max(Math.abs(lo), 1) * 1e-6;
    }
    while (lo < this.origin) this.grow(true);
    while (hi >= this.origin + this.width) this.grow(false);
    const n = this.bins;
    const scale = n / this.width;
    for (let i = 0; i < values.length; i++) {
      const k = Math.min(n - 1, Math.max(0, Math.floor((values[i]! - this.origin) * scale)));
      this.counts[k]!++;
    }
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
    this.total += values.length;
  }

  /** Left edge of bin i. */
  edge(i: number): number {
    return this.origin + (i * this.width) / this.bins;
  }
}

class PercentileCalibrator implements Calibrator {
  readonly method = 'percentile' as const;
  private readonly hist: GrowingHistogram;
  constructor(
    private readonly percentile: number,
    bins: number,
  ) {
    if (!(percentile > 0 && percentile <= 100)) throw new Error(`percentile must be in (0, 100] (got ${percentile})`);
    this.hist = new GrowingHistogram(bins);
  }
  add(values: ArrayLike<number>): void {
    this.hist.add(values);
  }
  range(): CalibratedRange {
    const h = this.hist;
    if (h.total === 0) throw new Error('calibrator: no values were added');
    const cut = ((100 - this.percentile) / 200) * h.total;
    // Lower bound: the left edge of the bin where the cumulative count first exceeds `cut`; upper: the right edge from the other end.
    let acc = 0;
    let i = 0;
    for (; i < h.bins - 1; i++) {
      if (acc + h.counts[i]! > cut) break;
      acc += h.counts[i]!;
    }
    const clippedLow = acc;
    acc = 0;
    let j = h.bins - 1;
    for (; j > i; j--) {
      if (acc + h.counts[j]! > cut) break;
      acc += h.counts[j]!;
    }
    const clippedHigh = acc;
    const min = Math.max(h.min, h.edge(i));
    const max = Math.min(h.max, h.edge(j + 1));
    return { min, max, observedMin: h.min, observedMax: h.max, clippedFraction: (clippedLow + clippedHigh) / h.total, count: h.total };
  }
}

/** KL(p || q) of two unnormalized histograms (bins where p is 0 contribute nothing). */
function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    if (a === 0) continue;
    const b = q[i]! / sq;
    if (b === 0) return Infinity;
    kl += a * Math.log(a / b);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration on a histogram of |x| (bins of equal width from 0): for each
 * candidate threshold bin i >= quantizedBins, p = the first i bins with the outliers beyond added
 * to the last, q = those i bins merged into `quantizedBins` levels and spread back evenly over
 * their non-empty bins; the threshold minimizes KL(p || q).
 */
export function entropyThreshold(absCounts: Float64Array, binWidth: number, quantizedBins: number): { threshold: number; bin: number } {
  const n = absCounts.length;
  if (n <= quantizedBins) return { threshold: n * binWidth, bin: n };
  let best = Infinity;
  let bestBin = n;
  let tail = 0;
  for (let k = quantizedBins; k < n; k++) tail += absCounts[k]!;
  for (let i = quantizedBins; i <= n; i++) {
    const p = Float64Array.from(absCounts.subarray(0, i));
    p[i - 1]! += tail;
    if (i < n) tail -= absCounts[i]!;
    const q = new Float64Array(i);
    const per = i / quantizedBins;
    for (let j = 0; j < quantizedBins; j++) {
      const start = Math.floor(j * per);
      const end = j === quantizedBins - 1 ? i : Math.floor((j + 1) * per);
      let sum = 0;
      let nonEmpty = 0;
      for (let k = start; k < end; k++) {
        sum += absCounts[k]!;
        if (absCounts[k]! > 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      const v = sum / nonEmpty;
      for (let k = start; k < end; k++) if (absCounts[k]! > 0) q[k] = v;
    }
    const kl = klDivergence(p, q);
    if (kl < best) {
      best = kl;
      bestBin = i;
    }
  }
  return { threshold: bestBin * binWidth, bin: bestBin };
}

class EntropyCalibrator implements Calibrator {
  readonly method = 'entropy' as const;
  private readonly abs: GrowingHistogram;
  private min = Infinity;
  private max = -Infinity;
  private seeded = false;
  constructor(
    bins: number,
    private readonly quantizedBins: number,
  ) {
    if (!Number.isInteger(quantizedBins) || quantizedBins < 2 || quantizedBins > bins) throw new Error(`entropy calibration: quantized bins must be in 2..${bins} (got ${quantizedBins})`);
    this.abs = new GrowingHistogram(bins);
  }
  add(values: ArrayLike<number>): void {
    const a = new Float64Array(values.length);
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      a[i] = Math.abs(v);
    }
    this.min = lo;
    this.max = hi;
    // The |x| histogram starts at 0 so that bin i covers [i·w, (i+1)·w).
    if (!this.seeded && values.length > 0) {
      this.abs.add(Float64Array.of(0));
      this.abs.counts[0]!--;
      this.abs.total--;
      this.seeded = true;
    }
    this.abs.add(a);
  }
  range(): CalibratedRange {
    const h = this.abs;
    if (h.total === 0) throw new Error('calibrator: no values were added');
    const { threshold, bin } = entropyThreshold(h.counts, h.width / h.bins, this.quantizedBins);
    let clipped = 0;
    for (let k = bin; k < h.bins; k++) clipped += h.counts[k]!;
    const min = Math.max(this.min, -threshold);
    const max = Math.min(this.max, threshold);
    return { min, max, observedMin: this.min, observedMax: this.max, clippedFraction: clipped / h.total, count: h.total };
  }
}
