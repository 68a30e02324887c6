// Wall-clock timing of repeated inference runs: warm-up runs first (not recorded), then one
// sample in milliseconds per timed run.
import { usageError } from '../errors.js';

export interface TimingOptions {
  /** Untimed runs first (session warm-up, allocator and kernel caches). */
  warmup: number;
  /** Timed runs. */
  repeat: number;
}

/** Milliseconds of each timed call of `run(i)` (i = 0.. over warm-up then timed runs). */
export async function timeRuns(run: (i: number) => Promise<unknown>, o: TimingOptions): Promise<number[]> {
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw usageError(`--warmup must be a non-negative integer (got ${o.warmup})`);
  if (!Number.isInteger(o.repeat) || o.repeat < 1) throw usageError(`--repeat must be a positive integer (got ${o.repeat})`);
  for (let i = 0; i < o.warmup; i++) await run(i);
  const ms: number[] = [];
  for (let i = 0; i < o.repeat; i++) {
    const t0 = performance.now();
    await run(o.warmup + i);
    ms.push(performance.now() - t0);
  }
  return ms;
}
