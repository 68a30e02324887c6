// Neuron gradients on ONNX Runtime: builds (once per model hash and configuration) a graph with
// intervention inputs at the chosen blocks' token rows, the target-class objective and its reverse-
// mode gradient w.r.t. those inputs, and runs it; plus a clean pass giving logits and token rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { LoadedModel } from '../onnx/model.js';
import { encodeModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';
import type { ViTLayout } from '../vit/types.js';
import { interveneNeurons, exposeNeuronRows, checkLayers, defaultToken, resolveToken, batchDim, type InterventionMode, type TokenChoice } from '../onnx/rewrite/intervene.js';
import { selectOutputs } from '../onnx/rewrite/expose.js';
import { appendObjective, type ObjectiveKind } from '../onnx/autodiff/objective.js';
import { buildGradientGraph } from '../onnx/autodiff/backward.js';
import { probeFacts } from '../runtime/probe.js';
import { createSession, type ExecutionProvider, type Feed, type ModelSession, type ProviderChoice } from '../runtime/session.js';
import { writeFileAtomic } from '../report/atomic.js';
import { TOOL_VERSION } from '../version.js';
import { usageError, badInput } from '../errors.js';

export interface GradientEngineOptions {
  /** Blocks whose neuron rows get intervention inputs (default all). */
  layers?: number[];
  /** Token row: 'cls', 'mean' (patch mean, mean-pooled models) or an index; default by pooling. */
  token?: TokenChoice;
  /** F = softmax probability ('prob', default) or logit of the target class. */
  objective?: ObjectiveKind;
  /** 'override' (default): inputs replace the rows; 'scale': inputs multiply them; 'affine': row * scale + offset. */
  mode?: InterventionMode;
  provider?: ProviderChoice;
  threads?: number;
  /** Folder for encoded graphs, reused across runs (key includes the vitpath version). */
  cacheDir?: string;
  notice?: (line: string) => void;
}

export interface GradientResult {
  /** F per sample [batch]. */
  F: Float32Array;
  /** Logits [batch, classes] of the intervened model. */
  logits: Float32Array;
  /** Block -> dF/d(input of that block) [batch, ffn]. */
  grads: Record<number, Float32Array>;
  /** Block -> the row as computed before the intervention (given the interventions upstream) [batch, ffn]. */
  activations: Record<number, Float32Array>;
}

export interface CleanResult {
  /** Logits [batch, classes] of the unmodified model. */
  logits: Float32Array;
  /** Block -> neuron row at the token (or patch mean) [batch, ffn]. */
  activations: Record<number, Float32Array>;
}

/** What path analysis needs; NeuronGradientEngine implements it, tests may fake it. */
export interface NeuronGradientSource {
  readonly layers: readonly number[];
  readonly ffn: number;
  readonly numClasses: number;
  run(images: Float32Array, batch: number, targets: number[] | BigInt64Array, overrides: Record<number, Float32Array>): Promise<GradientResult>;
  clean(images: Float32Array, batch: number): Promise<CleanResult>;
}

/** An encoded graph plus the names the engine feeds and fetches. */
export interface BuiltGraph {
  bytes: Uint8Array;
  inputs: Record<number, string>;
  /** Affine mode: the scale inputs. */
  scaleInputs?: Record<number, string>;
  activations: Record<number, string>;
  grads: Record<number, string>;
  logits: string;
  perSample?: string;
  target?: string;
  /** Milliseconds spent building (rewrite + probe + backward + encode); 0 when taken from a cache. */
  buildMs: number;
  source: 'built' | 'memory' | 'disk';
}

interface GraphKey {
  kind: 'gradient' | 'clean';
  sha256: string;
  layers: number[];
  token: TokenChoice;
  mode: InterventionMode;
  objective: ObjectiveKind;
  neurons: string[];
  version: string;
}

const memory = new Map<string, Promise<BuiltGraph>>();

function keyHash(key: GraphKey): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32);
}

/** Forget every graph kept in memory (tests and long-lived hosts). */
export function clearGraphCache(): void {
  memory.clear();
}

type Meta = Omit<BuiltGraph, 'bytes' | 'buildMs' | 'source'>;

function readDisk(dir: string, key: GraphKey): BuiltGraph | undefined {
  const h = keyHash(key);
  const metaFile = path.join(dir, `vitpath-${key.kind}-${h}.json`);
  const onnxFile = path.join(dir, `vitpath-${key.kind}-${h}.onnx`);
  try {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { key: GraphKey; meta: Meta; bytes: number };
    if (JSON.stringify(meta.key) !== JSON.stringify(key)) return undefined;
    const bytes = new Uint8Array(fs.readFileSync(onnxFile));
    if (bytes.length !== meta.bytes) return undefined; // stale or partial pair: rebuild
    return { ...meta.meta, bytes, buildMs: 0, source: 'disk' };
  } catch {
    return undefined;
  }
}

