// Beam and effect searches on a closed-form oracle: beam of width 1 with a JAS score reproduces the paper's
// greedy search (neurons, scores, candidate lists) under every integration rule; effect scores equal the
// directly computed F(clean) − F(path and candidate removed); the effect search with every candidate is the
// brute-force greedy on removal; the pre-filter keeps the search inside its candidates; costs are counted.
import { describe, expect, it } from 'vitest';
import { searchPaths, type ImageContext } from '../../src/analysis/pathSearch.js';
import { beamSearch, type SearchCost } from '../../src/analysis/beamSearch.js';
import { quadrature, RULES } from '../../src/analysis/quadrature.js';
import { countingOracle } from '../../src/analysis/countingOracle.js';
import { fakeContexts, FakeOracle, randomFake } from '../helpers/fakeOracle.js';

function contexts(o: FakeOracle, n: number, seed: number): Promise<ImageContext[]> {
  return fakeContexts(o, Float32Array.from({ length: n * o.inputSize }, (_, i) => Math.sin(i * 1.3 + seed) * 2), n);
}

/** F of an image with the neurons of `removed[l]` multiplied by 0 (float64, no batching). */
function removedF(o: FakeOracle, im: ImageContext, removed: number[][]): number {
  const rows = o.rows(im.input).map((r, l) => {
    const c = Float64Array.from(r);
    for (const j of removed[l] ?? []) c[j] = 0;
    return c;
  });
  return o.head(rows).p[im.target]!;
}

describe('beam search', () => {
  for (const rule of RULES) {
    for (const jas of ['product', 'sum'] as const) {
      it(`width 1 equals the paper's greedy search (${jas}, ${rule} rule)`, async () => {
        const o = randomFake(21, 4, 9, 5, 6);
        const ims = await contexts(o, 4, 2);
        const q = quadrature(rule, 7);
        let g1: Float64Array[] = [];
        let b1: Float64Array[] = [];
        const greedy = await searchPaths(o, ims, { steps: q, jas, topK: 6, onFirstPass: (g) => (g1 = g) });
        const beam = await beamSearch(o, ims, { steps: q, score: jas, beam: 1, topK: 6, onFirstPass: (g) => (b1 = g) });
        ims.forEach((_, i) => {
          expect(beam[i]!.map((c) => c.neuron)).toEqual(greedy[i]!.map((c) => c.neuron));
          beam[i]!.forEach((c, l) => {
            const gc = greedy[i]![l]!;
            expect(c.layer).toBe(gc.layer);
            expect(c.activation).toBe(gc.activation);
            expect(c.score).toBeCloseTo(gc.score, 12);
            expect(c.top.map((t) => t.neuron)).toEqual(gc.top.map((t) => t.neuron));
          });
          expect(Array.from(b1[i]!)).toEqual(Array.from(g1[i]!));
        });
      });
    }
  }

  it('a beam wide enough to keep every partial path ends at or above the greedy path on its own score, at B·m samples per layer', async () => {
    const o = randomFake(4, 3, 8, 4, 5);
    const ims = await contexts(o, 3, 7);
    const m = 6;
    const cost: SearchCost = { gradSamples: 0, forwardSamples: 0 };
    const wide = await beamSearch(o, ims, { steps: m, score: 'sum', beam: 8 * 8, topK: 5 }, cost);
    const greedy = await searchPaths(o, ims, { steps: m, jas: 'sum', topK: 5 });
    // A beam as wide as all partial paths of two layers is exhaustive up to the last layer's choice.
    ims.forEach((_, i) => expect(wide[i]![2]!.score).toBeGreaterThanOrEqual(greedy[i]![2]!.score - 1e-12));
    // Layer 0 has one entry; layer 1 up to 8 entries; layer 2 up to 64.
    expect(cost.gradSamples).toBe(ims.length * m * (1 + 8 + 64));
    expect(cost.forwardSamples).toBe(0);
  });
});

