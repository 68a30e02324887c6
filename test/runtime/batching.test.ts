import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type ModelSession } from '../../src/runtime/session.js';
import { chunkRanges, fixedBatchOf, padRows, runBatched } from '../../src/runtime/batching.js';
import { VitpathError } from '../../src/errors.js';
import { IN, OUT, matmulModel, matmulRef, sampleRows } from './tiny-models.js';

const rowsOf = (x: Float32Array) => (start: number, count: number) => ({
  x: { data: x.slice(start * IN, (start + count) * IN), dims: [count, IN] },
});

function expectMatches(y: ArrayLike<number>, ref: Float64Array) {
  expect(y.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) expect(y[i]).toBeCloseTo(ref[i]!, 5);
}

describe('chunking helpers', () => {
  it('chunkRanges covers n exactly', () => {
    expect(chunkRanges(7, 3)).toEqual([
      [0, 3],
      [3, 3],
      [6, 1],
    ]);
    expect(chunkRanges(0, 4)).toEqual([]);
  });

  it('padRows repeats the last row', () => {
    const f = padRows({ data: Float32Array.from([1, 2, 3, 4]), dims: [2, 2] }, 2, 4);
    expect(Array.from(f.data as Float32Array)).toEqual([1, 2, 3, 4, 3, 4, 3, 4]);
    expect(f.dims).toEqual([4, 2]);
    const i = padRows({ data: BigInt64Array.from([5n]), dims: [1] }, 1, 3);
    expect(i.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(i.data as BigInt64Array)).toEqual([5n, 5n, 5n]);
  });
});

describe('runBatched', () => {
  let fixed1: ModelSession, fixed3: ModelSession, dynamic: ModelSession;
  beforeAll(async () => {
    fixed1 = await createSession(matmulModel(1), { provider: 'cpu', threads: 1 });
    fixed3 = await createSession(matmulModel(3), { provider: 'cpu', threads: 1 });
    dynamic = await createSession(matmulModel('N', { extraSum: true }), { provider: 'cpu', threads: 1 });
  });
  afterAll(async () => {
    await Promise.all([fixed1.release(), fixed3.release(), dynamic.release()]);
  });

  it('reads fixed and dynamic batch sizes from the model', () => {
    expect(fixedBatchOf(fixed1)).toBe(1);
    expect(fixedBatchOf(fixed3)).toBe(3);
    expect(fixedBatchOf(dynamic)).toBeUndefined();
  });

  it('fixed batch 1: one run per sample, whatever --batch says', async () => {
    const x = sampleRows(5);
    const progress: number[] = [];
    const out = await runBatched(fixed1, rowsOf(x), 5, { batchSize: 256, fixedBatch: fixedBatchOf(fixed1), onProgress: (d) => progress.push(d) });
    expect(out.y!.dims).toEqual([5, OUT]);
    expectMatches(out.y!.data as Float32Array, matmulRef(x));
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(fixed1.stats.runs).toBe(5);
  });

  it('fixed batch 3 with 7 samples: pads the last chunk and drops the padded rows', async () => {
    const x = sampleRows(7);
    const seen: number[][] = [];
    const spy = { ...fixed3, run: (feeds: Parameters<ModelSession['run']>[0], o?: string[], opt?: object) => {
      seen.push([...feeds.x!.dims]);
      return fixed3.run(feeds, o, opt);
    } } as unknown as ModelSession;
    const out = await runBatched(spy, rowsOf(x), 7, { batchSize: 2, fixedBatch: 3 });
    expect(seen).toEqual([
      [3, 4],
      [3, 4],
      [3, 4],
    ]);
    expect(out.y!.dims).toEqual([7, OUT]);
    expectMatches(out.y!.data as Float32Array, matmulRef(x));
  });

  it('dynamic batch: chunks of --batch, progress to n, outputs concatenated', async () => {
    const x = sampleRows(5);
    const progress: Array<[number, number]> = [];
    const out = await runBatched(dynamic, rowsOf(x), 5, { batchSize: 2, outputs: ['y'], onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([
      [2, 5],
      [4, 5],
      [5, 5],
    ]);
    expectMatches(out.y!.data as Float32Array, matmulRef(x));
    expect(Object.keys(out)).toEqual(['y']);
  });

  it('refuses to concatenate an output without the batch axis', async () => {
    const x = sampleRows(4);
    await expect(runBatched(dynamic, rowsOf(x), 4, { batchSize: 2 })).rejects.toThrow(/output "total" has leading dimension/);
  });

  it('checks feed sizes and arguments', async () => {
    await expect(runBatched(dynamic, () => ({ x: { data: new Float32Array(8), dims: [2, 4] } }), 3, { batchSize: 3 })).rejects.toThrow(/leading dimension 2/);
    await expect(runBatched(dynamic, rowsOf(sampleRows(1)), 1, { batchSize: 0 })).rejects.toBeInstanceOf(VitpathError);
    expect(await runBatched(dynamic, rowsOf(sampleRows(1)), 0, { batchSize: 4 })).toEqual({});
  });

  it('stops between chunks when aborted', async () => {
    const ac = new AbortController();
    const x = sampleRows(6);
    const p = runBatched(dynamic, rowsOf(x), 6, { batchSize: 2, outputs: ['y'], signal: ac.signal, onProgress: (d) => d === 2 && ac.abort(new Error('stop')) });
    await expect(p).rejects.toThrow('stop');
  });

  it('lets timers run between chunks of a session that blocks the event loop', async () => {
    // A fake session whose run() blocks synchronously for 2 ms, as an in-thread ONNX Runtime run does.
    const blocking = {
      provider: 'cpu', inputNames: ['x'], outputNames: ['y'], inputShapes: {}, stats: { runs: 0, runMs: 0 },
      run: async (feeds: Record<string, { dims: readonly number[] }>) => {
        const until = performance.now() + 2;
        while (performance.now() < until);
        return { y: { data: new Float32Array(feeds.x!.dims[0]!), dims: [feeds.x!.dims[0]!], type: 'float32' } };
      },
      release: async () => {},
    } as unknown as ModelSession;
    let ticks = 0;
    const t = setInterval(() => ticks++, 1);
    await runBatched(blocking, (_s, c) => ({ x: { data: new Float32Array(c), dims: [c] } }), 20, { batchSize: 1 });
    clearInterval(t);
    expect(ticks).toBeGreaterThanOrEqual(10);
  });
});
