// The report's class section: similarity over the classes that have images only, with their indices
// (a 1000-class model traced on a few classes must not write a 10^6-cell matrix of empty pairs).
import { describe, expect, it } from 'vitest';
import { aggregateByClass } from '../../src/analysis/classAggregate.js';
import { classesSection } from '../../src/services/tracePath.js';

describe('classesSection', () => {
  it('keeps the per-class arrays at full length and the similarity over present classes only', () => {
    // 6 classes, 2 layers, 4 neurons; images of classes 1, 4 and 4 only.
    const paths = [
      [0, 1],
      [0, 2],
      [3, 2],
    ];
    const agg = aggregateByClass(paths, [1, 4, 4], 6, 2, 4);
    const s = classesSection(agg);
    expect(s.images).toEqual([0, 1, 0, 0, 2, 0]);
    expect(s.preferred).toEqual([null, [0, 1], null, null, [0, 2], null]);
    expect(s.similarityClasses).toEqual([1, 4]);
    // class 1 counts: L0 n0 = 1, L1 n1 = 1 ; class 4: L0 n0 = 1, n3 = 1, L1 n2 = 2.
    // dot = 1, |c1| = sqrt(2), |c4| = sqrt(1 + 1 + 4) = sqrt(6).
    const c = 1 / Math.sqrt(2 * 6);
    expect(s.similarity).toHaveLength(2);
    expect(s.similarity[0]![0]).toBe(1);
    expect(s.similarity[1]![1]).toBe(1);
    expect(s.similarity[0]![1]).toBeCloseTo(c, 14);
    expect(s.similarity[1]![0]).toBeCloseTo(c, 14);
  });

  it('gives an empty matrix when no class has images', () => {
    const s = classesSection(aggregateByClass([], [], 3, 1, 2));
    expect(s.similarityClasses).toEqual([]);
    expect(s.similarity).toEqual([]);
  });
});