describe('effect search', () => {
  it('scores every candidate by the directly computed drop of F when it is removed with the path so far', async () => {
    const o = randomFake(13, 3, 7, 4, 5);
    const ims = await contexts(o, 3, 4);
    const found = await beamSearch(o, ims, { steps: 4, score: 'effect', beam: 1, candidates: 7, topK: 7 });
    ims.forEach((im, i) => {
      const chosen: number[][] = [];
      for (let l = 0; l < o.layers.length; l++) {
        const drops = Array.from({ length: o.ffn }, (_, j) => im.fClean - removedF(o, im, [...chosen, [j]]));
        const best = drops.indexOf(Math.max(...drops));
        const c = found[i]![l]!;
        expect(c.neuron).toBe(best);
        expect(c.score).toBeCloseTo(drops[best]!, 6);
        for (const t of c.top) expect(t.score).toBeCloseTo(drops[t.neuron]!, 6);
        expect(c.top).toHaveLength(7);
        chosen.push([best]);
      }
    });
  });

  it('ablates only the pre-filtered candidates (top C by attribution), with one gradient sample per layer', async () => {
    const o = randomFake(17, 3, 10, 4, 5);
    const ims = await contexts(o, 2, 9);
    const C = 3;
    const counted = countingOracle(o);
    const found = await beamSearch(counted, ims, { steps: 4, score: 'effect', beam: 1, candidates: C, topK: 5 });
    expect(counted.count).toEqual({ gradSamples: 3 * ims.length, forwardSamples: 3 * ims.length * C });
    ims.forEach((im, i) => {
      const chosen: number[][] = [];
      for (let l = 0; l < o.layers.length; l++) {
        // Taylor attribution of removing j given the path so far removed: r_j dF/dr_j. In the fake
        // oracle rows do not depend on other layers, so r = the clean row; dF/dr by central differences.
        const attr = Array.from({ length: o.ffn }, (_, j) => {
          const h = 1e-6;
          const at = (d: number) => {
            const rows = o.rows(im.input).map((r, ll) => {
              const c = Float64Array.from(r);
              for (const p of chosen[ll] ?? []) c[p] = 0;
              if (ll === l) c[j]! += d;
              return c;
            });
            return o.head(rows).p[im.target]!;
          };
          return im.acts[l]![j]! * ((at(h) - at(-h)) / (2 * h));
        });
        const cands = attr.map((v, j) => ({ v, j })).sort((a, b) => b.v - a.v || a.j - b.j).slice(0, C).map((x) => x.j);
        const c = found[i]![l]!;
        expect(cands).toContain(c.neuron);
        expect(c.top.map((t) => t.neuron).sort()).toEqual([...cands].sort());
        chosen.push([c.neuron]);
      }
    });
  });

  it('the ig pre-filter spends steps gradient samples per layer and still picks among its candidates', async () => {
    const o = randomFake(19, 2, 9, 3, 4);
    const ims = await contexts(o, 2, 1);
    const counted = countingOracle(o);
    const found = await beamSearch(counted, ims, { steps: 5, score: 'effect', beam: 2, candidates: 4, prefilter: 'ig', topK: 5 });
    // Layer 0: 1 entry x 5 steps; layer 1: 2 entries x 5 steps; ablations 4 per entry.
    expect(counted.count).toEqual({ gradSamples: ims.length * (5 + 10), forwardSamples: ims.length * (4 + 8) });
    for (const f of found) expect(f).toHaveLength(2);
  });

  it('the pre-filter asks the oracle for the rows as edited upstream (oracles leave them out unless asked)', async () => {
    const o = randomFake(19, 2, 9, 3, 4);
    const ims = await contexts(o, 2, 1);
    for (const prefilter of ['taylor', 'ig'] as const) {
      const asked: boolean[] = [];
      const spy: FakeOracle = Object.create(o);
      spy.evaluate = (q) => {
        if (q.grads) asked.push(q.rows === true);
        return o.evaluate(q);
      };
      await beamSearch(spy, ims, { steps: 5, score: 'effect', beam: 2, candidates: 4, prefilter, topK: 5 });
      expect(asked.length, prefilter).toBeGreaterThan(0);
      expect(asked.every(Boolean), prefilter).toBe(true);
    }
  });
});