function writeDisk(dir: string, key: GraphKey, g: BuiltGraph): void {
  const h = keyHash(key);
  const { bytes, buildMs: _b, source: _s, ...meta } = g;
  // Graph first, then the meta that vouches for it (its byte count guards against a mismatched pair).
  writeFileAtomic(path.join(dir, `vitpath-${key.kind}-${h}.onnx`), bytes);
  writeFileAtomic(path.join(dir, `vitpath-${key.kind}-${h}.json`), JSON.stringify({ key, meta, bytes: bytes.length }) + '\n');
}

async function cached(key: GraphKey, cacheDir: string | undefined, build: () => Promise<BuiltGraph>): Promise<BuiltGraph> {
  const k = JSON.stringify(key);
  const hit = memory.get(k);
  if (hit) return { ...(await hit), buildMs: 0, source: 'memory' };
  const p = (async () => {
    if (cacheDir) {
      const d = readDisk(cacheDir, key);
      if (d) return d;
    }
    const g = await build();
    if (cacheDir) {
      try {
        writeDisk(cacheDir, key, g);
      } catch (e) {
        throw usageError(`cannot write the graph cache in ${cacheDir} (${(e as Error).message}); choose a writable --cache-dir or leave it out.`);
      }
    }
    return g;
  })();
  memory.set(k, p);
  try {
    return await p;
  } catch (e) {
    memory.delete(k);
    throw e;
  }
}

interface Resolved {
  layers: number[];
  token: TokenChoice;
  mode: InterventionMode;
  objective: ObjectiveKind;
}

function resolveOptions(layout: ViTLayout, opts: GradientEngineOptions): Resolved {
  const token = opts.token ?? defaultToken(layout);
  resolveToken(layout, token); // validates
  return { layers: checkLayers(layout, opts.layers), token, mode: opts.mode ?? 'override', objective: opts.objective ?? 'prob' };
}

function keyFor(kind: GraphKey['kind'], loaded: LoadedModel, layout: ViTLayout, r: Resolved): GraphKey {
  return {
    kind,
    sha256: loaded.sha256,
    layers: r.layers,
    token: r.token,
    mode: kind === 'clean' ? 'override' : r.mode,
    objective: kind === 'clean' ? 'prob' : r.objective,
    neurons: r.layers.map((l) => `${layout.blocks[l]!.neuron}:${layout.blocks[l]!.neuronLayout}`),
    version: TOOL_VERSION,
  };
}

/** Build the intervention + objective + gradient graph (no caching). */
export async function buildNeuronGradientGraph(model: ModelProto, layout: ViTLayout, r: Resolved, threads?: number): Promise<BuiltGraph> {
  const t0 = performance.now();
  const iv = interveneNeurons(model, layout, { layers: r.layers, token: r.token, mode: r.mode, exposeActivations: true });
  const obj = appendObjective(iv.model, { logits: layout.logits, kind: r.objective, batchDim: batchDim(layout) });
  const facts = await probeFacts(obj.model, { provider: 'cpu', threads });
  const wrt = r.layers.map((l) => iv.inputs[l]!);
  const gradName = (n: string) => `grad_${n}`;
  const g = buildGradientGraph(obj.model, { loss: obj.loss, wrt, facts, gradName });
  const grads: Record<number, string> = {};
  for (const l of r.layers) grads[l] = g.gradOutputs[iv.inputs[l]!]!;
  const outputs = [layout.logits, obj.perSample, ...r.layers.map((l) => iv.activations[l]!), ...r.layers.map((l) => grads[l]!)];
  const bytes = encodeModel(selectOutputs(g.model, outputs));
  return {
    bytes,
    inputs: iv.inputs,
    scaleInputs: iv.scaleInputs,
    activations: iv.activations,
    grads,
    logits: layout.logits,
    perSample: obj.perSample,
    target: obj.target,
    buildMs: performance.now() - t0,
    source: 'built',
  };
}

/** Build the clean graph: the model with the token rows exposed (no caching). */
export function buildCleanGraph(model: ModelProto, layout: ViTLayout, r: Resolved): BuiltGraph {
  const t0 = performance.now();
  const ex = exposeNeuronRows(model, layout, { layers: r.layers, token: r.token });
  const bytes = encodeModel(selectOutputs(ex.model, [layout.logits, ...r.layers.map((l) => ex.activations[l]!)]));
  return { bytes, inputs: {}, activations: ex.activations, grads: {}, logits: layout.logits, buildMs: performance.now() - t0, source: 'built' };
}

