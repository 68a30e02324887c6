// The NeuronOracle trace-path's analysis runs on, backed by the generated gradient graph
// (NeuronGradientEngine in affine mode) on ONNX Runtime, split into runs of bounded size.
import * as os from 'node:os';
import type { LoadedModel } from '../onnx/model.js';
import type { ViTLayout } from '../vit/types.js';
import type { TokenChoice } from '../vit/tokens.js';
import { evaluateLayerAloneByEvaluate, type CleanPass, type EditQuery, type EditResult, type LayerAloneQuery, type LayerAloneResult, type NeuronOracle } from '../analysis/oracle.js';
import { NeuronGradientEngine, type ForwardResult } from './gradientEngine.js';
import type { ExecutionProvider, ProviderChoice } from '../runtime/session.js';
import { defaultMemoryBudget, estimateTrace, formatBytes, planMemory, weightBytes, type MemoryPlan } from './memoryPlan.js';

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
  /** Samples per ONNX Runtime run; default from the model size (defaultMaxSamples), then the memory plan. */
  maxSamples?: number;
  /**
   * Memory budget in bytes (--max-memory): sessions and samples per run sized so the
   * estimated peak fits, or a usage error when nothing does. Without it the default budget (60% of
   * the machine's memory) is planned for, and a model too big even for that runs at the smallest plan.
   */
  maxMemory?: number;
  /** Gradient graph with layer-alone joins where the model allows it (default true; see buildNeuronGradientGraph). */
  joined?: boolean;
}

/**
 * Samples per oracle run. Each of the `sessions` sessions gets an equal share whose largest
 * activation ([share, tokens, max(ffn, tokens*heads, 3*width)]) stays near 2^19 floats (2 MiB, so
 * a small model's working set stays in cache: on vit-mnist the gradient graph ran at 0.23 ms/sample
 * with 80-160 samples per run, 0.24 at 320, 0.27 at 640 and at 10-20), at least one sample. A
 * ViT-S/16-sized model gets one sample per session: its runs are compute-bound at any size (search
 * as fast with 2 samples per run as with 16), while each sample holds ~100 MB of activations.
 */
export function defaultMaxSamples(layout: ViTLayout, sessions = 1): number {
  const f = layout.facts;
  const per = f.tokens * Math.max(f.ffnWidth, f.tokens * (f.heads ?? 1), f.width * 3);
  const share = Math.max(1, Math.min(1024, Math.floor(2 ** 19 / per)));
  return Math.max(1, Math.min(share * Math.max(1, sessions), Math.floor(2 ** 26 / per)));
}

/**
 * Sessions, threads and samples per run for a budget: --max-memory (a usage
 * error when even the smallest plan's estimate exceeds it), or the default budget, where a model
 * too big for it gets the smallest plan and a notice rather than a refusal.
 */
