// OrtNeuronOracle.evaluate queues all of a query's runs at once (a session that finishes takes the
// next run instead of waiting for the other sessions at every `maxSamples` samples). The runs must
// be exactly the ones the engine ran before, chunk by chunk: the same rows in the same pieces, so
// results are bit for bit those of one engine call per chunk, on a dynamic batch and on a fixed
// batch (whose pieces are padded). Another run size changes only the last bits. Feeds built for a
// run are handed to the worker sessions; the caller's arrays never are.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { prepareLoaded } from '../../src/services/prepareModel.js';
import { prepareVitModel } from '../../src/services/vitModel.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import type { NeuronGradientEngine } from '../../src/engine/gradientEngine.js';
import type { EditQuery } from '../../src/analysis/oracle.js';
import { mulberry32, synthVitModel } from '../../src/vit/synth.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-evalruns-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function open(file: string, maxSamples: number): Promise<OrtNeuronOracle> {
  const { loaded: prepped } = await prepareLoaded(loadModel(file), { label: file });
  const { loaded, layout } = prepareVitModel(prepped, {});
  return OrtNeuronOracle.create(loaded, layout, { layers: layout.blocks.map((_, i) => i), token: 'cls', objective: 'prob', provider: 'cpu', threads: 2, maxSamples });
}

/** S samples over 4 distinct images (so the engine shares image rows), random edits on every layer but the second. */
function query(o: OrtNeuronOracle, S: number, grads: boolean): EditQuery {
  const rnd = mulberry32(7);
  const size = o.inputSize;
  const images = Array.from({ length: 4 }, () => Float32Array.from({ length: size }, () => rnd()));
  const input = new Float32Array(S * size);
  for (let s = 0; s < S; s++) input.set(images[s % 3 === 0 ? 0 : s % 4]!, s * size);
  const F = o.ffn;
  const scale = o.layers.map((_, l) => (l === 1 ? undefined : Float32Array.from({ length: S * F }, (_, k) => (k % 5 === 0 ? 0 : 2 * rnd()))));
  const offset = o.layers.map((_, l) => (l === 1 ? undefined : Float32Array.from({ length: S * F }, () => rnd() - 0.5)));
  return { input, samples: S, scale, offset, target: Int32Array.from({ length: S }, () => Math.floor(rnd() * o.numClasses)), grads, rows: true };
}

/** The engine called once per chunk of `chunk` samples, as the oracle did before. */
async function perChunk(o: OrtNeuronOracle, q: EditQuery, chunk: number) {
  const engine = (o as unknown as { engine: NeuronGradientEngine }).engine;
  const F = o.ffn;
  const S = q.samples;
  const C = o.numClasses;
  const out = { F: new Float32Array(S), logits: new Float32Array(S * C), grads: o.layers.map(() => new Float32Array(S * F)), rows: o.layers.map(() => new Float32Array(S * F)) };
  for (let s0 = 0; s0 < S; s0 += chunk) {
    const n = Math.min(chunk, S - s0);
    const offsets: Record<number, Float32Array> = {};
    const scales: Record<number, Float32Array> = {};
    o.layers.forEach((l, li) => {
      offsets[l] = q.offset[li]?.slice(s0 * F, (s0 + n) * F) ?? new Float32Array(n * F);
      scales[l] = q.scale[li]?.slice(s0 * F, (s0 + n) * F) ?? new Float32Array(n * F).fill(1);
    });
    const images = q.input.slice(s0 * o.inputSize, (s0 + n) * o.inputSize);
    const targets = Array.from(q.target.subarray(s0, s0 + n));
    const r = q.grads ? await engine.run(images, n, targets, offsets, scales) : await engine.forward(images, n, targets, offsets, scales);
    out.F.set(r.F, s0);
    out.logits.set(r.logits, s0 * C);
    o.layers.forEach((l, li) => {
      out.rows[li]!.set(r.activations[l]!, s0 * F);
      if ('grads' in r && r.grads) out.grads[li]!.set((r.grads as Record<number, Float32Array>)[l]!, s0 * F);
    });
  }
  return out;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function expectClose(got: Float32Array, want: Float32Array, what: string) {
  expect(got.length, what).toBe(want.length);
  const tol = 1e-5 * Math.max(1e-6, maxAbs(want));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst, what).toBeLessThanOrEqual(tol);
}

