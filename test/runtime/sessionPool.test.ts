// SessionPool: batches split into equal contiguous pieces run on parallel worker sessions give
// the same numbers as one in-thread session, whatever the split, and the same numbers every time.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionPool, splitRows } from '../../src/runtime/sessionPool.js';
import type { Output, SessionLike } from '../../src/runtime/session.js';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { NeuronGradientEngine } from '../../src/engine/gradientEngine.js';
import { parallelPlan } from '../../src/engine/neuronOracle.js';
import { FIXTURE_DIR } from '../rewrite/layouts.js';
import { randomImages } from '../rewrite/data.js';

describe('splitRows', () => {
  it('covers the batch with contiguous pieces of near-equal size in unit multiples', () => {
    for (const [batch, parts, unit] of [[10, 2, 1], [7, 3, 1], [5, 8, 1], [1, 2, 1], [10, 3, 4], [9, 2, 3], [320, 2, 1]] as const) {
      const p = splitRows(batch, parts, unit);
      let at = 0;
      for (const [s, n] of p) {
        expect(s).toBe(at);
        expect(n).toBeGreaterThan(0);
        at += n;
      }
      expect(at).toBe(batch);
      expect(p.length).toBeLessThanOrEqual(parts);
      expect(p.length).toBe(Math.min(parts, Math.ceil(batch / unit)));
      p.slice(0, -1).forEach(([, n]) => expect(n % unit).toBe(0));
      const sizes = p.map(([, n]) => Math.ceil(n / unit));
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
  it('parallelPlan: 1 thread is one in-thread session; 0 means every core; at most 8 sessions', () => {
    expect(parallelPlan(1, 16)).toEqual({ sessions: 1, threads: 1 });
    expect(parallelPlan(0, 2)).toEqual({ sessions: 2, threads: 1 });
    expect(parallelPlan(undefined, 4)).toEqual({ sessions: 4, threads: 1 });
    expect(parallelPlan(3, 2)).toEqual({ sessions: 3, threads: 1 });
    expect(parallelPlan(0, 32)).toEqual({ sessions: 8, threads: 4 });
  });
});

/** A session that answers after `ms`, failing on the jobs `fails` names; it records the jobs it was given and their transfer lists. */
function fakeSession(ms: number, fails: (j: number) => boolean, log: { j: number; transfer?: readonly string[] }[]): SessionLike {
  return {
    provider: 'cpu',
    inputNames: ['j'],
    outputNames: ['y'],
    inputShapes: {},
    stats: { runs: 0, runMs: 0 },
    async run(feeds, _outputs, options) {
      const j = Number((feeds.j!.data as Float32Array)[0]);
      log.push({ j, transfer: Array.isArray(options?.transfer) ? options!.transfer : undefined });
      await new Promise((r) => setTimeout(r, ms));
      if (fails(j)) throw new Error(`job ${j} failed`);
      return { y: { data: Float32Array.of(j), dims: [1], type: 'float32' } as Output };
    },
    async release() {},
  };
}

function poolOf(sessions: SessionLike[]): SessionPool {
  return new (SessionPool as unknown as new (s: SessionLike[]) => SessionPool)(sessions);
}

describe('SessionPool.runEach / runAll', () => {
  const job = (j: number) => ({ feeds: { j: { data: Float32Array.of(j), dims: [1] } }, outputs: ['y'], transfer: j % 2 ? ['j'] : [] });
  it('every job runs once, results in job order, transfer lists passed on', async () => {
    const log: { j: number; transfer?: readonly string[] }[] = [];
    const pool = poolOf([fakeSession(1, () => false, log), fakeSession(3, () => false, log)]);
    const res = await pool.runAll(9, job);
    expect(res.map((r) => (r.y!.data as Float32Array)[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(log.map((x) => x.j).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (const x of log) expect(x.transfer).toEqual(x.j % 2 ? ['j'] : undefined);
  });
  it('after a failed job the other sessions take no new ones, and the call rejects with that failure', async () => {
    const log: { j: number }[] = [];
    const pool = poolOf([fakeSession(2, (j) => j === 0, log), fakeSession(2, () => false, log)]);
    await expect(pool.runEach(40, job, () => {})).rejects.toThrow(/job 0 failed/);
    await new Promise((r) => setTimeout(r, 60)); // a lane still taking jobs would have run ~30 more by now
    expect(log.length).toBeLessThanOrEqual(3);
  });
});

describe('gradient engine on a pool of sessions', () => {
  const file = path.join(FIXTURE_DIR, 'erf-ln-matmul.onnx');
  const loaded = loadModel(file);
  const layout = locateVit(loaded.proto);

  it('two and three worker sessions match one in-thread session (run, forward, clean) and repeat exactly', async () => {
    const B = 7;
    const images = randomImages(B, layout.facts.channels * layout.facts.imageSize[0] * layout.facts.imageSize[1], 11);
    const targets = Array.from({ length: B }, (_, i) => (i * 3) % layout.facts.numClasses);
    const one = await NeuronGradientEngine.create(loaded, layout, { threads: 1, provider: 'cpu', mode: 'affine' });
    const results = [];
    for (const sessions of [1, 2, 3, 2]) {
      const e = sessions === 1 ? one : await NeuronGradientEngine.create(loaded, layout, { threads: 1, sessions, provider: 'cpu', mode: 'affine' });
      const clean = await e.clean(images, B);
      const scales: Record<number, Float32Array> = {};
      const offsets: Record<number, Float32Array> = {};
      for (const l of e.layers) {
        scales[l] = Float32Array.from(clean.activations[l]!, (_, i) => (i % 5) / 4);
        offsets[l] = Float32Array.from(clean.activations[l]!, (v, i) => (i % 3) * 0.1 * v);
      }
      const r = await e.run(images, B, targets, offsets, scales);
      const f = await e.forward(images, B, targets, offsets, scales);
      results.push({ clean, r, f });
      if (e !== one) await e.release();
    }
    await one.release();
    const close = (a: Float32Array, b: Float32Array) => {
      expect(a.length).toBe(b.length);
      const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 * scale);
    };
    const ref = results[0]!;
    for (const x of results.slice(1)) {
      close(x.clean.logits, ref.clean.logits);
      close(x.r.F, ref.r.F);
      close(x.r.logits, ref.r.logits);
      close(x.f.F, ref.r.F);
      for (const l of Object.keys(ref.r.grads).map(Number)) {
        close(x.r.grads[l]!, ref.r.grads[l]!);
        close(x.clean.activations[l]!, ref.clean.activations[l]!);
      }
    }
    // The same pool size twice: bit-identical.
    expect(Array.from(results[3]!.r.grads[0]!)).toEqual(Array.from(results[1]!.r.grads[0]!));
    expect(Array.from(results[3]!.r.F)).toEqual(Array.from(results[1]!.r.F));
  }, 60_000);
});
