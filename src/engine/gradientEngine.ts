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
import { interveneNeurons, exposeNeuronRows, type InterventionMode } from '../onnx/rewrite/intervene.js';
import { checkLayers, defaultToken, resolveToken, batchDim, type TokenChoice } from '../vit/tokens.js';
import { selectOutputs } from '../onnx/rewrite/expose.js';
import { shareImageRows } from '../onnx/rewrite/imageRows.js';
import { sliceLastBlockRow } from '../onnx/rewrite/lastRow.js';
import { appendObjective, type ObjectiveKind } from '../onnx/autodiff/objective.js';
import { buildGradientGraph } from '../onnx/autodiff/backward.js';
import { probeFacts } from '../runtime/probe.js';
import type { ExecutionProvider, Feed, ProviderChoice } from '../runtime/session.js';
import { SessionPool, splitRows } from '../runtime/sessionPool.js';
import { writeFileAtomic } from '../fs/atomic.js';
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
  /** GPU to run on (CUDA device index; default 0). */
  deviceId?: number;
  /** Intra-op threads of each session. */
  threads?: number;
  /**
   * Sessions per graph, run side by side in worker threads on the CPU (default 1: one in-thread
   * session). Every batch is split into equal contiguous pieces, one per session.
   */
  sessions?: number;
  /** Folder for encoded graphs, reused across runs (key includes the vitpath version). */
  cacheDir?: string;
  /**
   * Gradient and forward graphs: run the last block's MLP (and what follows up to the class-token
   * pooling) on the class-token row alone (sliceLastBlockRow) when the token is the class token and
   * the ops allow it. Default true; false keeps the full graph (comparisons, benchmarks).
   */
  lastRowOnly?: boolean;
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
  /**
   * When set, the graph takes the distinct images (image input batch = image count) and this
   * int64 [samples] input naming each sample's image row; the per-image part runs once per image.
   */
  imageIndex?: string;
  /** Milliseconds spent building (rewrite + probe + backward + encode); 0 when taken from a cache. */
  buildMs: number;
  source: 'built' | 'memory' | 'disk';
}

interface GraphKey {
  kind: 'gradient' | 'forward' | 'clean';
  sha256: string;
  layers: number[];
  token: TokenChoice;
  mode: InterventionMode;
  objective: ObjectiveKind;
  neurons: string[];
  version: string;
  /** Graph revision within a version: 2 = per-image part shared between samples (gradient graph). */
  rev: number;
  /** Whether the last block runs on the class-token row alone (see sliceLastBlockRow). */
  lastRow: boolean;
  /** The logits tensor the objective reads (a distilled model's head choice changes it). */
  logits: string;
  /** The model as read ('raw') or vitpath's prepared form of it (LoadedModel.prepared). */
  prepared: string;
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
  lastRow: boolean;
}

function resolveOptions(layout: ViTLayout, opts: GradientEngineOptions): Resolved {
  const token = opts.token ?? defaultToken(layout);
  resolveToken(layout, token); // validates
  const row = resolveToken(layout, token);
  const lastRow = opts.lastRowOnly !== false && row.kind === 'row' && layout.classToken?.row === row.row && layout.facts.pooling === 'cls';
  return { layers: checkLayers(layout, opts.layers), token, mode: opts.mode ?? 'override', objective: opts.objective ?? 'prob', lastRow };
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
    rev: kind === 'gradient' ? 2 : 1,
    lastRow: kind !== 'clean' && r.lastRow,
    logits: layout.logits,
    prepared: loaded.prepared ?? 'raw',
  };
}

/** The intervened model, with the last block sliced to the class-token row when r.lastRow and it applies. */
function intervened(model: ModelProto, layout: ViTLayout, r: Resolved) {
  const sl = r.lastRow ? sliceLastBlockRow(model, layout) : null;
  return interveneNeurons(sl?.model ?? model, layout, { layers: r.layers, token: r.token, mode: r.mode, exposeActivations: true, oneRow: sl ? [sl.block] : [] });
}

