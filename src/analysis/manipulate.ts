// Path manipulation: remove (path neurons set to 0 at every layer) or enhance (doubled), as
// edits of the computed rows, and the resulting change in the target probability and top-1.
// Ratios are softmax probabilities p_edit / p_base of the target, whatever objective F is.
import type { NeuronOracle } from './oracle.js';
import type { ImageContext } from './pathSearch.js';
import { argmax, softmax } from './stats.js';

export interface ManipulationResult {
  /** Target probability after the edit / before (clean), both softmax of the logits. */
  removeRatio: number;
  enhanceRatio: number;
  removePred: number;
  enhancePred: number;
  removeChangedTop1: boolean;
  enhanceChangedTop1: boolean;
}

/**
 * Evaluate remove/enhance for paths[i][q] (one neuron per oracle layer) of every image. The
 * edit multiplies the computed neuron by 0 or 2 at every layer; other neurons stay as computed.
 */
export async function manipulatePaths(oracle: NeuronOracle, images: ImageContext[], paths: number[][][], cleanPred: number[]): Promise<ManipulationResult[][]> {
  const F = oracle.ffn;
  const L = oracle.layers.length;
  const jobs: { i: number; q: number; factor: number }[] = [];
  paths.forEach((ps, i) => ps.forEach((_, q) => jobs.push({ i, q, factor: 0 }, { i, q, factor: 2 })));
  // One unedited sample per image (after the edits) gives p_base from the same runs.
  const baseAt = jobs.length;
  images.forEach((_, i) => jobs.push({ i, q: -1, factor: 1 }));
  const S = jobs.length;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale: Float32Array[] = [];
  for (let l = 0; l < L; l++) scale.push(new Float32Array(S * F).fill(1));
  jobs.forEach(({ i, q, factor }, s) => {
    input.set(images[i]!.input, s * oracle.inputSize);
    target[s] = images[i]!.target;
    if (q >= 0) paths[i]![q]!.forEach((p, l) => (scale[l]![s * F + p] = factor));
  });
  const res = await oracle.evaluate({ input, samples: S, scale, offset: new Array(L).fill(undefined), target, grads: false });
  const C = oracle.numClasses;
  const probs = softmax(res.logits, S, C);
  const pOf = (s: number) => probs[s * C + images[jobs[s]!.i]!.target]!;
  const out: ManipulationResult[][] = paths.map(() => []);
  for (let s = 0; s < baseAt; s += 2) {
    const { i, q } = jobs[s]!;
    const p0 = pOf(baseAt + i);
    const rp = argmax(res.logits.subarray(s * C, (s + 1) * C));
    const ep = argmax(res.logits.subarray((s + 1) * C, (s + 2) * C));
    out[i]![q] = {
      removeRatio: pOf(s) / p0,
      enhanceRatio: pOf(s + 1) / p0,
      removePred: rp,
      enhancePred: ep,
      removeChangedTop1: rp !== cleanPred[i],
      enhanceChangedTop1: ep !== cleanPred[i],
    };
  }
  return out;
}
