// The NeuronOracle trace-path's analysis runs on, backed by the generated gradient graph
// (NeuronGradientEngine in affine mode) on ONNX Runtime, split into runs of bounded size.
import * as os from 'node:os';
import type { LoadedModel } from '../onnx/model.js';
import type { ViTLayout } from '../vit/types.js';
import type { TokenChoice } from '../vit/tokens.js';
import type { CleanPass, EditQuery, EditResult, NeuronOracle } from '../analysis/oracle.js';
import { NeuronGradientEngine, type ForwardResult } from './gradientEngine.js';
import type { ExecutionProvider, ProviderChoice } from '../runtime/session.js';

/**
 * How the oracle spends CPU threads: `threads` > 1 (or 0 = every core) becomes that many sessions
 * with one intra-op thread each, run side by side on equal shares of every batch (at most 8, the
 * remaining threads going intra-op). On 2 shared cores, two single-threaded sessions ran the
 * vit-mnist gradient graph 1.7x faster than one, and faster than one session with 2 intra-op
 * threads, which also burned twice the CPU time spinning (bench/trace-path.ts). 1 = one session
 * in the calling thread.
 */
export function parallelPlan(threads: number | undefined, cores = os.availableParallelism()): { sessions: number; threads: number } {
  const want = threads && threads > 0 ? threads : Math.max(1, cores);
  const sessions = Math.min(8, want);
  return { sessions, threads: Math.max(1, Math.floor(want / sessions)) };
}

export interface OracleOptions {
  layers: number[];
  token: TokenChoice;
  objective: 'prob' | 'logit';
  provider: ProviderChoice;
  deviceId?: number;
  /** CPU threads (0 or undefined: every core), spent as in parallelPlan. */
  threads?: number;
  cacheDir?: string;
  notice?: (line: string) => void;
  /** Samples per ONNX Runtime run; default keeps the largest activation around 64M floats. */
  maxSamples?: number;
}

/**
 * Samples per oracle run. Each of the `sessions` sessions gets an equal share whose largest
 * activation ([share, tokens, max(ffn, tokens*heads, 3*width)]) stays near 2^19 floats (2 MiB, so
 * a small model's working set stays in cache: on vit-mnist the gradient graph ran at 0.23 ms/sample
 * with 80-160 samples per run, 0.24 at 320, 0.27 at 640 and at 10-20), but at least 8 samples;
 * the whole run's largest activation stays under 2^26 floats.
 */
export function defaultMaxSamples(layout: ViTLayout, sessions = 1): number {
  const f = layout.facts;
  const per = f.tokens * Math.max(f.ffnWidth, f.tokens * (f.heads ?? 1), f.width * 3);
  const share = Math.max(8, Math.min(1024, Math.floor(2 ** 19 / per)));
  return Math.max(1, Math.min(share * Math.max(1, sessions), Math.floor(2 ** 26 / per)));
}

export class OrtNeuronOracle implements NeuronOracle {
  readonly layers: number[];
  readonly ffn: number;
  readonly numClasses: number;
  readonly inputSize: number;
  readonly stats = { runs: 0, runMs: 0 };

  private constructor(
    private readonly engine: NeuronGradientEngine,
    layout: ViTLayout,
    private readonly maxSamples: number,
  ) {
    this.layers = [...engine.layers];
    this.ffn = engine.ffn;
    this.numClasses = engine.numClasses;
    this.inputSize = engine.imageSize;
    void layout;
  }

  static async create(loaded: LoadedModel, layout: ViTLayout, o: OracleOptions): Promise<OrtNeuronOracle> {
    const plan = parallelPlan(o.threads);
    const engine = await NeuronGradientEngine.create(loaded, layout, {
      layers: o.layers,
      token: o.token,
      objective: o.objective,
      mode: 'affine',
      provider: o.provider,
      deviceId: o.deviceId,
      ...plan,
      cacheDir: o.cacheDir,
      notice: o.notice,
    });
    const fb = engine.fixedBatch;
    let max = o.maxSamples ?? defaultMaxSamples(layout, engine.sessions);
    if (fb !== null) max = Math.max(fb, Math.floor(max / fb) * fb);
    return new OrtNeuronOracle(engine, layout, max);
  }

  get provider(): ExecutionProvider {
    return this.engine.provider;
  }

  async clean(input: Float32Array, n: number): Promise<CleanPass> {
    const t = performance.now();
    const r = await this.engine.clean(input, n);
    this.stats.runs++;
    this.stats.runMs += performance.now() - t;
    return { logits: r.logits, acts: this.layers.map((l) => r.activations[l]!) };
  }

  async evaluate(q: EditQuery): Promise<EditResult> {
    const F = this.ffn;
    const C = this.numClasses;
    const S = q.samples;
    const out: EditResult = { F: new Float32Array(S), logits: new Float32Array(S * C) };
    if (q.grads) out.grads = this.layers.map(() => new Float32Array(S * F));
    out.rows = this.layers.map(() => new Float32Array(S * F));
    for (let s0 = 0; s0 < S; s0 += this.maxSamples) {
      const n = Math.min(this.maxSamples, S - s0);
      const offsets: Record<number, Float32Array> = {};
      const scales: Record<number, Float32Array> = {};
      this.layers.forEach((l, li) => {
        offsets[l] = q.offset[li] ? q.offset[li]!.subarray(s0 * F, (s0 + n) * F) : new Float32Array(n * F);
        scales[l] = q.scale[li] ? q.scale[li]!.subarray(s0 * F, (s0 + n) * F) : new Float32Array(n * F).fill(1);
      });
      const t = performance.now();
      const images = q.input.subarray(s0 * this.inputSize, (s0 + n) * this.inputSize);
      const targets = Array.from(q.target.subarray(s0, s0 + n));
      // Without gradients the engine's forward-only graph does the work (no backward nodes).
      const r: ForwardResult & { grads?: Record<number, Float32Array> } = q.grads
        ? await this.engine.run(images, n, targets, offsets, scales)
        : await this.engine.forward(images, n, targets, offsets, scales);
      this.stats.runs++;
      this.stats.runMs += performance.now() - t;
      out.F.set(r.F, s0);
      out.logits.set(r.logits, s0 * C);
      const g = r.grads;
      if (out.grads && g) this.layers.forEach((l, li) => out.grads![li]!.set(g[l]!, s0 * F));
      this.layers.forEach((l, li) => out.rows![li]!.set(r.activations[l]!, s0 * F));
    }
    return out;
  }

  async release(): Promise<void> {
    await this.engine.release();
  }
}
