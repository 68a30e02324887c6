// Joint Attribution Score of a neuron path, in the official "product" form and the
// integrated-gradients "sum" form, from per-step gradients at the path neurons.

export type JasForm = 'product' | 'sum';

/**
 * w[l] = clean activation of the path neuron at layer l; gsum[l] = sum over the m steps of
 * dF/d(neuron) at that layer. Returns both forms.
 *   product = (sum_l w_l / m) * (sum_l gsum_l)
 *   sum     = sum_l (w_l / m) * gsum_l
 */
export function jasForms(w: ArrayLike<number>, gsum: ArrayLike<number>, m: number): { product: number; sum: number } {
  let wTot = 0;
  let gTot = 0;
  let s = 0;
  for (let l = 0; l < w.length; l++) {
    wTot += w[l]!;
    gTot += gsum[l]!;
    s += (w[l]! / m) * gsum[l]!;
  }
  return { product: (wTot / m) * gTot, sum: s };
}

/** Left Riemann steps alpha_k = k/m, k = 0..m-1. */
export function alphas(m: number): Float64Array {
  const a = new Float64Array(m);
  for (let k = 0; k < m; k++) a[k] = k / m;
  return a;
}

/** The k best indices by value (descending; ties by lower index). */
export function topK(v: ArrayLike<number>, k: number): { index: number; value: number }[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b]! - v[a]! || a - b);
  return idx.slice(0, k).map((i) => ({ index: i, value: v[i]! }));
}