/** Build the intervention + objective + gradient graph (no caching). */
export async function buildNeuronGradientGraph(model: ModelProto, layout: ViTLayout, r: Resolved, threads?: number): Promise<BuiltGraph> {
  const t0 = performance.now();
  const iv = intervened(model, layout, r);
  const obj = appendObjective(iv.model, { logits: layout.logits, kind: r.objective, batchDim: batchDim(layout) });
  const batchAxes = new Map<string, number>();
  const facts = await probeFacts(obj.model, { provider: 'cpu', threads, batchAxes, batches: [1, 2] });
  const wrt = r.layers.map((l) => iv.inputs[l]!);
  const gradName = (n: string) => `grad_${n}`;
  const g = buildGradientGraph(obj.model, { loss: obj.loss, wrt, facts, gradName });
  const grads: Record<number, string> = {};
  for (const l of r.layers) grads[l] = g.gradOutputs[iv.inputs[l]!]!;
  const outputs = [layout.logits, obj.perSample, ...r.layers.map((l) => iv.activations[l]!), ...r.layers.map((l) => grads[l]!)];
  let out = selectOutputs(g.model, outputs);
  // Everything upstream of the first intervened row depends on the image alone: run it once per
  // image (trace-path feeds m samples per image). Not for a fixed batch (nothing to share).
  let imageIndex: string | undefined;
  const perSample = [...Object.values(iv.inputs), ...Object.values(iv.scaleInputs ?? {}), obj.target];
  const shared = typeof layout.inputDims[0] === 'number' && layout.inputDims[0] > 0 ? null : shareImageRows(out, { image: layout.input, perSample, batchAxis: (t) => batchAxes.get(t) });
  if (shared) {
    out = shared.model;
    imageIndex = shared.index;
  }
  const bytes = encodeModel(out);
  return {
    bytes,
    inputs: iv.inputs,
    scaleInputs: iv.scaleInputs,
    activations: iv.activations,
    grads,
    logits: layout.logits,
    perSample: obj.perSample,
    target: obj.target,
    imageIndex,
    buildMs: performance.now() - t0,
    source: 'built',
  };
}

