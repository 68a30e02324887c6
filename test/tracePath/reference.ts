// A slow, independent re-implementation of trace-path's scores for tests: forward passes only of
// the intervened model (interveneNeurons in affine mode, no objective and no backward graph), the
// objective computed here in float64 from the logits, and every gradient g = dF/d(row entry)
// taken by a 4-point central difference of F. It shares nothing with the gradient graph, the
// oracle, pathSearch.ts or jas.ts: the search states (which rows are clean, which are scaled) and
// the JAS formulas are written out again from the definitions.
import type { ModelProto } from '../../src/onnx/proto.js';
import type { ViTLayout } from '../../src/vit/types.js';
import { interveneNeurons } from '../../src/onnx/rewrite/intervene.js';
import { encodeModel } from '../../src/onnx/model.js';
import { createSession, type ModelSession } from '../../src/runtime/session.js';

/** One forward sample: per layer an optional do-intervention value of the whole row (scale 0), else untouched. */
export interface RowState {
  /** Per layer index (0..L-1): the row the class token's neurons are set to, or null (as computed). */
  rows: (Float64Array | null)[];
  /** Optional per layer multiplicative edit of the computed row (scale), used for remove/enhance. */
  scale?: (Float64Array | null)[];
  /** Optional per layer value added to the computed row (where `rows` is null). */
  add?: (Float64Array | null)[];
  /** Multiply the image by this (the influence baseline's input path); default 1. */
  inputScale?: number;
}

export class ForwardReference {
  private constructor(
    private readonly session: ModelSession,
    readonly layers: number,
    readonly ffn: number,
    readonly classes: number,
    readonly inputSize: number,
    private readonly offsetNames: string[],
    private readonly scaleNames: string[],
    private readonly actNames: string[],
    private readonly logits: string,
    private readonly inputName: string,
    private readonly inputDims: number[],
  ) {}

  static async create(model: ModelProto, layout: ViTLayout, inputSize: number): Promise<ForwardReference> {
    const iv = interveneNeurons(model, layout, { mode: 'affine', token: 'cls', exposeActivations: true });
    const session = await createSession(encodeModel(iv.model), { provider: 'cpu', threads: 1 });
    const L = iv.layers.length;
    return new ForwardReference(
      session,
      L,
      layout.facts.ffnWidth,
      layout.facts.numClasses,
      inputSize,
      iv.layers.map((l) => iv.inputs[l]!),
      iv.layers.map((l) => iv.scaleInputs[l]!),
      iv.layers.map((l) => iv.activations[l]!),
      layout.logits,
      layout.input,
      layout.inputDims.slice(1).map(Number),
    );
  }

  /** Logits [S, classes] and (clean) activations per layer [S, ffn] for one image under S states. */
  async run(image: Float32Array, states: RowState[], chunk = 512): Promise<{ logits: Float64Array; acts: Float32Array[] }> {
    const S = states.length;
    const F = this.ffn;
    const logits = new Float64Array(S * this.classes);
    const acts = Array.from({ length: this.layers }, () => new Float32Array(S * F));
    for (let s0 = 0; s0 < S; s0 += chunk) {
      const n = Math.min(chunk, S - s0);
      const input = new Float32Array(n * this.inputSize);
      for (let s = 0; s < n; s++) {
        const a = states[s0 + s]!.inputScale ?? 1;
        for (let j = 0; j < this.inputSize; j++) input[s * this.inputSize + j] = a * image[j]!;
      }
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = { [this.inputName]: { data: input, dims: [n, ...this.inputDims] } };
      for (let l = 0; l < this.layers; l++) {
        const off = new Float32Array(n * F);
        const sc = new Float32Array(n * F).fill(1);
        for (let s = 0; s < n; s++) {
          const st = states[s0 + s]!;
          const row = st.rows[l];
          if (row) {
            for (let j = 0; j < F; j++) off[s * F + j] = row[j]!;
            sc.fill(0, s * F, (s + 1) * F);
          } else {
            if (st.scale?.[l]) for (let j = 0; j < F; j++) sc[s * F + j] = st.scale[l]![j]!;
            if (st.add?.[l]) for (let j = 0; j < F; j++) off[s * F + j] = st.add[l]![j]!;
          }
        }
        feeds[this.offsetNames[l]!] = { data: off, dims: [n, F] };
        feeds[this.scaleNames[l]!] = { data: sc, dims: [n, F] };
      }
      const out = await this.session.run(feeds, [this.logits, ...this.actNames]);
      const z = out[this.logits]!.data as Float32Array;
      for (let i = 0; i < n * this.classes; i++) logits[s0 * this.classes + i] = z[i]!;
      this.actNames.forEach((name, l) => acts[l]!.set(out[name]!.data as Float32Array, s0 * F));
    }
    return { logits, acts };
  }