describe('evaluate queues every run of a query at once', () => {
  for (const [name, cfg] of [
    ['dynamic batch', {}],
    ['fixed batch of 2 (padded pieces)', { batch: 2 }],
  ] as const) {
    it(`gives bit for bit the results of one engine call per maxSamples chunk: ${name}`, async () => {
      const f = path.join(tmp, `runs-${name.replace(/[^a-z0-9]+/gi, '-')}.onnx`);
      saveModel(synthVitModel({ depth: 3, seed: 5, ...cfg }), f);
      const small = await open(f, 3);
      const large = await open(f, 64);
      try {
        expect(small.memory!.sessions).toBe(2);
        for (const grads of [true, false]) {
          const q = query(small, 11, grads);
          const before = [q.input, ...q.scale, ...q.offset, q.target].map((a) => a?.slice());
          const got = await small.evaluate(q);
          const want = await perChunk(small, q, small.memory!.samplesPerRun);
          expect(got.F, `F grads=${grads}`).toEqual(want.F);
          expect(got.logits, `logits grads=${grads}`).toEqual(want.logits);
          small.layers.forEach((_, li) => {
            expect(got.rows![li], `rows ${li} grads=${grads}`).toEqual(want.rows[li]);
            if (grads) expect(got.grads![li], `grads ${li}`).toEqual(want.grads[li]);
          });
          expect(got.grads === undefined, 'grads only when asked').toBe(!grads);
          // Without rows asked for, none are fetched, and nothing else changes.
          const lean = await small.evaluate({ ...q, rows: false });
          expect(lean.rows, 'rows only when asked').toBeUndefined();
          expect(lean.F).toEqual(got.F);
          if (grads) small.layers.forEach((_, li) => expect(lean.grads![li], `grads ${li} without rows`).toEqual(got.grads![li]));
          // Other run sizes: the same numbers up to rounding.
          const other = await large.evaluate(q);
          expectClose(other.F, want.F, 'F, 64 samples per run');
          if (grads) small.layers.forEach((_, li) => expectClose(other.grads![li]!, want.grads[li]!, `grads ${li}, 64 samples per run`));
          // Worker sessions take over only arrays built for a run: the query's own arrays (fed
          // unchanged when one run covers them, as on the single forward session) stay intact.
          expect([q.input, ...q.scale, ...q.offset, q.target], 'the query after its runs').toEqual(before);
        }
      } finally {
        await small.release();
        await large.release();
      }
    }, 60_000);
  }

  it('puts each piece in its place when a chunk ends in a padded piece of a fixed batch', async () => {
    const f = path.join(tmp, 'runs-fixed-chunk.onnx');
    saveModel(synthVitModel({ depth: 2, seed: 6, batch: 2 }), f);
    const o = await open(f, 2);
    try {
      const engine = (o as unknown as { engine: NeuronGradientEngine }).engine;
      const q = query(o, 7, true);
      const F = o.ffn;
      const offsets = Object.fromEntries(o.layers.map((l, li) => [l, q.offset[li] ?? new Float32Array(7 * F)]));
      const scales = Object.fromEntries(o.layers.map((l, li) => [l, q.scale[li] ?? new Float32Array(7 * F).fill(1)]));
      const targets = Array.from(q.target);
      // Chunks of 3 on a batch of 2: pieces [0,2) [2,1)+pad [3,2) [5,1)+pad [6,1)+pad.
      const odd = await engine.run(q.input, 7, targets, offsets, scales, 3);
      const whole = await engine.run(q.input, 7, targets, offsets, scales);
      expect(odd.F).toEqual(whole.F);
      expect(odd.logits).toEqual(whole.logits);
      for (const l of o.layers) {
        expect(odd.grads[l], `grads ${l}`).toEqual(whole.grads[l]);
        expect(odd.activations[l], `rows ${l}`).toEqual(whole.activations[l]);
      }
    } finally {
      await o.release();
    }
  }, 60_000);
});
