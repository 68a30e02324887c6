// Shared computations in trace-path's analysis: the search's first pass stands in for the
// ig-layer baseline's first-layer pass, giving the same paths with fewer evaluated samples.
import { describe, expect, it } from 'vitest';
import { searchPaths, type ImageContext } from '../../src/analysis/pathSearch.js';
import { igLayerPaths } from '../../src/analysis/baselines.js';
import type { EditQuery } from '../../src/analysis/oracle.js';
import { fakeContexts, FakeOracle, randomFake } from '../helpers/fakeOracle.js';

function contexts(o: FakeOracle, n: number, seed: number): Promise<ImageContext[]> {
  return fakeContexts(o, Float32Array.from({ length: n * o.inputSize }, (_, i) => Math.cos(i * 0.9 + seed) * 2), n);
}

/** Count the samples an oracle evaluates. */
function counting(o: FakeOracle): { samples: number } {
  const seen = { samples: 0 };
  const ev = o.evaluate.bind(o);
  o.evaluate = (q: EditQuery) => {
    seen.samples += q.samples;
    return ev(q);
  };
  return seen;
}

describe('ig-layer reuses the search first pass', () => {
  for (const seed of [1, 2, 3]) {
    it(`same ig-layer paths with the search's first-layer sums, one layer's samples fewer (seed ${seed})`, async () => {
      const o = randomFake(seed, 4, 9, 5, 6);
      const ims = await contexts(o, 5, seed);
      const m = 12;
      let sums: Float64Array[] | undefined;
      await searchPaths(o, ims, { steps: m, jas: 'product', topK: 5, onFirstPass: (g) => (sums = g) });
      expect(sums).toHaveLength(ims.length);
      const seen = counting(o);
      const alone = await igLayerPaths(o, ims, m);
      const aloneSamples = seen.samples;
      const reused = await igLayerPaths(o, ims, m, sums);
      expect(aloneSamples).toBe(4 * ims.length * m);
      expect(seen.samples - aloneSamples).toBe(3 * ims.length * m);
      expect(reused).toEqual(alone);
      // The sums are those of the ig-layer pass itself: scaling them by a/m ranks layer 0 the same.
      ims.forEach((im, i) => {
        const s = Array.from(sums![i]!, (g, j) => (im.acts[0]![j]! / m) * g);
        expect(s.indexOf(Math.max(...s))).toBe(alone[i]![0]);
      });
    });
  }
  it('a single searched layer needs no ig-layer evaluation at all', async () => {
    const o = randomFake(5, 1, 7, 4, 5);
    const ims = await contexts(o, 3, 5);
    let sums: Float64Array[] | undefined;
    await searchPaths(o, ims, { steps: 8, jas: 'sum', topK: 5, onFirstPass: (g) => (sums = g) });
    const seen = counting(o);
    const reused = await igLayerPaths(o, ims, 8, sums);
    expect(seen.samples).toBe(0);
    expect(reused).toEqual(await igLayerPaths(o, ims, 8));
  });
});
