// timeRuns: warm-up calls are made and not recorded, one sample per timed call, bad counts refused.
import { describe, expect, it } from 'vitest';
import { timeRuns } from '../../src/runtime/latency.js';

describe('timeRuns', () => {
  it('calls warm-up + repeat times, with consecutive indices, and records only the timed ones', async () => {
    const calls: number[] = [];
    const ms = await timeRuns(async (i) => void calls.push(i), { warmup: 2, repeat: 5 });
    expect(calls).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(ms).toHaveLength(5);
    for (const t of ms) expect(t).toBeGreaterThanOrEqual(0);
  });
  it('measures the time a run takes', async () => {
    const ms = await timeRuns(() => new Promise((r) => setTimeout(r, 20)), { warmup: 0, repeat: 2 });
    for (const t of ms) expect(t).toBeGreaterThanOrEqual(15);
  });
  it('refuses repeat < 1 and negative warm-up', async () => {
    await expect(timeRuns(async () => {}, { warmup: 0, repeat: 0 })).rejects.toThrow(/--repeat/);
    await expect(timeRuns(async () => {}, { warmup: -1, repeat: 1 })).rejects.toThrow(/--warmup/);
  });
});