/** Concatenate per-chunk results along the batch axis and drop padding. */
function concatRows(parts: Float32Array[], rowLen: number, rows: number): Float32Array {
  const out = new Float32Array(rows * rowLen);
  let off = 0;
  for (const p of parts) {
    const n = Math.min(p.length, out.length - off);
    out.set(p.subarray(0, n), off);
    off += n;
  }
  return out;
}

export class NeuronGradientEngine implements NeuronGradientSource {
  private cleanSession?: Promise<{ session: ModelSession; graph: BuiltGraph }>;
  /** Build time and where the gradient graph came from. */
  readonly timings: { graphMs: number; sessionMs: number; source: BuiltGraph['source'] };

  private constructor(
    private readonly loaded: LoadedModel,
    private readonly layout: ViTLayout,
    private readonly opts: GradientEngineOptions,
    private readonly r: Resolved,
    private readonly graph: BuiltGraph,
    private readonly session: ModelSession,
    sessionMs: number,
  ) {
    this.timings = { graphMs: graph.buildMs, sessionMs, source: graph.source };
  }

  static async create(loaded: LoadedModel, layout: ViTLayout, opts: GradientEngineOptions = {}): Promise<NeuronGradientEngine> {
    const r = resolveOptions(layout, opts);
    const graph = await cached(keyFor('gradient', loaded, layout, r), opts.cacheDir, () => buildNeuronGradientGraph(loaded.proto, layout, r, opts.threads));
    const t0 = performance.now();
    const session = await createSession(graph.bytes, { provider: opts.provider, threads: opts.threads, notice: opts.notice });
    return new NeuronGradientEngine(loaded, layout, opts, r, graph, session, performance.now() - t0);
  }

  get layers(): readonly number[] {
    return this.r.layers;
  }
  get token(): TokenChoice {
    return this.r.token;
  }
  get ffn(): number {
    return this.layout.facts.ffnWidth;
  }
  get numClasses(): number {
    return this.layout.facts.numClasses;
  }
  get provider(): ExecutionProvider {
    return this.session.provider;
  }
  /** The batch size the model requires, or null when any batch works. */
  get fixedBatch(): number | null {
    const d = this.layout.inputDims[0];
    return typeof d === 'number' && d > 0 ? d : null;
  }
  /** Per-image input size (C*H*W). */
  get imageSize(): number {
    const [, c, h, w] = this.layout.inputDims;
    const nums = [c, h, w].map((x) => (typeof x === 'number' ? x : NaN));
    const fromFacts = this.layout.facts.channels * this.layout.facts.imageSize[0] * this.layout.facts.imageSize[1];
    return nums.every((x) => x > 0) ? nums[0]! * nums[1]! * nums[2]! : fromFacts;
  }

  private imageDims(batch: number): number[] {
    return [batch, this.layout.facts.channels, this.layout.facts.imageSize[0], this.layout.facts.imageSize[1]];
  }

  private checkImages(images: Float32Array, batch: number): void {
    if (!Number.isInteger(batch) || batch < 1) throw usageError(`batch must be a positive integer (got ${batch})`);
    if (images.length !== batch * this.imageSize) {
      throw badInput(`images hold ${images.length} values; a batch of ${batch} needs ${batch * this.imageSize} ([${this.imageDims(batch).join(',')}]).`);
    }
  }

  /** Run `chunk(start, n, padded)` over the batch in pieces the model accepts. */
  private async chunked<T>(batch: number, f: (start: number, n: number, size: number) => Promise<T>): Promise<T[]> {
    const fb = this.fixedBatch;
    if (fb === null) return [await f(0, batch, batch)];
    const out: T[] = [];
    for (let s = 0; s < batch; s += fb) out.push(await f(s, Math.min(fb, batch - s), fb));
    return out;
  }

