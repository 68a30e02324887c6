// Scoring a classifier's output rows against labels: top-1 prediction (argmax, ties to the lowest
// class), top-k hit, true-class probability (softmax of the row), and accuracy over the labelled
// images. The one definition every command and test uses.
import { argmax, logSoftmax, type NumArray } from './stats.js';

/** Scores of n rows of logits [n, K]; rows without a label (label < 0) count in nothing labelled. */
export interface LogitScores {
  /** argmax per row (-1 for a row of NaN). */
  predictions: Int32Array;
  /** softmax(row)[label], exp of the log-softmax; NaN where the row has no label. */
  trueProb: Float64Array;
  /** 1 where the label is among the top-k classes of the row. */
  topKHit: Uint8Array;
  /** Labelled rows whose prediction equals the label. */
  correct: number;
  /** Labelled rows whose label is among the top-k classes. */
  topKCorrect: number;
  /** Sum of trueProb over the labelled rows, in row order. */
  probSum: number;
  /** Rows with a label. */
  labelled: number;
}

/**
 * The rank of class y in row [off, off + K): how many classes come before it when the row is sorted
 * by decreasing value with ties to the lower index (so rank 0 is exactly argmax). NaN values rank
 * last; a NaN y ranks K.
 */
export function rankOf(row: NumArray, off: number, K: number, y: number): number {
  const v = row[off + y]!;
  if (Number.isNaN(v)) return K;
  let r = 0;
  for (let c = 0; c < K; c++) {
    const x = row[off + c]!;
    if (x > v || (x === v && c < y)) r++;
  }
  return r;
}

/**
 * Score logits [n, K] against labels (a label < 0 means none; omit labels for unlabelled rows):
 * predictions, top-k hits (k default 5) and the true-class probability per row, with the labelled counts.
 */
export function scoreLogits(logits: NumArray, n: number, K: number, labels?: ArrayLike<number>, k = 5): LogitScores {
  if (labels && labels.length !== n) throw new RangeError(`scoreLogits: ${labels.length} labels for ${n} rows`);
  const ls = logSoftmax(logits, n, K);
  const s: LogitScores = {
    predictions: new Int32Array(n),
    trueProb: new Float64Array(n).fill(NaN),
    topKHit: new Uint8Array(n),
    correct: 0,
    topKCorrect: 0,
    probSum: 0,
    labelled: 0,
  };
  for (let i = 0; i < n; i++) {
    const pred = argmax(logits, i * K, i * K + K);
    s.predictions[i] = pred;
    const y = labels ? labels[i]! : -1;
    if (y < 0) continue;
    if (y >= K) throw new RangeError(`scoreLogits: label ${y} of row ${i} is outside the ${K} classes`);
    s.labelled++;
    if (pred === y) s.correct++;
    if (rankOf(logits, i * K, K, y) < k) {
      s.topKHit[i] = 1;
      s.topKCorrect++;
    }
    s.trueProb[i] = Math.exp(ls[i * K + y]!);
    s.probSum += s.trueProb[i]!;
  }
  return s;
}

/** Fraction of labelled items whose prediction equals the label (null or a negative label = none); null when none is labelled. */
export function labelledAccuracy(predictions: ArrayLike<number>, labels: ArrayLike<number | null>): number | null {
  if (predictions.length !== labels.length) throw new RangeError(`labelledAccuracy: ${predictions.length} predictions for ${labels.length} labels`);
  let labelled = 0;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === null || y === undefined || y < 0) continue;
    labelled++;
    if (predictions[i] === y) correct++;
  }
  return labelled ? correct / labelled : null;
}
