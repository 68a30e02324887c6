import { describe, expect, it } from 'vitest';
import { searchPaths, scorePaths, type ImageContext } from '../../src/analysis/pathSearch.js';
import { activationPath, igLayerPaths, influencePaths, randomPath } from '../../src/analysis/baselines.js';
import { manipulatePaths } from '../../src/analysis/manipulate.js';
import { fakeContexts, FakeOracle, randomFake } from '../helpers/fakeOracle.js';
import { countingOracle } from '../../src/analysis/countingOracle.js';

function contexts(o: FakeOracle, n: number, seed: number): Promise<ImageContext[]> {
  return fakeContexts(o, Float32Array.from({ length: n * o.inputSize }, (_, i) => Math.sin(i * 1.7 + seed) * 2), n);
}

/** Slow reference: F at explicitly edited rows (no oracle batching, float64). */
function Fat(o: FakeOracle, im: ImageContext, edit: (l: number, row: Float64Array) => void): number {
  const rows = o.rows(im.input).map((r, l) => {
    const c = Float64Array.from(r);
    edit(l, c);
    return c;
  });
  return o.head(rows).p[im.target]!;
}

describe('layer-progressive search on a closed-form oracle', () => {
  it('matches a slow per-candidate reference computed with finite differences', async () => {
    const o = randomFake(3);
    const ims = await contexts(o, 3, 1);
    const m = 20;
    const found = await searchPaths(o, ims, { steps: m, jas: 'product', topK: 5 });
    for (let i = 0; i < ims.length; i++) {
      const im = ims[i]!;
      const chosen: number[] = [];
      for (let l = 0; l < o.layers.length; l++) {
        const scores: number[] = [];
        for (let j = 0; j < o.ffn; j++) {
          let gSum = 0;
          for (let k = 0; k < m; k++) {
            const a = k / m;
            const rowsAt = (h: number, lj: number, jj: number) =>
              Fat(o, im, (ll, row) => {
                if (ll < l) {
                  const keep = Float64Array.from(im.acts[ll]!);
                  keep[chosen[ll]!] = a * im.acts[ll]![chosen[ll]!]!;
                  row.set(keep);
                } else if (ll === l) for (let q = 0; q < row.length; q++) row[q] = a * im.acts[l]![q]!;
                if (ll === lj) row[jj]! += h;
              });
            const fd = (lj: number, jj: number) => (rowsAt(1e-5, lj, jj) - rowsAt(-1e-5, lj, jj)) / 2e-5;
            gSum += fd(l, j);
            for (let lp = 0; lp < l; lp++) gSum += fd(lp, chosen[lp]!);
          }
          let w = im.acts[l]![j]!;
          for (let lp = 0; lp < l; lp++) w += im.acts[lp]![chosen[lp]!]!;
          scores.push((gSum * w) / m);
        }
        const best = scores.indexOf(Math.max(...scores));
        expect(found[i]![l]!.neuron).toBe(best);
        expect(found[i]![l]!.score).toBeCloseTo(scores[best]!, 5);
        for (const t of found[i]![l]!.top) expect(t.score).toBeCloseTo(scores[t.neuron]!, 5);
        chosen.push(best);
      }
    }
  });

  it('sum form: scores equal a slow reference Σ_{earlier} (w/m) g + (a_j/m) G_j, earlier-path terms included', async () => {
    const o = randomFake(4);
    const ims = await contexts(o, 2, 6);
    const m = 12;
    const found = await searchPaths(o, ims, { steps: m, jas: 'sum', topK: 5 });
    for (let i = 0; i < ims.length; i++) {
      const im = ims[i]!;
      const chosen: number[] = [];
      for (let l = 0; l < o.layers.length; l++) {
        const scores: number[] = [];
        let earlierTerms = 0;
        for (let j = 0; j < o.ffn; j++) {
          let G = 0;
          const gPrev = new Array<number>(l).fill(0);
          for (let k = 0; k < m; k++) {
            const a = k / m;
            const rowsAt = (h: number, lj: number, jj: number) =>
              Fat(o, im, (ll, row) => {
                if (ll < l) {
                  const keep = Float64Array.from(im.acts[ll]!);
                  keep[chosen[ll]!] = a * im.acts[ll]![chosen[ll]!]!;
                  row.set(keep);
                } else if (ll === l) for (let q = 0; q < row.length; q++) row[q] = a * im.acts[l]![q]!;
                if (ll === lj) row[jj]! += h;
              });
            const fd = (lj: number, jj: number) => (rowsAt(1e-5, lj, jj) - rowsAt(-1e-5, lj, jj)) / 2e-5;
            G += fd(l, j);
            for (let lp = 0; lp < l; lp++) gPrev[lp]! += fd(lp, chosen[lp]!);
          }
          earlierTerms = gPrev.reduce((acc, g, lp) => acc + (im.acts[lp]![chosen[lp]!]! / m) * g, 0);
          scores.push(earlierTerms + (im.acts[l]![j]! / m) * G);
        }
        const best = scores.indexOf(Math.max(...scores));
        expect(found[i]![l]!.neuron).toBe(best);
        expect(found[i]![l]!.score).toBeCloseTo(scores[best]!, 6);
        for (const t of found[i]![l]!.top) expect(t.score).toBeCloseTo(scores[t.neuron]!, 6);
        // From the second layer on, the earlier-path terms are not negligible here.
        if (l > 0) expect(Math.abs(earlierTerms)).toBeGreaterThan(1e-4);
        chosen.push(best);
      }
    }
  });

  it('sum-form JAS approaches the completeness gap as steps grow', async () => {
    const o = randomFake(11);
    const ims = await contexts(o, 2, 2);
    const paths = ims.map((im) => [activationPath(im)]);
    const errs: number[] = [];
    for (const m of [20, 200, 2000]) {
      const s = await scorePaths(o, ims, paths, m);
      errs.push(Math.max(...s.map((r) => Math.abs(r[0]!.jasSum - r[0]!.completenessGap))));
      // The zeroed objective is independent: recompute it directly.
      ims.forEach((im, i) => expect(s[i]![0]!.fZeroed).toBeCloseTo(Fat(o, im, (l, row) => row.set(im.acts[l]!.map((v, j) => (j === paths[i]![0]![l] ? 0 : v)))), 6));
    }
    expect(errs[1]!).toBeLessThan(errs[0]!);
    expect(errs[2]!).toBeLessThan(errs[1]!);
    expect(errs[2]!).toBeLessThan(1e-3 * Math.max(1e-6, ...ims.map((im) => Math.abs(im.fClean))));
  });

  it('scoring evaluates each distinct path of an image once: methods that chose the same path share its samples and scores', async () => {
    const o = randomFake(13);
    const ims = await contexts(o, 2, 2);
    const L = o.layers.length;
    const a = ims.map((im) => activationPath(im));
    const other = ims.map((_, i) => a[i]!.map((v) => (v + 1) % o.ffn));
    const paths = ims.map((_, i) => [a[i]!, other[i]!, [...a[i]!]]);
    const counted = countingOracle(o);
    const s = await scorePaths(counted, ims, paths, 10);
    expect(counted.count.gradSamples).toBe(ims.length * 2 * 10); // two distinct paths per image
    const alone = await scorePaths(o, ims, ims.map((_, i) => [a[i]!, other[i]!]), 10);
    ims.forEach((_, i) => {
      for (const [q, r] of [[0, 0], [1, 1], [2, 0]]) {
        expect(s[i]![q!]!.jasProduct).toBe(alone[i]![r!]!.jasProduct);
        expect(s[i]![q!]!.jasSum).toBe(alone[i]![r!]!.jasSum);
        expect(s[i]![q!]!.fZeroed).toBe(alone[i]![r!]!.fZeroed);
        expect(s[i]![q!]!.path).toBe(paths[i]![q!]);
      }
      expect(s[i]![2]!.activations).toHaveLength(L);
      expect(s[i]![2]!.activations).not.toBe(s[i]![0]!.activations);
    });
  });

  it('search is batch independent and deterministic', async () => {
    const o = randomFake(5);
    const ims = await contexts(o, 4, 3);
    const together = await searchPaths(o, ims, { steps: 10, jas: 'sum', topK: 5 });
    for (let i = 0; i < ims.length; i++) {
      const alone = await searchPaths(o, [ims[i]!], { steps: 10, jas: 'sum', topK: 5 });
      expect(alone[0]!.map((c) => c.neuron)).toEqual(together[i]!.map((c) => c.neuron));
      alone[0]!.forEach((c, l) => expect(c.score).toBeCloseTo(together[i]![l]!.score, 6));
    }
  });

  it('baselines: ig-layer equals the first search layer, influence and random are well formed', async () => {
    const o = randomFake(8);
    const ims = await contexts(o, 2, 4);
    const found = await searchPaths(o, ims, { steps: 20, jas: 'sum', topK: 5 });
    const ig = await igLayerPaths(o, ims, 20);
    // With no earlier layers, the sum-form search at layer 0 is exactly per-layer IG.
    ims.forEach((_, i) => expect(ig[i]![0]).toBe(found[i]![0]!.neuron));
    const inf = await influencePaths(o, ims, 20);
    for (const p of inf) for (const j of p) expect(j).toBeGreaterThanOrEqual(0);
    expect(randomPath(6, 3, 1, 0)).toEqual(randomPath(6, 3, 1, 0));
    expect(randomPath(6, 3, 1, 0)).not.toEqual(randomPath(6, 3, 2, 0));
  });

  it('manipulation ratios equal directly edited probabilities', async () => {
    const o = randomFake(9);
    const ims = await contexts(o, 2, 5);
    const paths = ims.map((im) => [activationPath(im)]);
    const res = await manipulatePaths(o, ims, paths, ims.map((im) => im.target));
    ims.forEach((im, i) => {
      const p = paths[i]![0]!;
      const rem = Fat(o, im, (l, row) => (row[p[l]!] = 0));
      const enh = Fat(o, im, (l, row) => (row[p[l]!] = 2 * row[p[l]!]!));
      expect(res[i]![0]!.removeRatio).toBeCloseTo(rem / im.fClean, 5);
      expect(res[i]![0]!.enhanceRatio).toBeCloseTo(enh / im.fClean, 5);
    });
  });
});

import { aggregateByClass } from '../../src/analysis/classAggregate.js';
describe('class aggregation', () => {
  it('counts, preferred paths and similarity by hand', () => {
    const a = aggregateByClass([[1, 2], [1, 0], [3, 0], [1, 2]], [0, 0, 1, 2], 4, 2, 4);
    expect(Array.from(a.images)).toEqual([2, 1, 1, 0]);
    expect(a.counts[(0 * 2 + 0) * 4 + 1]).toBe(2);
    expect(a.preferred[0]).toEqual([1, 0]); // layer 1: neurons 2 and 0 tie once each -> lowest index
    expect(a.preferred[3]).toBeNull();
    // class 0 = [l0:n1 x2, l1:n2, l1:n0], class 2 = [l0:n1, l1:n2] -> cos = (2+1)/(sqrt(6)*sqrt(2))
    expect(a.similarity[0 * 4 + 2]).toBeCloseTo(3 / Math.sqrt(12), 12);
    expect(a.similarity[1 * 4 + 3]).toBe(0);
  });
});