  /**
   * Run the gradient graph. `overrides` feed the intervention inputs (the offsets in affine mode);
   * `scales` feed the affine scale inputs (required in affine mode, ignored otherwise).
   */
  async run(
    images: Float32Array,
    batch: number,
    targets: number[] | BigInt64Array,
    overrides: Record<number, Float32Array>,
    scales?: Record<number, Float32Array>,
  ): Promise<GradientResult> {
    this.checkImages(images, batch);
    const F = this.ffn;
    const tg = targets instanceof BigInt64Array ? targets : BigInt64Array.from(targets.map((t) => BigInt(t)));
    if (tg.length !== batch) throw usageError(`got ${tg.length} targets for a batch of ${batch}`);
    for (const t of tg) if (t < 0n || t >= BigInt(this.numClasses)) throw usageError(`target class ${t} is outside 0..${this.numClasses - 1}`);
    for (const l of this.r.layers) {
      const o = overrides[l];
      if (!o || o.length !== batch * F) throw usageError(`override for block ${l} must hold batch x ffn = ${batch * F} values (got ${o?.length ?? 'none'})`);
      if (this.r.mode === 'affine') {
        const sc = scales?.[l];
        if (!sc || sc.length !== batch * F) throw usageError(`scale for block ${l} must hold batch x ffn = ${batch * F} values (got ${sc?.length ?? 'none'})`);
      }
    }
    const size = this.imageSize;
    const g = this.graph;
    const fetch = [g.logits, g.perSample!, ...this.r.layers.map((l) => g.activations[l]!), ...this.r.layers.map((l) => g.grads[l]!)];
    const parts = await this.chunked(batch, async (s, n, m) => {
      const pad = <A extends Float32Array | BigInt64Array>(a: A, per: number): A => {
        if (s === 0 && a.length === m * per) return a;
        const out = new (a.constructor as new (k: number) => A)(m * per);
        out.set(a.subarray(s * per, (s + n) * per) as never);
        return out;
      };
      const feeds: Record<string, Feed> = {
        [this.layout.input]: { data: pad(images, size), dims: this.imageDims(m) },
        [g.target!]: { data: pad(tg, 1), dims: [m] },
      };
      for (const l of this.r.layers) {
        feeds[g.inputs[l]!] = { data: pad(overrides[l]!, F), dims: [m, F] };
        if (this.r.mode === 'affine') feeds[g.scaleInputs![l]!] = { data: pad(scales![l]!, F), dims: [m, F] };
      }
      return this.session.run(feeds, fetch);
    });
    const get = (name: string, per: number) => concatRows(parts.map((p) => p[name]!.data as Float32Array), per, batch);
    const grads: Record<number, Float32Array> = {};
    const activations: Record<number, Float32Array> = {};
    for (const l of this.r.layers) {
      grads[l] = get(g.grads[l]!, F);
      activations[l] = get(g.activations[l]!, F);
    }
    return { F: get(g.perSample!, 1), logits: get(g.logits, this.numClasses), grads, activations };
  }

  /** The unmodified model: logits and the token rows of the engine's layers. */
  async clean(images: Float32Array, batch: number): Promise<CleanResult> {
    this.checkImages(images, batch);
    if (!this.cleanSession) {
      this.cleanSession = (async () => {
        const cg = await cached(keyFor('clean', this.loaded, this.layout, this.r), this.opts.cacheDir, async () => buildCleanGraph(this.loaded.proto, this.layout, this.r));
        const session = await createSession(cg.bytes, { provider: this.opts.provider, threads: this.opts.threads, notice: this.opts.notice });
        return { session, graph: cg };
      })();
    }
    const { session, graph } = await this.cleanSession;
    const acts = this.r.layers.map((l) => graph.activations[l]!);
    const size = this.imageSize;
    const parts = await this.chunked(batch, async (s, n, m) => {
      const img = s === 0 && images.length === m * size ? images : (() => {
        const a = new Float32Array(m * size);
        a.set(images.subarray(s * size, (s + n) * size));
        return a;
      })();
      return session.run({ [this.layout.input]: { data: img, dims: this.imageDims(m) } }, [this.layout.logits, ...acts]);
    });
    const activations: Record<number, Float32Array> = {};
    this.r.layers.forEach((l, i) => (activations[l] = concatRows(parts.map((p) => p[acts[i]!]!.data as Float32Array), this.ffn, batch)));
    return { logits: concatRows(parts.map((p) => p[this.layout.logits]!.data as Float32Array), this.numClasses, batch), activations };
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.cleanSession) await (await this.cleanSession).session.release();
  }
}

/** Softmax probability of each sample's target class from logits [batch, classes]. */
export function targetProbabilities(logits: Float32Array, classes: number, targets: ArrayLike<number | bigint>): Float64Array {
  const batch = logits.length / classes;
  const out = new Float64Array(batch);
  for (let b = 0; b < batch; b++) {
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, logits[b * classes + c]!);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[b * classes + c]! - mx);
    out[b] = Math.exp(logits[b * classes + Number(targets[b])]! - mx) / s;
  }
  return out;
}
