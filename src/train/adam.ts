// Adam (Kingma & Ba, with bias correction) and AdamW's decoupled weight decay, over Float32Array
// weights: the optimizer vitpath uses to train its own demo model in TypeScript.

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (AdamW): w -= lr * weightDecay * w, applied to `decay` weights only. */
  weightDecay: number;
}

export const DEFAULT_ADAM: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/**
 * One Adam update of `w` in place with gradient `g` and moment buffers `m`, `v` (updated in place).
 * `t` is the 1-based step count used for bias correction. Arithmetic in float64, stored as float32.
 */
export function adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number, h: AdamHyper, decay = false): void {
  if (g.length !== w.length || m.length !== w.length || v.length !== w.length) {
    throw new Error(`adamUpdate: length mismatch (w ${w.length}, g ${g.length}, m ${m.length}, v ${v.length})`);
  }
  if (!(t >= 1)) throw new Error(`adamUpdate: step count must be >= 1 (got ${t})`);
  const c1 = 1 - Math.pow(h.beta1, t);
  const c2 = 1 - Math.pow(h.beta2, t);
  const wd = decay ? h.lr * h.weightDecay : 0;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    const mi = h.beta1 * m[i]! + (1 - h.beta1) * gi;
    const vi = h.beta2 * v[i]! + (1 - h.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const mHat = mi / c1;
    const vHat = vi / c2;
    w[i] = w[i]! - wd * w[i]! - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

/** Adam state for a set of named weights (the moments and the step count). */
export class Adam {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private t = 0;

  constructor(
    readonly hyper: AdamHyper,
    /** Names of the weights that get weight decay (linear/conv matrices, typically). */
    readonly decayed: ReadonlySet<string> = new Set(),
  ) {}

  get steps(): number {
    return this.t;
  }

  /** Update every weight in `weights` that has a gradient, at learning rate `lr` (default hyper.lr). */
  step(weights: Record<string, Float32Array>, grads: Record<string, Float32Array>, lr = this.hyper.lr): void {
    this.t++;
    const h = { ...this.hyper, lr };
    for (const [name, w] of Object.entries(weights)) {
      const g = grads[name];
      if (!g) throw new Error(`Adam.step: no gradient for weight "${name}"`);
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        this.m.set(name, (m = new Float32Array(w.length)));
        this.v.set(name, (v = new Float32Array(w.length)));
      }
      adamUpdate(w, g, m, v, this.t, h, this.decayed.has(name));
    }
  }
}

/** Linear warm-up to `peak` over `warmup` steps, then cosine decay to `floor * peak` at `total`. */
export function warmupCosine(step: number, total: number, warmup: number, peak: number, floor = 0): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const p = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * p)));
}
