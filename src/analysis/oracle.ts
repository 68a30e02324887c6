// The small interface trace-path's analysis talks to: clean activations, and batched evaluations
// of the target objective F under affine edits of each layer's neuron row, with dF/d(row).
//
// For every sample s and searched layer l the edited row is  R_l = row_l ⊙ scale_l + offset_l,
// where row_l is the neuron row (class token by default) as the model computes it. scale = 0
// turns this into a do-intervention (R = offset, nothing upstream matters); scale = 1,
// offset = 0 leaves the layer untouched. grads[l] = dF/dR_l at every sample.

export interface CleanPass {
  /** Logits [n, classes]. */
  logits: Float32Array;
  /** Per layer (in `layers` order) the clean neuron row at the token, [n, ffn]. */
  acts: Float32Array[];
}

export interface EditQuery {
  /** Model input for every sample, [S, ...input dims] flattened. */
  input: Float32Array;
  samples: number;
  /** Per layer (in `layers` order): [S, ffn] or undefined (= scale 1). */
  scale: (Float32Array | undefined)[];
  /** Per layer: [S, ffn] or undefined (= offset 0). */
  offset: (Float32Array | undefined)[];
  /** Target class per sample. */
  target: Int32Array;
  /** Whether gradients are needed (forward-only evaluations are cheaper). */
  grads: boolean;
  /**
   * Whether the result must carry `rows` (default false: fetching them copies every layer's rows out
   * of every run, which only the effect search's pre-filter reads).
   */
  rows?: boolean;
}

export interface EditResult {
  /** Objective per sample, [S]. */
  F: Float32Array;
  /** Logits per sample, [S, classes]. */
  logits: Float32Array;
  /** Per layer dF/dR_l, [S, ffn] (present when grads were asked for). */
  grads?: Float32Array[];
  /**
   * Per layer the row as computed before its edit (given the edits upstream), [S, ffn]; when the
   * query asks for it, oracles that can expose it do (the effect search's attribution pre-filter
   * reads it, else clean rows).
   */
  rows?: Float32Array[];
}

/** Samples that each edit one layer's row alone (see NeuronOracle.evaluateLayerAlone). */
export interface LayerAloneQuery {
  /** The distinct images, [images, inputSize]. */
  input: Float32Array;
  images: number;
  /** Target class per image. */
  target: Int32Array;
  /**
   * One group per layer (index into `layers`, at most one group each): per sample its image and
   * its edited row R = row ⊙ scale + offset at that layer ([S, ffn] each); every other layer untouched.
   */
  groups: { layer: number; image: Int32Array; scale: Float32Array; offset: Float32Array }[];
}

export interface LayerAloneResult {
  /** Per group dF/dR at its layer, [S, ffn]. */
  grads: Float32Array[];
  /** Per group the objective per sample, [S]. */
  F: Float32Array[];
}

export interface NeuronOracle {
  /** Layer indices (model block numbers) this oracle can edit, ascending. */
  readonly layers: number[];
  readonly ffn: number;
  readonly numClasses: number;
  /** Number of float values per sample in the model input. */
  readonly inputSize: number;
  clean(input: Float32Array, n: number): Promise<CleanPass>;
  evaluate(q: EditQuery): Promise<EditResult>;
  /**
   * Optional: the same numbers as evaluate() with those edits, computed from the images' clean
   * states at each group's layer (nothing below it runs per sample, the backward stops at its row).
   */
  evaluateLayerAlone?(q: LayerAloneQuery): Promise<LayerAloneResult>;
}

/**
 * Layer-alone samples as whole-model evaluations (what an oracle without evaluateLayerAlone does):
 * one evaluate() of every group's samples, each with its layer's row edited and every other layer
 * untouched (scale 1, offset 0), in group order.
 */
export async function evaluateLayerAloneByEvaluate(o: NeuronOracle, q: LayerAloneQuery): Promise<LayerAloneResult> {
  const F = o.ffn;
  const S = q.groups.reduce((a, g) => a + g.image.length, 0);
  const input = new Float32Array(S * o.inputSize);
  const target = new Int32Array(S);
  const scale = o.layers.map(() => new Float32Array(S * F).fill(1));
  const offset = o.layers.map(() => new Float32Array(S * F));
  let s0 = 0;
  for (const g of q.groups) {
    g.image.forEach((im, k) => {
      input.set(q.input.subarray(im * o.inputSize, (im + 1) * o.inputSize), (s0 + k) * o.inputSize);
      target[s0 + k] = q.target[im]!;
    });
    scale[g.layer]!.set(g.scale, s0 * F);
    offset[g.layer]!.set(g.offset, s0 * F);
    s0 += g.image.length;
  }
  const r = await o.evaluate({ input, samples: S, scale, offset, target, grads: true });
  const grads: Float32Array[] = [];
  const Fs: Float32Array[] = [];
  s0 = 0;
  for (const g of q.groups) {
    grads.push(r.grads![g.layer]!.slice(s0 * F, (s0 + g.image.length) * F));
    Fs.push(r.F.slice(s0, s0 + g.image.length));
    s0 += g.image.length;
  }
  return { grads, F: Fs };
}
