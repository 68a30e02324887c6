// Path manipulation: remove (path neurons set to 0 at every layer) or enhance (doubled), as
// edits of the computed rows, and the resulting change in the target probability and top-1.
import type { NeuronOracle } from './oracle.js';
import type { ImageContext } from './pathSearch.js';
import { argmax } from './stats.js';

export interface ManipulationResult {
  /** F after the edit / F before (clean). */
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
  const S = jobs.length;
  const input = new Float32Array(S * oracle.inputSize);
  const target = new Int32Array(S);
  const scale: Float32Array[] = [];
  for (let l = 0; l < L; l++) scale.push(new Float32Array(S * F).fill(1));
  jobs.forEach(({ i, q, factor }, s) => {
    input.set(images[i]!.input, s * oracle.inputSize);
    target[s] = images[i]!.target;
    paths[i]![q]!.forEach((p, l) => (scale[l]![s * F + p] = factor));
  });
  const res = await oracle.evaluate({ input, samples: S, scale, offset: new Array(L).fill(undefined), target, grads: false });
  const C = oracle.numClasses;
  const out: ManipulationResult[][] = paths.map(() => []);
  for (let s = 0; s < S; s += 2) {
    const { i, q } = jobs[s]!;
    const f0 = images[i]!.fClean;
    const rp = argmax(res.logits.subarray(s * C, (s + 1) * C));
    const ep = argmax(res.logits.subarray((s + 1) * C, (s + 2) * C));
    out[i]![q] = {
      removeRatio: res.F[s]! / f0,
      enhanceRatio: res.F[s + 1]! / f0,
      removePred: rp,
      enhancePred: ep,
      removeChangedTop1: rp !== cleanPred[i],
      enhanceChangedTop1: ep !== cleanPred[i],
    };
  }
  return out;
}