export function memoryPlanFor(loaded: Pick<LoadedModel, 'proto'>, layout: ViTLayout, par: { sessions: number; threads: number }, o: Pick<OracleOptions, 'maxMemory' | 'notice' | 'maxSamples'>): MemoryPlan {
  const request = { budget: o.maxMemory ?? defaultMemoryBudget(), sessions: par.sessions, threads: par.threads, maxSamples: o.maxSamples ?? defaultMaxSamples(layout, par.sessions) };
  const facts = { ...layout.facts, heads: layout.facts.heads ?? null };
  const weights = weightBytes(loaded.proto);
  if (o.maxMemory !== undefined) {
    const p = planMemory(facts, weights, request);
    o.notice?.(`vitpath: memory plan for --max-memory ${formatBytes(p.budget)}: ${p.sessions} session${p.sessions === 1 ? '' : 's'} x ${p.threads} thread${p.threads === 1 ? '' : 's'}, ${p.maxSamples} sample${p.maxSamples === 1 ? '' : 's'} per run; estimated peak ${formatBytes(p.estimate)}.`);
    return p;
  }
  try {
    return planMemory(facts, weights, request);
  } catch {
    const p = { budget: request.budget, sessions: 1, threads: par.sessions * par.threads, maxSamples: 1 };
    const estimate = estimateTrace(facts, weights, p);
    o.notice?.(`vitpath: this model needs about ${formatBytes(estimate)} even with one session and one sample per run, more than the default budget ${formatBytes(request.budget)} (60% of memory); running that way. Set --max-memory to plan for another budget.`);
    return { ...p, estimate };
  }
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
    private readonly notice?: (line: string) => void,
  ) {
    this.layers = [...engine.layers];
    this.ffn = engine.ffn;
    this.numClasses = engine.numClasses;
    this.inputSize = engine.imageSize;
    void layout;
  }

  static async create(loaded: LoadedModel, layout: ViTLayout, o: OracleOptions): Promise<OrtNeuronOracle> {
    const par = parallelPlan(o.threads);
    const mem = memoryPlanFor(loaded, layout, par, o);
    const engine = await NeuronGradientEngine.create(loaded, layout, {
      layers: o.layers,
      token: o.token,
      objective: o.objective,
      mode: 'affine',
      provider: o.provider,
      deviceId: o.deviceId,
      sessions: mem.sessions,
      threads: mem.threads,
      cacheDir: o.cacheDir,
      notice: o.notice,
      joined: o.joined,
    });
    try {
      await engine.openAuxiliaryGraphs();
    } catch (e) {
      await engine.release();
      throw e;
    }
    const fb = engine.fixedBatch;
    let max = o.maxSamples ?? mem.maxSamples;
    if (fb !== null) max = Math.max(fb, Math.floor(max / fb) * fb);
    const oracle = new OrtNeuronOracle(engine, layout, max, o.notice);
    oracle.memory = { budget: mem.budget, estimate: Math.round(mem.estimate), sessions: engine.sessions, threads: mem.threads, samplesPerRun: max };
    return oracle;
  }

  /** The memory plan the oracle runs under (recorded in reports' runtime.memory). */
  memory?: { budget: number; estimate: number; sessions: number; threads: number; samplesPerRun: number };

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
    const S = q.samples;
    const offsets: Record<number, Float32Array> = {};
    const scales: Record<number, Float32Array> = {};
    this.layers.forEach((l, li) => {
      offsets[l] = q.offset[li] ? q.offset[li]!.subarray(0, S * F) : new Float32Array(S * F);
      scales[l] = q.scale[li] ? q.scale[li]!.subarray(0, S * F) : new Float32Array(S * F).fill(1);
    });
    const t = performance.now();
    const images = q.input.subarray(0, S * this.inputSize);
    const targets = Array.from(q.target.subarray(0, S));
    // Runs of at most maxSamples samples (the memory plan's), all queued at once: a session that
    // finishes takes the next run without waiting for the others. Without gradients the engine's
    // forward-only graph does the work (no backward nodes).
    const rows = q.rows === true;
    const r: ForwardResult & { grads?: Record<number, Float32Array> } = q.grads
      ? await this.engine.run(images, S, targets, offsets, scales, this.maxSamples, rows)
      : await this.engine.forward(images, S, targets, offsets, scales, this.maxSamples, rows);
    this.stats.runs += Math.ceil(S / this.maxSamples);
    this.stats.runMs += performance.now() - t;
    const out: EditResult = { F: r.F, logits: r.logits };
    if (rows) out.rows = this.layers.map((l) => r.activations[l]!);
    const g = r.grads;
    if (q.grads && g) out.grads = this.layers.map((l) => g[l]!);
    return out;
  }

  /** Present when the engine runs the joined graph (the model allows it): see NeuronOracle.evaluateLayerAlone. */
  get evaluateLayerAlone(): ((q: LayerAloneQuery) => Promise<LayerAloneResult>) | undefined {
    return this.engine.joined ? (q) => this.layerAlone(q) : undefined;
  }

  /** Set when a layer-alone run failed on this model: later queries take the whole-graph way. */
  private aloneFailed = false;

  private async layerAlone(q: LayerAloneQuery): Promise<LayerAloneResult> {
    if (!this.aloneFailed) {
      const t = performance.now();
      const groups = q.groups.map((g) => ({ block: this.layers[g.layer]!, image: g.image, scale: g.scale, offset: g.offset }));
      // Each run holds about as much work as one session's share of an evaluate() run.
      const units = Math.max(1, this.maxSamples / Math.max(1, this.engine.sessions));
      try {
        const r = await this.engine.runLayerAlone(q.input, q.images, q.target, groups, units);
        this.stats.runs++;
        this.stats.runMs += performance.now() - t;
        return r;
      } catch (e) {
        this.aloneFailed = true;
        this.notice?.(`vitpath: layer-alone gradient runs failed on this model (${(e as Error).message.split('\n')[0]}); running them on the whole graph instead (same results, slower).`);
      }
    }
    return evaluateLayerAloneByEvaluate(this, q);
  }

  async release(): Promise<void> {
    await this.engine.release();
  }
}