/** Build the forward-only graph: intervention + objective, no backward (no caching, no probe). */
export function buildForwardGraph(model: ModelProto, layout: ViTLayout, r: Resolved): BuiltGraph {
  const t0 = performance.now();
  const iv = intervened(model, layout, r);
  const obj = appendObjective(iv.model, { logits: layout.logits, kind: r.objective, batchDim: batchDim(layout) });
  const outputs = [layout.logits, obj.perSample, ...r.layers.map((l) => iv.activations[l]!)];
  const bytes = encodeModel(selectOutputs(obj.model, outputs));
  return {
    bytes,
    inputs: iv.inputs,
    scaleInputs: iv.scaleInputs,
    activations: iv.activations,
    grads: {},
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

function openPool(bytes: Uint8Array, opts: GradientEngineOptions, worker = false): Promise<SessionPool> {
  // Memory pattern off: it held 1.2 GB more on a ViT-S/16-sized gradient graph at the same speed.
  return SessionPool.open(bytes, { provider: opts.provider, deviceId: opts.deviceId, threads: opts.threads, notice: opts.notice, sessions: opts.sessions, memoryPattern: false, worker });
}

/**
 * Rows [start, start+n) of a [batch, size] array with consecutive repeats collapsed: the distinct
 * rows in order and, per row, the index of its distinct row (bitwise comparison).
 */
export function distinctRows(a: Float32Array, size: number, start: number, n: number): { rows: Float32Array; count: number; index: BigInt64Array } {
  const index = new BigInt64Array(n);
  const firsts: number[] = [];
  const bits = new Int32Array(a.buffer, a.byteOffset, a.length); // bitwise: -0 and NaN payloads count as different
  let prev = -1;
  for (let r = 0; r < n; r++) {
    const at = (start + r) * size;
    let same = prev >= 0;
    if (same) {
      const p = (start + prev) * size;
      for (let j = 0; j < size; j++) {
        if (bits[at + j] !== bits[p + j]) {
          same = false;
          break;
        }
      }
    }
    if (!same) {
      firsts.push(r);
      prev = r;
    }
    index[r] = BigInt(firsts.length - 1);
  }
  const rows = new Float32Array(firsts.length * size);
  firsts.forEach((r, k) => rows.set(a.subarray((start + r) * size, (start + r + 1) * size), k * size));
  return { rows, count: firsts.length, index };
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

/** Rows [start, start+n) of a [batch, per] array, zero-padded to `size` rows (no copy when it already fits). */
function rowsOf<A extends Float32Array | BigInt64Array>(a: A, per: number, start: number, n: number, size: number): A {
  if (start === 0 && a.length === size * per) return a;
  const out = new (a.constructor as new (k: number) => A)(size * per);
  out.set(a.subarray(start * per, (start + n) * per) as never);
  return out;
}

/** Shared by the engines: layout facts, input checks, and runs split into the batch the model takes. */
abstract class LayoutRunner {
  protected constructor(
    protected readonly loaded: LoadedModel,
    protected readonly layout: ViTLayout,
    protected readonly opts: GradientEngineOptions,
    protected readonly r: Resolved,
  ) {}

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
  /** The batch size the model requires, or null when any batch works. */
  get fixedBatch(): number | null {
    const d = this.layout.inputDims[0];
    return typeof d === 'number' && d > 0 ? d : null;
  }
  /** Per-image input size (C*H*W). */
  get imageSize(): number {
    const f = this.layout.facts;
    return f.channels * f.imageSize[0] * f.imageSize[1];
  }

  protected imageDims(batch: number): number[] {
    return [batch, this.layout.facts.channels, this.layout.facts.imageSize[0], this.layout.facts.imageSize[1]];
  }

  protected checkImages(images: Float32Array, batch: number): void {
    if (!Number.isInteger(batch) || batch < 1) throw usageError(`batch must be a positive integer (got ${batch})`);
    if (images.length !== batch * this.imageSize) {
      throw badInput(`images hold ${images.length} values; a batch of ${batch} needs ${batch * this.imageSize} ([${this.imageDims(batch).join(',')}]).`);
    }
  }

  protected async open(bytes: Uint8Array): Promise<SessionPool> {
    return openPool(bytes, this.opts);
  }

  /**
   * One session for the clean and forward-only graphs, with every thread the gradient sessions
   * have together (in a worker when they run in workers). Those graphs do a few forward samples
   * per image beside the search's hundreds of gradient samples, and each extra session holds its
   * own copy of the weights: on a ViT-B/16-sized model the second forward session took ~1.4 GB.
   */
  protected async openAuxiliary(bytes: Uint8Array): Promise<SessionPool> {
    const k = Math.max(1, Math.floor(this.opts.sessions ?? 1));
    if (k === 1) return openPool(bytes, this.opts);
    const threads = this.opts.threads && this.opts.threads > 0 ? this.opts.threads * k : undefined;
    return openPool(bytes, { ...this.opts, sessions: 1, threads }, true);
  }

  /**
   * Run the pool over the batch in pieces the model accepts (padded with zeros to a fixed batch;
   * otherwise one equal piece per session) and return each fetched output concatenated over the
   * batch, padding dropped.
   */
  protected async runRows(
    pool: SessionPool,
    batch: number,
    feeds: (start: number, n: number, size: number) => Record<string, Feed>,
    fetch: { name: string; per: number }[],
  ): Promise<Record<string, Float32Array>> {
    const fb = this.fixedBatch;
    const pieces: Array<[number, number]> = [];
    if (fb !== null) for (let s = 0; s < batch; s += fb) pieces.push([s, Math.min(fb, batch - s)]);
    else pieces.push(...splitRows(batch, pool.size));
    const outputs = fetch.map((f) => f.name);
    const results = await pool.runAll(pieces.length, (j) => ({ feeds: feeds(pieces[j]![0], pieces[j]![1], fb ?? pieces[j]![1]), outputs }));
    const parts = results.map((res) => {
      const got: Record<string, Float32Array> = {};
      for (const f of fetch) got[f.name] = res[f.name]!.data as Float32Array;
      return got;
    });
    const out: Record<string, Float32Array> = {};
    for (const f of fetch) out[f.name] = concatRows(parts.map((p) => p[f.name]!), f.per, batch);
    return out;
  }

  protected async runClean(session: SessionPool, graph: BuiltGraph, images: Float32Array, batch: number): Promise<CleanResult> {
    this.checkImages(images, batch);
    const size = this.imageSize;
    const F = this.ffn;
    const out = await this.runRows(
      session,
      batch,
      (s, n, m) => ({ [this.layout.input]: { data: rowsOf(images, size, s, n, m), dims: this.imageDims(m) } }),
      [{ name: graph.logits, per: this.numClasses }, ...this.r.layers.map((l) => ({ name: graph.activations[l]!, per: F }))],
    );
    const activations: Record<number, Float32Array> = {};
    for (const l of this.r.layers) activations[l] = out[graph.activations[l]!]!;
    return { logits: out[graph.logits]!, activations };
  }
}

/**
 * The clean pass alone: the unmodified model with each chosen block's token row (or patch mean)
 * exposed. No probe and no backward graph, so it is cheap to create.
 */
export class CleanNeuronEngine extends LayoutRunner {
  private constructor(loaded: LoadedModel, layout: ViTLayout, opts: GradientEngineOptions, r: Resolved, private readonly graph: BuiltGraph, private readonly session: SessionPool) {
    super(loaded, layout, opts, r);
  }

  static async create(loaded: LoadedModel, layout: ViTLayout, opts: Omit<GradientEngineOptions, 'mode' | 'objective'> = {}): Promise<CleanNeuronEngine> {
    const r = resolveOptions(layout, opts);
    const graph = await cached(keyFor('clean', loaded, layout, r), opts.cacheDir, async () => buildCleanGraph(loaded.proto, layout, r));
    const e = new CleanNeuronEngine(loaded, layout, opts, r, graph, await openPool(graph.bytes, opts));
    return e;
  }

  get provider(): ExecutionProvider {
    return this.session.provider;
  }

  clean(images: Float32Array, batch: number): Promise<CleanResult> {
    return this.runClean(this.session, this.graph, images, batch);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** F, logits and pre-intervention rows without gradients (NeuronGradientEngine.forward). */
export type ForwardResult = Omit<GradientResult, 'grads'>;

export class NeuronGradientEngine extends LayoutRunner implements NeuronGradientSource {
  private readonly aux = new Map<'clean' | 'forward', Promise<{ session: SessionPool; graph: BuiltGraph }>>();
  /** Build time and where the gradient graph came from. */
  readonly timings: { graphMs: number; sessionMs: number; source: BuiltGraph['source'] };

  private constructor(
    loaded: LoadedModel,
    layout: ViTLayout,
    opts: GradientEngineOptions,
    r: Resolved,
    private readonly graph: BuiltGraph,
    private readonly session: SessionPool,
    sessionMs: number,
  ) {
    super(loaded, layout, opts, r);
    this.timings = { graphMs: graph.buildMs, sessionMs, source: graph.source };
  }

  static async create(loaded: LoadedModel, layout: ViTLayout, opts: GradientEngineOptions = {}): Promise<NeuronGradientEngine> {
    const r = resolveOptions(layout, opts);
    const graph = await cached(keyFor('gradient', loaded, layout, r), opts.cacheDir, () => buildNeuronGradientGraph(loaded.proto, layout, r, opts.threads));
    const t0 = performance.now();
    const session = await openPool(graph.bytes, opts);
    return new NeuronGradientEngine(loaded, layout, opts, r, graph, session, performance.now() - t0);
  }

  get mode(): InterventionMode {
    return this.r.mode;
  }
  /** Whether the gradient graph runs its per-image part once per distinct image (see shareImageRows). */
  get sharesImageRows(): boolean {
    return this.graph.imageIndex !== undefined;
  }
  /** Sessions the gradient graph runs on side by side (1 unless options.sessions asked for more on the CPU). */
  get sessions(): number {
    return this.session.size;
  }
  get provider(): ExecutionProvider {
    return this.session.provider;
  }

  private checkEdits(batch: number, targets: number[] | BigInt64Array, overrides: Record<number, Float32Array>, scales?: Record<number, Float32Array>): BigInt64Array {
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
    return tg;
  }

  private editFeeds(g: BuiltGraph, images: Float32Array, tg: BigInt64Array, overrides: Record<number, Float32Array>, scales: Record<number, Float32Array> | undefined) {
    const size = this.imageSize;
    const F = this.ffn;
    return (s: number, n: number, m: number): Record<string, Feed> => {
      const feeds: Record<string, Feed> = { [g.target!]: { data: rowsOf(tg, 1, s, n, m), dims: [m] } };
      if (g.imageIndex && m === n) {
        const d = distinctRows(images, size, s, n);
        feeds[this.layout.input] = { data: d.rows, dims: this.imageDims(d.count) };
        feeds[g.imageIndex] = { data: d.index, dims: [n] };
      } else feeds[this.layout.input] = { data: rowsOf(images, size, s, n, m), dims: this.imageDims(m) };
      for (const l of this.r.layers) {
        feeds[g.inputs[l]!] = { data: rowsOf(overrides[l]!, F, s, n, m), dims: [m, F] };
        if (this.r.mode === 'affine') feeds[g.scaleInputs![l]!] = { data: rowsOf(scales![l]!, F, s, n, m), dims: [m, F] };
      }
      return feeds;
    };
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
    const tg = this.checkEdits(batch, targets, overrides, scales);
    const g = this.graph;
    const F = this.ffn;
    const out = await this.runRows(this.session, batch, this.editFeeds(g, images, tg, overrides, scales), [
      { name: g.logits, per: this.numClasses },
      { name: g.perSample!, per: 1 },
      ...this.r.layers.map((l) => ({ name: g.activations[l]!, per: F })),
      ...this.r.layers.map((l) => ({ name: g.grads[l]!, per: F })),
    ]);
    const grads: Record<number, Float32Array> = {};
    const activations: Record<number, Float32Array> = {};
    for (const l of this.r.layers) {
      grads[l] = out[g.grads[l]!]!;
      activations[l] = out[g.activations[l]!]!;
    }
    return { F: out[g.perSample!]!, logits: out[g.logits]!, grads, activations };
  }

  /** As run() without the backward pass (a separate forward-only graph, created on first use). */
  async forward(
    images: Float32Array,
    batch: number,
    targets: number[] | BigInt64Array,
    overrides: Record<number, Float32Array>,
    scales?: Record<number, Float32Array>,
  ): Promise<ForwardResult> {
    this.checkImages(images, batch);
    const tg = this.checkEdits(batch, targets, overrides, scales);
    const { session, graph: g } = await this.auxGraph('forward');
    const F = this.ffn;
    const out = await this.runRows(session, batch, this.editFeeds(g, images, tg, overrides, scales), [
      { name: g.logits, per: this.numClasses },
      { name: g.perSample!, per: 1 },
      ...this.r.layers.map((l) => ({ name: g.activations[l]!, per: F })),
    ]);
    const activations: Record<number, Float32Array> = {};
    for (const l of this.r.layers) activations[l] = out[g.activations[l]!]!;
    return { F: out[g.perSample!]!, logits: out[g.logits]!, activations };
  }

  /**
   * Build and open the clean and forward-only graphs now rather than on first use, so that their
   * cost counts with the engine's creation (first-image fixed costs) and their sessions are created
   * before the gradient runs fill their arenas (opening a session on a ViT-B/16-sized model took
   * ~1.5 GiB while ONNX Runtime parsed and pre-packed).
   */
  async openAuxiliaryGraphs(): Promise<void> {
    await this.auxGraph('clean');
    await this.auxGraph('forward');
  }

  /** The clean or forward-only graph and its session, built and opened once (on first use or by openAuxiliaryGraphs). */
  private auxGraph(kind: 'clean' | 'forward'): Promise<{ session: SessionPool; graph: BuiltGraph }> {
    let got = this.aux.get(kind);
    if (!got) {
      const build = kind === 'clean' ? buildCleanGraph : buildForwardGraph;
      got = (async () => {
        const graph = await cached(keyFor(kind, this.loaded, this.layout, this.r), this.opts.cacheDir, async () => build(this.loaded.proto, this.layout, this.r));
        return { session: await this.openAuxiliary(graph.bytes), graph };
      })();
      this.aux.set(kind, got);
    }
    return got;
  }

  /** The unmodified model: logits and the token rows of the engine's layers (graph created on first use). */
  async clean(images: Float32Array, batch: number): Promise<CleanResult> {
    const { session, graph } = await this.auxGraph('clean');
    return this.runClean(session, graph, images, batch);
  }

  async release(): Promise<void> {
    await this.session.release();
    for (const got of this.aux.values()) await (await got).session.release();
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
