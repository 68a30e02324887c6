// The FFN pruning policy on hand-made scores: per-block and global fractions, rounding of the kept
// widths, protected neurons, excluded blocks, tie order.
import { describe, expect, it } from 'vitest';
import { planFfn, roundWidth } from '../../src/prune/policy.js';
import { VitpathError } from '../../src/errors.js';

describe('roundWidth', () => {
  it('rounds to the nearest multiple, within [r, F], at least the protected count rounded up', () => {
    expect(roundWidth(64, 128, 8)).toBe(64);
    expect(roundWidth(67, 128, 8)).toBe(64);
    expect(roundWidth(69, 128, 8)).toBe(72);
    expect(roundWidth(2, 128, 8)).toBe(8);
    expect(roundWidth(64, 128, 8, 70)).toBe(72);
    expect(roundWidth(3, 6, 8)).toBe(6);
    expect(roundWidth(125, 130, 8)).toBe(128);
    expect(roundWidth(130, 130, 8)).toBe(130);
  });
});

describe('planFfn', () => {
  const s0 = [5, 1, 4, 2, 8, 3, 7, 6]; // ranking: 4,6,7,0,2,5,3,1
  const s1 = [10, 20, 30, 40, 50, 60, 70, 80];
  it('per block: the lowest-scored neurons go, kept indices increasing', () => {
    const d = planFfn([s0, s1], { fraction: 0.5, scope: 'per-block', roundTo: 1 });
    expect(d.keep.get(0)).toEqual([0, 4, 6, 7]);
    expect(d.keep.get(1)).toEqual([4, 5, 6, 7]);
    expect(d.removed.filter((r) => r.block === 0).map((r) => [r.index, r.score])).toEqual([[1, 1], [2, 4], [3, 2], [5, 3]]);
    expect([d.before, d.after]).toEqual([16, 8]);
  });
  it('rounds kept widths to --round-to', () => {
    const d = planFfn([s0, s1], { fraction: 0.3, scope: 'per-block', roundTo: 4 });
    // 8 - round(2.4) = 6 -> 4 or 8: nearest multiple of 4 to 6 is 8 (Math.round(1.5) = 2).
    expect(d.keep.get(0)!.length).toBe(8);
    const e = planFfn([s0, s1], { fraction: 0.6, scope: 'per-block', roundTo: 4 });
    expect(e.keep.get(0)).toEqual([0, 4, 6, 7]);
  });
  it('never removes protected neurons, and widens to hold them', () => {
    const d = planFfn([s0, s1], { fraction: 0.75, scope: 'per-block', roundTo: 1, protect: new Map([[0, new Set([1, 3, 5])]]) });
    expect(d.keep.get(0)).toEqual([1, 3, 5]);
    const e = planFfn([s0, s1], { fraction: 0.5, scope: 'per-block', roundTo: 1, protect: new Map([[0, new Set([1])]]) });
    expect(e.keep.get(0)).toEqual([1, 4, 6, 7]);
  });
  it('leaves excluded blocks whole', () => {
    const d = planFfn([s0, s1], { fraction: 0.5, scope: 'per-block', roundTo: 1, exclude: [1] });
    expect(d.keep.get(1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(d.after).toBe(12);
  });
  it('global: scores relative to the block mean decide across blocks', () => {
    // Block 1's scores relative to its mean (45): 0.22 .. 1.78; block 0 (mean 4.5): 0.22 .. 1.78 too.
    const a = [1, 1, 1, 1, 1, 1, 1, 100]; // mean 13.4: all but one neuron look unimportant
    const d = planFfn([a, s1], { fraction: 0.5, scope: 'global', roundTo: 1 });
    expect(d.keep.get(0)).toEqual([7]);
    expect(d.keep.get(1)!.length).toBe(7);
    expect(d.after).toBe(8);
  });
  it('ties go to the lower index', () => {
    const d = planFfn([[1, 1, 1, 1]], { fraction: 0.5, scope: 'per-block', roundTo: 1 });
    expect(d.keep.get(0)).toEqual([0, 1]);
  });
  it('refuses fractions outside [0, 1) and bad blocks', () => {
    expect(() => planFfn([s0], { fraction: 1, scope: 'per-block', roundTo: 8 })).toThrow(VitpathError);
    expect(() => planFfn([s0], { fraction: 0.5, scope: 'per-block', roundTo: 8, exclude: [3] })).toThrow(/blocks 0..0/);
  });
});
