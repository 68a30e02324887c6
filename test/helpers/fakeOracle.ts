// A closed-form NeuronOracle for testing trace-path's analysis: rows are linear in the input,
// row_l = W_l x, edited rows R_l = row_l * scale + offset, F = softmax(sum_l V_l R_l + c)[target].
// Its gradient dF/dR_l = V_l^T (p ⊙ (e_t - p)) * ... is computed exactly in float64.
import { mulberry32 } from '../../src/random.js';
import type { CleanPass, EditQuery, EditResult, NeuronOracle } from '../../src/analysis/oracle.js';
import type { ImageContext } from '../../src/analysis/pathSearch.js';

export class FakeOracle implements NeuronOracle {
  readonly layers: number[];
  constructor(
    readonly ffn: number,
    readonly numClasses: number,
    readonly inputSize: number,
    /** W[l]: [ffn, inputSize] */
    readonly W: Float64Array[],
    /** V[l]: [classes, ffn] */
    readonly V: Float64Array[],
    readonly c: Float64Array,
  ) {
    this.layers = W.map((_, l) => l);
  }
  calls = 0;

  rows(x: Float32Array | Float64Array, off = 0): Float64Array[] {
    return this.W.map((W) => {
      const r = new Float64Array(this.ffn);
      for (let j = 0; j < this.ffn; j++) {
        let s = 0;
        for (let i = 0; i < this.inputSize; i++) s += W[j * this.inputSize + i]! * x[off + i]!;
        r[j] = s;
      }
      return r;
    });
  }

  /** Logits and probabilities for given edited rows. */
  head(R: Float64Array[]): { logits: Float64Array; p: Float64Array } {
    const C = this.numClasses;
    const z = Float64Array.from(this.c);
    R.forEach((r, l) => {
      for (let k = 0; k < C; k++) for (let j = 0; j < this.ffn; j++) z[k]! += this.V[l]![k * this.ffn + j]! * r[j]!;
    });
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    return { logits: z, p: e.map((v) => v / s) };
  }

  async clean(input: Float32Array, n: number): Promise<CleanPass> {
    const logits = new Float32Array(n * this.numClasses);
    const acts = this.layers.map(() => new Float32Array(n * this.ffn));
    for (let i = 0; i < n; i++) {
      const r = this.rows(input, i * this.inputSize);
      r.forEach((row, l) => acts[l]!.set(row, i * this.ffn));
      logits.set(this.head(r).logits, i * this.numClasses);
    }
    return { logits, acts };
  }

  async evaluate(q: EditQuery): Promise<EditResult> {
    this.calls++;
    const F = this.ffn;
    const C = this.numClasses;
    const out: EditResult = { F: new Float32Array(q.samples), logits: new Float32Array(q.samples * C) };
    if (q.grads) out.grads = this.layers.map(() => new Float32Array(q.samples * F));
    out.rows = this.layers.map(() => new Float32Array(q.samples * F));
    for (let s = 0; s < q.samples; s++) {
      const rows = this.rows(q.input, s * this.inputSize);
      rows.forEach((r, l) => out.rows![l]!.set(r, s * F));
      const R = rows.map((row, l) => {
        const r = new Float64Array(F);
        for (let j = 0; j < F; j++) r[j] = row[j]! * (q.scale[l] ? q.scale[l]![s * F + j]! : 1) + (q.offset[l] ? q.offset[l]![s * F + j]! : 0);
        return r;
      });
      const { logits, p } = this.head(R);
      const t = q.target[s]!;
      out.F[s] = p[t]!;
      out.logits.set(logits, s * C);
      if (out.grads) {
        // dp_t/dz_k = p_t (δ_tk − p_k); dF/dR_l[j] = Σ_k V_l[k,j] dp_t/dz_k
        const dz = new Float64Array(C);
        for (let k = 0; k < C; k++) dz[k] = p[t]! * ((k === t ? 1 : 0) - p[k]!);
        this.layers.forEach((_, l) => {
          for (let j = 0; j < F; j++) {
            let g = 0;
            for (let k = 0; k < C; k++) g += this.V[l]![k * F + j]! * dz[k]!;
            out.grads![l]![s * F + j] = g;
          }
        });
      }
    }
    return out;
  }
}

export function randomFake(seed: number, L = 3, F = 6, C = 4, D = 5): FakeOracle {
  const r = mulberry32(seed);
  const rnd = () => r() - 0.5;
  const W = Array.from({ length: L }, () => Float64Array.from({ length: F * D }, rnd));
  const V = Array.from({ length: L }, () => Float64Array.from({ length: C * F }, () => 2 * rnd()));
  return new FakeOracle(F, C, D, W, V, Float64Array.from({ length: C }, rnd));
}

/** Image contexts for `n` inputs x ([n, inputSize]): clean rows, the predicted class as target, F clean. */
export async function fakeContexts(o: FakeOracle, x: Float32Array, n: number): Promise<ImageContext[]> {
  const clean = await o.clean(x, n);
  return Array.from({ length: n }, (_, i) => {
    const input = x.slice(i * o.inputSize, (i + 1) * o.inputSize);
    const acts = clean.acts.map((a) => a.slice(i * o.ffn, (i + 1) * o.ffn));
    const logits = Array.from(clean.logits.subarray(i * o.numClasses, (i + 1) * o.numClasses));
    const target = logits.indexOf(Math.max(...logits));
    return { input, acts, target, fClean: o.head(o.rows(input)).p[target]! };
  });
}