  /** The objective F per state: 'prob' = softmax(logits)[target] in float64, 'logit' = logits[target]. */
  objective: 'prob' | 'logit' = 'prob';

  /** F per state (see `objective`). */
  probs(logits: Float64Array, target: number): Float64Array {
    const C = this.classes;
    const S = logits.length / C;
    const out = new Float64Array(S);
    if (this.objective === 'logit') {
      for (let s = 0; s < S; s++) out[s] = logits[s * C + target]!;
      return out;
    }
    for (let s = 0; s < S; s++) {
      let mx = -Infinity;
      for (let c = 0; c < C; c++) mx = Math.max(mx, logits[s * C + c]!);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(logits[s * C + c]! - mx);
      out[s] = Math.exp(logits[s * C + target]! - mx) / sum;
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** 4-point central-difference weights and offsets: g ≈ Σ c_i F(x + d_i h) / h (error O(h^4)). */
export const STENCIL: { d: number; c: number }[] = [
  { d: -2, c: 1 / 12 },
  { d: -1, c: -8 / 12 },
  { d: 1, c: 8 / 12 },
  { d: 2, c: -1 / 12 },
];

/** A gradient to take: dF/d(row `layer`, entry `neuron`) at a base state. */
export interface GradQuery {
  base: RowState;
  layer: number;
  neuron: number;
}

/** All gradients of the queries by finite differences, batched into forward runs. */
export async function fdGradients(ref: ForwardReference, image: Float32Array, target: number, qs: GradQuery[], h: number): Promise<Float64Array> {
  const states: RowState[] = [];
  for (const q of qs) {
    for (const { d } of STENCIL) {
      const rows = q.base.rows.map((r) => (r ? Float64Array.from(r) : null));
      const add = rows.map((_, l) => (q.base.add?.[l] ? Float64Array.from(q.base.add[l]!) : null));
      if (rows[q.layer]) rows[q.layer]![q.neuron]! += d * h;
      else {
        add[q.layer] ??= new Float64Array(ref.ffn);
        add[q.layer]![q.neuron]! += d * h;
      }
      states.push({ rows, add, scale: q.base.scale, inputScale: q.base.inputScale });
    }
  }
  const { logits } = await ref.run(image, states);
  const F = ref.probs(logits, target);
  const g = new Float64Array(qs.length);
  qs.forEach((_, i) => {
    let s = 0;
    STENCIL.forEach(({ c }, t) => (s += c * F[i * STENCIL.length + t]!));
    g[i] = s / h;
  });
  return g;
}

/** The search state of layer l at step alpha: rows < l clean but p_l' scaled, row l scaled whole, rows > l untouched. */
export function searchState(acts: Float64Array[], path: number[], l: number, alpha: number): RowState {
  const rows: (Float64Array | null)[] = acts.map(() => null);
  for (let lp = 0; lp < l; lp++) {
    const r = Float64Array.from(acts[lp]!);
    r[path[lp]!] = alpha * acts[lp]![path[lp]!]!;
    rows[lp] = r;
  }
  rows[l] = acts[l]!.map((v) => alpha * v);
  return { rows };
}

/** The scoring state of a path at step alpha: every row clean except the path neurons, scaled. */
export function pathState(acts: Float64Array[], path: number[], alpha: number): RowState {
  return {
    rows: acts.map((a, l) => {
      const r = Float64Array.from(a);
      r[path[l]!] = alpha * a[path[l]!]!;
      return r;
    }),
  };
}

/**
 * Layer-l search scores of `candidates`, given the earlier path neurons:
 * product: [Σ_k (g_l,j(k) + Σ_{l'<l} g_l',p(k))] · [a_l,j/m + Σ_{l'<l} w_l'/m]
 * sum:     (a_l,j/m) Σ_k g_l,j(k) + Σ_{l'<l} (w_l'/m) Σ_k g_l',p(k)
 */
export async function searchScores(
  ref: ForwardReference,
  image: Float32Array,
  target: number,
  acts: Float64Array[],
  path: number[],
  l: number,
  candidates: number[],
  m: number,
  h: number,
): Promise<{ product: number[]; sum: number[] }> {
  const qs: GradQuery[] = [];
  for (let k = 0; k < m; k++) {
    const base = searchState(acts, path, l, k / m);
    for (const j of candidates) qs.push({ base, layer: l, neuron: j });
    for (let lp = 0; lp < l; lp++) qs.push({ base, layer: lp, neuron: path[lp]! });
  }
  const g = await fdGradients(ref, image, target, qs, h);
  const per = candidates.length + l;
  const G = candidates.map(() => 0);
  const gPrev = Array.from({ length: l }, () => 0);
  for (let k = 0; k < m; k++) {
    candidates.forEach((_, c) => (G[c]! += g[k * per + c]!));
    for (let lp = 0; lp < l; lp++) gPrev[lp]! += g[k * per + candidates.length + lp]!;
  }
  const wPrev = path.slice(0, l).map((p, lp) => acts[lp]![p]!);
  const gP = gPrev.reduce((a, b) => a + b, 0);
  const wP = wPrev.reduce((a, b) => a + b, 0);
  const sumPrev = wPrev.reduce((a, w, lp) => a + (w / m) * gPrev[lp]!, 0);
  return {
    product: candidates.map((j, c) => (G[c]! + gP) * ((acts[l]![j]! + wP) / m)),
    sum: candidates.map((j, c) => (acts[l]![j]! / m) * G[c]! + sumPrev),
  };
}

/** JAS of a full path in both forms, and the completeness gap F(clean) - F(path zeroed). */
export async function pathJas(
  ref: ForwardReference,
  image: Float32Array,
  target: number,
  acts: Float64Array[],
  path: number[],
  m: number,
  h: number,
): Promise<{ product: number; sum: number; gap: number }> {
  const L = path.length;
  const qs: GradQuery[] = [];
  for (let k = 0; k < m; k++) {
    const base = pathState(acts, path, k / m);
    for (let l = 0; l < L; l++) qs.push({ base, layer: l, neuron: path[l]! });
  }
  const g = await fdGradients(ref, image, target, qs, h);
  const gs = path.map((_, l) => {
    let s = 0;
    for (let k = 0; k < m; k++) s += g[k * L + l]!;
    return s;
  });
  const w = path.map((p, l) => acts[l]![p]!);
  const wTot = w.reduce((a, b) => a + b, 0);
  const gTot = gs.reduce((a, b) => a + b, 0);
  const { logits } = await ref.run(image, [{ rows: acts.map(() => null) }, pathState(acts, path, 0)]);
  const F = ref.probs(logits, target);
  return {
    product: (wTot / m) * gTot,
    sum: w.reduce((a, wl, l) => a + (wl / m) * gs[l]!, 0),
    gap: F[0]! - F[1]!,
  };
}

/**
 * Per-layer integrated gradients of `candidates` at layer l (only that layer's row scaled by
 * alpha_k, the others as computed): a_j/m * Σ_k g_j(k). The ig-layer baseline is the argmax.
 */
export async function igLayerScores(ref: ForwardReference, image: Float32Array, target: number, acts: Float64Array[], l: number, candidates: number[], m: number, h: number): Promise<number[]> {
  const qs: GradQuery[] = [];
  for (let k = 0; k < m; k++) {
    const rows: (Float64Array | null)[] = acts.map(() => null);
    rows[l] = acts[l]!.map((v) => (k / m) * v);
    for (const j of candidates) qs.push({ base: { rows }, layer: l, neuron: j });
  }
  const g = await fdGradients(ref, image, target, qs, h);
  return candidates.map((j, c) => {
    let s = 0;
    for (let k = 0; k < m; k++) s += g[k * candidates.length + c]!;
    return (acts[l]![j]! / m) * s;
  });
}

/** Influence pattern: mean over steps of dF/d(row entry) with the image scaled by alpha_k, rows as computed. */
export async function influenceScores(ref: ForwardReference, image: Float32Array, target: number, l: number, candidates: number[], m: number, h: number): Promise<number[]> {
  const qs: GradQuery[] = [];
  for (let k = 0; k < m; k++) {
    const base: RowState = { rows: Array.from({ length: ref.layers }, () => null), inputScale: k / m };
    for (const j of candidates) qs.push({ base, layer: l, neuron: j });
  }
  const g = await fdGradients(ref, image, target, qs, h);
  return candidates.map((_, c) => {
    let s = 0;
    for (let k = 0; k < m; k++) s += g[k * candidates.length + c]!;
    return s / m;
  });
}

/** Target probability (whatever the objective) with the path neurons' computed rows multiplied by `factor` (0 = remove, 2 = enhance). */
export async function editedProbability(ref: ForwardReference, image: Float32Array, target: number, path: number[], factor: number): Promise<number> {
  const scale = path.map((p) => {
    const s = new Float64Array(ref.ffn).fill(1);
    s[p] = factor;
    return s;
  });
  const { logits } = await ref.run(image, [{ rows: path.map(() => null), scale }]);
  const z = Array.from(logits);
  const mx = Math.max(...z);
  const e = z.map((v) => Math.exp(v - mx));
  return e[target]! / e.reduce((a, b) => a + b, 0);
}
