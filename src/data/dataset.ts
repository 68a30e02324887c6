// Turning discovered items into model input: decode (concurrency-limited), preprocess, and pack
// batches of N images as one float32 NCHW tensor.
import * as os from 'node:os';
import { ExitCode, VitpathError } from '../errors.js';
import { convertChannels, decodeImage } from './decode.js';
import { idxImages, readIdx } from './idx.js';
import { type PreprocessSpec, preprocessImage } from './preprocess.js';
import { type Image8 } from './resize.js';
import type { DataItem } from './sources.js';

export interface LoadOptions {
  /** Images decoded at once (default: min(4, CPU count)). */
  concurrency?: number;
}

export interface Batch {
  items: DataItem[];
  /** Float32 NCHW, dims [items.length, C, H, W]. */
  data: Float32Array;
  dims: [number, number, number, number];
  /** Label per item, -1 where unlabelled. */
  labels: Int32Array;
  /** Index of the batch's first item in the full list. */
  start: number;
}

type IdxImages = ReturnType<typeof idxImages>;
const idxCache = new Map<string, IdxImages>();

function idxFor(file: string): IdxImages {
  let v = idxCache.get(file);
  if (!v) {
    v = idxImages(readIdx(file));
    idxCache.set(file, v);
  }
  return v;
}

/** One item as an 8-bit image with the spec's channel count (before resize/crop). */
export async function loadImage8(item: DataItem, channels: 1 | 3): Promise<Image8> {
  if (item.idx) {
    const im = idxFor(item.idx.file);
    const px = im.height * im.width * im.channels;
    const data = im.data.subarray(item.idx.index * px, (item.idx.index + 1) * px);
    return convertChannels(data, im.width, im.height, im.channels, channels);
  }
  if (!item.path) throw new Error(`internal: item ${item.id} has neither a path nor an IDX index`);
  return decodeImage(item.path, channels);
}

/** Run `fn` over `xs` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(xs: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < xs.length) {
      const i = next++;
      try {
        out[i] = await fn(xs[i]!, i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, xs.length)) }, worker));
  return out;
}

function defaultConcurrency(): number {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(4, cpus));
}

/** Decode and preprocess `items` into one float32 NCHW tensor [items.length, C, H, W]. */
export async function loadBatch(items: readonly DataItem[], spec: PreprocessSpec, opts: LoadOptions = {}): Promise<Float32Array> {
  const per = spec.channels * spec.height * spec.width;
  const out = new Float32Array(items.length * per);
  await mapLimit(items, opts.concurrency ?? defaultConcurrency(), async (item, i) => {
    const img = await loadImage8(item, spec.channels);
    preprocessImage(img, spec, out, i * per);
  });
  return out;
}

/** An image that could not be read or decoded, and why (the bad-input message naming it). */
export interface Unreadable {
  item: DataItem;
  reason: string;
}

/**
 * loadBatch for --skip-bad-images: an item that cannot be read or decoded (bad input, exit 2) is
 * left out instead of failing the batch. `data` holds the kept items in order ([kept.length, C, H, W]);
 * `kept` are their positions in `items`.
 */
export async function loadBatchSkipping(items: readonly DataItem[], spec: PreprocessSpec, opts: LoadOptions = {}): Promise<{ data: Float32Array; kept: number[]; skipped: Unreadable[] }> {
  const per = spec.channels * spec.height * spec.width;
  const all = new Float32Array(items.length * per);
  const reasons = await mapLimit(items, opts.concurrency ?? defaultConcurrency(), async (item, i) => {
    try {
      const img = await loadImage8(item, spec.channels);
      preprocessImage(img, spec, all, i * per);
      return null;
    } catch (e) {
      if (e instanceof VitpathError && e.exitCode === ExitCode.BAD_INPUT) return e.message;
      throw e;
    }
  });
  const kept: number[] = [];
  const skipped: Unreadable[] = [];
  reasons.forEach((r, i) => (r === null ? kept.push(i) : skipped.push({ item: items[i]!, reason: r })));
  if (skipped.length === 0) return { data: all, kept, skipped };
  const data = new Float32Array(kept.length * per);
  kept.forEach((i, k) => data.set(all.subarray(i * per, (i + 1) * per), k * per));
  return { data, kept, skipped };
}

/** Batches of `batchSize` items in order; the last one may be smaller. */
export async function* iterateBatches(items: readonly DataItem[], spec: PreprocessSpec, batchSize: number, opts: LoadOptions = {}): AsyncGenerator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`internal: batch size must be a positive integer (got ${batchSize})`);
  for (let start = 0; start < items.length; start += batchSize) {
    const slice = items.slice(start, start + batchSize);
    const data = await loadBatch(slice, spec, opts);
    yield {
      items: slice,
      data,
      dims: [slice.length, spec.channels, spec.height, spec.width],
      labels: Int32Array.from(slice, (it) => it.label ?? -1),
      start,
    };
  }
}
