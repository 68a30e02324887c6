// Joint Attribution Score of a neuron path, in the official "product" form and the
// integrated-gradients "sum" form, from the rule-weighted step sums of the gradients at the path neurons.

export type JasForm = 'product' | 'sum';

/**
 * w[l] = clean activation of the path neuron at layer l; gw[l] = Σ_k c_k dF/d(neuron)(α_k), the
 * integration rule's weighted sum over its nodes (for the paper's left Riemann sum, (1/m) Σ_k g_l(k)).
 *   product = (Σ_l w_l) · (Σ_l gw_l)       (the official implementation)
 *   sum     = Σ_l w_l · gw_l                (integrated gradients of the set; → F(clean) − F(path zeroed))
 */
export function jasForms(w: ArrayLike<number>, gw: ArrayLike<number>): { product: number; sum: number } {
  let wTot = 0;
  let gTot = 0;
  let s = 0;
  for (let l = 0; l < w.length; l++) {
    wTot += w[l]!;
    gTot += gw[l]!;
    s += w[l]! * gw[l]!;
  }
  return { product: wTot * gTot, sum: s };
}

/** The k best indices by value (descending; ties by lower index). */
export function topK(v: ArrayLike<number>, k: number): { index: number; value: number }[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b]! - v[a]! || a - b);
  return idx.slice(0, k).map((i) => ({ index: i, value: v[i]! }));
}
