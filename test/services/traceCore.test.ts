// trace-path's run-level numbers by hand: the per-method summary (means, medians, top-1 flips and
// the accuracy deviations, with their sign) and the per-class aggregation, which groups images by
// their target class, not by the prediction.
import { describe, expect, it } from 'vitest';
import { classSummary, summarizeMethods, type ImageResult, type MethodName, type MethodResult } from '../../src/services/traceCore.js';

function method(m: MethodName, o: Partial<MethodResult>): MethodResult {
  return { method: m, path: [0], activations: [1], jasProduct: 0, jasSum: 0, completenessGap: 0, removeRatio: 1, enhanceRatio: 1, removePred: 0, enhancePred: 0, gradSamples: 0, forwardSamples: 0, ...o };
}

function image(i: number, label: number | null, pred: number, target: number, methods: MethodResult[]): ImageResult {
  return { index: i, id: `img${i}`, label, pred, target, fBase: 0.5, pBase: 0.5, layers: [], methods };
}

describe('summarizeMethods', () => {
  // Four images, three labelled (labels 0, 1, 2; image 3 unlabelled), predictions 0, 1, 0, 3:
  // clean accuracy over the labelled ones = 2/3 (image 2 is wrong).
  const results: ImageResult[] = [
    image(0, 0, 0, 0, [method('path', { jasProduct: 1, jasSum: 0.5, completenessGap: 0.25, removeRatio: 0.1, enhanceRatio: 2, removePred: 1, enhancePred: 0, gradSamples: 40, forwardSamples: 3 })]),
    image(1, 1, 1, 1, [method('path', { jasProduct: 3, jasSum: -0.5, completenessGap: -1, removeRatio: 0.5, enhanceRatio: 1, removePred: 0, enhancePred: 1, gradSamples: 20, forwardSamples: 1 })]),
    image(2, 2, 0, 2, [method('path', { jasProduct: -2, jasSum: 1, completenessGap: 1, removeRatio: 0.3, enhanceRatio: 4, removePred: 2, enhancePred: 2 })]),
    image(3, null, 3, 3, [method('path', { jasProduct: 2, jasSum: 0, completenessGap: 0.5, removeRatio: 0.9, enhanceRatio: 3, removePred: 3, enhancePred: 0 })]),
  ];
  const [s] = summarizeMethods(results, ['path']);

  it('averages JAS, completeness and ratios over every image, with medians', () => {
    expect(s!.images).toBe(4);
    expect(s!.meanJasProduct).toBeCloseTo((1 + 3 - 2 + 2) / 4, 15);
    expect(s!.meanJasSum).toBeCloseTo((0.5 - 0.5 + 1 + 0) / 4, 15);
    expect(s!.meanCompletenessGap).toBeCloseTo((0.25 - 1 + 1 + 0.5) / 4, 15);
    // |jasSum - gap| = 0.25, 0.5, 0, 0.5
    expect(s!.meanCompletenessError).toBeCloseTo(1.25 / 4, 15);
    expect(s!.meanRemoveRatio).toBeCloseTo(1.8 / 4, 15);
    expect(s!.medianRemoveRatio).toBeCloseTo((0.3 + 0.5) / 2, 15);
    expect(s!.meanEnhanceRatio).toBeCloseTo(10 / 4, 15);
    expect(s!.medianEnhanceRatio).toBeCloseTo((2 + 3) / 2, 15);
  });

  it('sample counts are means over every image', () => {
    expect(s!.meanGradSamples).toBe((40 + 20) / 4);
    expect(s!.meanForwardSamples).toBe((3 + 1) / 4);
  });

  it('top-1 flips count every image whose prediction changed', () => {
    expect(s!.removeTop1Changed).toBe(3 / 4); // 0->1, 1->0, 0->2; image 3 keeps 3
    expect(s!.enhanceTop1Changed).toBe(2 / 4); // image 2 (0->2) and image 3 (3->0)
  });

  it('accuracy deviations are accuracy after the edit minus before, over the labelled images (sign included)', () => {
    // remove: correct only on image 2 -> 1/3, minus 2/3 = -1/3 (removing the path hurts)
    expect(s!.removeAccuracyDeviation).toBeCloseTo(1 / 3 - 2 / 3, 15);
    // enhance: correct on images 0, 1, 2 -> 1, minus 2/3 = +1/3
    expect(s!.enhanceAccuracyDeviation).toBeCloseTo(1 - 2 / 3, 15);
  });

  it('without any label the deviations are null', () => {
    const unlabelled = results.map((r) => ({ ...r, label: null }));
    const [u] = summarizeMethods(unlabelled, ['path']);
    expect(u!.removeAccuracyDeviation).toBeNull();
    expect(u!.enhanceAccuracyDeviation).toBeNull();
    expect(u!.removeTop1Changed).toBe(3 / 4);
  });

  it('summarizes each method from its own results', () => {
    const two = results.map((r) => ({ ...r, methods: [...r.methods, method('random', { jasProduct: 10, removePred: r.pred, enhancePred: r.pred })] }));
    const [p, rnd] = summarizeMethods(two, ['path', 'random']);
    expect(p).toEqual(s);
    expect(rnd!.method).toBe('random');
    expect(rnd!.meanJasProduct).toBe(10);
    expect(rnd!.removeTop1Changed).toBe(0);
    expect(rnd!.removeAccuracyDeviation).toBe(0);
  });
});

describe('classSummary', () => {
  it('groups the influential paths by target class, not by prediction', () => {
    // Three images of 3 classes, 2 layers, 2 neurons. Targets 2, 2, 0; predictions 1, 2, 0.
    const results = [
      image(0, 2, 1, 2, [method('path', { path: [1, 0] }), method('random', { path: [0, 0] })]),
      image(1, 2, 2, 2, [method('path', { path: [1, 1] }), method('random', { path: [0, 0] })]),
      image(2, 0, 0, 0, [method('path', { path: [0, 1] }), method('random', { path: [1, 1] })]),
    ];
    const c = classSummary(results, 3, 2, 2);
    expect(Array.from(c.images)).toEqual([1, 0, 2]); // by prediction it would be [1, 1, 1]
    expect(c.preferred[2]).toEqual([1, 0]); // layer 0: neuron 1 twice; layer 1: 0 and 1 tie -> 0
    expect(c.preferred[0]).toEqual([0, 1]);
    expect(c.preferred[1]).toBeNull();
    // counts[c][l][j]: class 2 layer 0 neuron 1 = 2 (only the 'path' method counts)
    expect(c.counts[(2 * 2 + 0) * 2 + 1]).toBe(2);
    expect(c.counts[(2 * 2 + 0) * 2 + 0]).toBe(0);
    // class 2: preferred [1, 0]; image 0's path [1, 0] is it, image 1's [1, 1] is not -> 1 shared;
    // share with the preferred neuron: layer 0 2/2, layer 1 1/2. Class 0: its one image.
    expect(Array.from(c.pathShared)).toEqual([1, 0, 1]);
    expect(c.preferredShare[2]).toEqual([1, 0.5]);
    expect(c.preferredShare[0]).toEqual([1, 1]);
    expect(c.preferredShare[1]).toBeNull();
  });
});
