// Scoring logits against labels: hand-made rows with known argmax, ranks, ties and true-class probabilities.
import { describe, expect, it } from 'vitest';
import { labelledAccuracy, rankOf, scoreLogits } from '../../src/analysis/classify.js';

const L2 = Math.log(2);
const L5 = Math.log(5);

describe('rankOf', () => {
  it('counts the classes before y, ties going to the lower index', () => {
    const row = [0.5, 2, 2, -1, NaN];
    expect(rankOf(row, 0, 5, 1)).toBe(0); // ties with class 2, wins by index
    expect(rankOf(row, 0, 5, 2)).toBe(1);
    expect(rankOf(row, 0, 5, 0)).toBe(2);
    expect(rankOf(row, 0, 5, 3)).toBe(3);
    expect(rankOf(row, 0, 5, 4)).toBe(5); // NaN ranks last
  });
  it('reads a row at an offset', () => {
    expect(rankOf([9, 9, 1, 3, 2], 2, 3, 2)).toBe(1);
  });
});

describe('scoreLogits', () => {
  // Row 0: softmax [1, 2, 5]/8, label 2 (right). Row 1: [5, 2, 1]/8, label 1 (wrong, top-2 hit).
  // Row 2: unlabelled. Row 3: [1, 2, 5]/8, label 0 (wrong, not in the top 2).
  const logits = [0, L2, L5, L5, L2, 0, 3, 1, 2, 0, L2, L5];
  const s = scoreLogits(logits, 4, 3, [2, 1, -1, 0], 2);
  it('gives argmax predictions for every row, labelled or not', () => {
    expect(Array.from(s.predictions)).toEqual([2, 0, 0, 2]);
  });
  it('counts correct, top-k hits and labelled rows', () => {
    expect(s.labelled).toBe(3);
    expect(s.correct).toBe(1);
    expect(Array.from(s.topKHit)).toEqual([1, 1, 0, 0]);
    expect(s.topKCorrect).toBe(2);
  });
  it('gives the softmax probability of the label, NaN without one, and their sum', () => {
    expect(s.trueProb[0]).toBeCloseTo(5 / 8, 15);
    expect(s.trueProb[1]).toBeCloseTo(2 / 8, 15);
    expect(s.trueProb[2]).toBeNaN();
    expect(s.trueProb[3]).toBeCloseTo(1 / 8, 15);
    expect(s.probSum).toBeCloseTo(1, 14);
  });
  it('without labels scores predictions only', () => {
    const u = scoreLogits(logits, 4, 3);
    expect(u.labelled).toBe(0);
    expect(u.correct).toBe(0);
    expect(Array.from(u.predictions)).toEqual([2, 0, 0, 2]);
  });
  it('top-1 of the top-k equals argmax on ties (lowest class)', () => {
    const t = scoreLogits([1, 1, 0], 1, 3, [1], 1);
    expect(t.predictions[0]).toBe(0);
    expect(t.topKCorrect).toBe(0);
    expect(scoreLogits([1, 1, 0], 1, 3, [0], 1).topKCorrect).toBe(1);
  });
  it('refuses a label outside the classes', () => {
    expect(() => scoreLogits([0, 1], 1, 2, [2])).toThrow(RangeError);
    expect(() => scoreLogits([0, 1], 1, 2, [0, 1])).toThrow(RangeError);
  });
});

describe('labelledAccuracy', () => {
  it('is the fraction right over labelled items; null when none is', () => {
    expect(labelledAccuracy([1, 2, 3, 4], [1, null, 0, 4])).toBeCloseTo(2 / 3, 15);
    expect(labelledAccuracy([1, 2], [null, -1])).toBeNull();
  });
});
