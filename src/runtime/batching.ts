// Run N samples through a session in chunks: respects a model's fixed batch size (padding the
// last chunk and dropping the padded rows), concatenates outputs along axis 0, reports progress
// and yields to the event loop between chunks so timers (spinners) keep running.
import { runtimeError, usageError } from '../errors.js';
import type { Feed, Output, SessionLike } from './session.js';

export interface BatchOptions {
  /** Rows per run for models with a dynamic batch axis. */
  batchSize: number;
  /** The model's fixed batch size, if any (see fixedBatchOf); every run then feeds exactly this many rows. */
  fixedBatch?: number;
  /** Called after each chunk with samples done so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Output names to fetch (all outputs by default). */
  outputs?: string[];
  /** Feeds without a batch axis, passed unchanged to every run (never padded, never transferred). */
  staticFeeds?: Record<string, Feed>;
  /**
   * Hand the arrays buildFeeds returns to a worker session instead of copying them (default true;
   * they are detached afterwards, so set false if buildFeeds returns arrays it reuses).
   */
  transferFeeds?: boolean;
  /** Stop between chunks when aborted (throws the signal's reason). */
  signal?: AbortSignal;
}

/** Builds the batched feeds for samples [start, start + count): every feed's dims[0] must be count. */
export type BuildFeeds = (start: number, count: number) => Record<string, Feed> | Promise<Record<string, Feed>>;

/** The fixed leading dimension of an input as the model declares it, or undefined when dynamic. */
export function fixedBatchOf(session: Pick<SessionLike, 'inputShapes' | 'inputNames'>, input?: string): number | undefined {
  const name = input ?? session.inputNames[0];
  if (name === undefined) return undefined;
  const d = session.inputShapes[name]?.[0];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** Chunk boundaries [start, count] for n samples with the given chunk size. */
export function chunkRanges(n: number, chunk: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += chunk) out.push([s, Math.min(chunk, n - s)]);
  return out;
}

/** Pad a feed from `count` to `target` rows along axis 0 by repeating its last row. */
export function padRows(f: Feed, count: number, target: number): Feed {
  if (count === target) return f;
  const row = rowSize(f.dims);
  const Ctor = f.data.constructor as new (n: number) => Feed['data'];
  const data = new Ctor(target * row);
  (data as Float32Array).set(f.data.subarray(0, count * row) as Float32Array, 0);
  const last = f.data.subarray((count - 1) * row, count * row);
  for (let r = count; r < target; r++) (data as Float32Array).set(last as Float32Array, r * row);
  return { ...f, data, dims: [target, ...f.dims.slice(1)] };
}

function rowSize(dims: readonly number[]): number {
  let s = 1;
  for (let i = 1; i < dims.length; i++) s *= dims[i]!;
  return s;
}

/**
 * Run n samples in chunks and return every output concatenated along axis 0 (n rows each).
 * Each output must have the run's batch size as its leading dimension. n = 0 returns {}.
 */
export async function runBatched(session: SessionLike, buildFeeds: BuildFeeds, n: number, opts: BatchOptions): Promise<Record<string, Output>> {
  if (!Number.isInteger(n) || n < 0) throw usageError(`sample count must be a non-negative integer (got ${n})`);
  const fixed = opts.fixedBatch;
  if (fixed !== undefined && (!Number.isInteger(fixed) || fixed < 1)) throw usageError(`fixed batch size must be a positive integer (got ${fixed})`);
  if (fixed === undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)) throw usageError(`--batch must be a positive integer (got ${opts.batchSize})`);
  const chunk = fixed ?? opts.batchSize;
  const transfer = opts.transferFeeds ?? true;
  const result: Record<string, Output> = {};
  let done = 0;
  for (const [start, count] of chunkRanges(n, chunk)) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const runRows = fixed ?? count;
    const built = await buildFeeds(start, count);
    const feeds: Record<string, Feed> = {};
    for (const [name, f] of Object.entries(built)) {
      if (f.dims[0] !== count) throw runtimeError(`runBatched: feed "${name}" has leading dimension ${f.dims[0]} but the chunk has ${count} samples`);
      feeds[name] = padRows(f, count, runRows);
    }
    const batched = Object.keys(feeds);
    Object.assign(feeds, opts.staticFeeds ?? {});
    const out = await session.run(feeds, opts.outputs, { transfer: transfer ? batched : false });
    for (const [name, o] of Object.entries(out)) {
      if (o.dims[0] !== runRows) {
        throw runtimeError(`runBatched: output "${name}" has leading dimension ${o.dims[0]}, not the batch size ${runRows}; only batched outputs can be concatenated along axis 0`);
      }
      const row = rowSize(o.dims);
      let acc = result[name];
      if (!acc) {
        const Ctor = o.data.constructor as new (n: number) => Output['data'];
        acc = result[name] = { data: new Ctor(n * row), dims: [n, ...o.dims.slice(1)], type: o.type };
      } else if (rowSize(acc.dims) !== row || acc.dims.length !== o.dims.length) {
        throw runtimeError(`runBatched: output "${name}" changed shape between chunks ([${acc.dims.slice(1)}] then [${o.dims.slice(1)}])`);
      }
      (acc.data as Float32Array).set(o.data.subarray(0, count * row) as Float32Array, start * row);
    }
    done += count;
    opts.onProgress?.(done, n);
    // Let timers and I/O run between chunks: an in-thread session.run blocks the event loop.
    await new Promise<void>((r) => setImmediate(r));
  }
  return result;
}
