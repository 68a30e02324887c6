// Neuron gradients on ONNX Runtime: builds (once per model hash and configuration) a graph with
// intervention inputs at the chosen blocks' token rows, the target-class objective and its reverse-
// mode gradient w.r.t. those inputs, and runs it; plus a clean pass giving logits and token rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { LoadedModel } from '../onnx/model.js';
import { encodeModel } from '../onnx/model.js';
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import type { ViTLayout } from '../vit/types.js';
import { interveneNeurons, exposeNeuronRows, type InterventionMode } from '../onnx/rewrite/intervene.js';
import { checkLayers, defaultToken, resolveToken, batchDim, type TokenChoice } from '../vit/tokens.js';
import { selectOutputs } from '../onnx/rewrite/expose.js';
import { shareImageRows } from '../onnx/rewrite/imageRows.js';
import { sliceLastBlockRow } from '../onnx/rewrite/lastRow.js';
import { joinStates, pinReshapes } from '../onnx/rewrite/joinStates.js';
import { appendObjective, type ObjectiveKind } from '../onnx/autodiff/objective.js';
import { buildGradientGraph, type GradientGraph } from '../onnx/autodiff/backward.js';
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
  /**
   * Affine mode: the gradient graph also takes layer-alone samples at each searched block's neuron
   * row from clean states (runLayerAlone; default true where the model allows it, see
   * buildNeuronGradientGraph); false builds it without joins.
   */
  joined?: boolean;
  notice?: (line: string) => void;
}

export interface GradientResult {
  /** F per sample [batch]. */
  F: Float32Array;
  /** Logits [batch, classes] of the intervened model. */
  logits: Float32Array;
  /** Block -> dF/d(input of that block) [batch, ffn]. */
  grads: Record<number, Float32Array>;
  /** Block -> the row as computed before the intervention (given the interventions upstream) [batch, ffn]; empty when run with rows: false. */
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
  /**
   * Gradient graph with joins (layer-alone samples): per joined block its state inputs (residual
   * stream, neuron tensor; see rowState) and its join index input; blocks whose states hold the
   * class-token row alone (the last block when it runs on that row).
   */
  states?: Record<number, string[]>;
  joins?: Record<number, string>;
  rowOnly?: number[];
  /** Clean graph: per block its row state tensors (residual stream, neuron tensor), where the block has that form. */
  blockStates?: Record<number, string[]>;
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
  /** Gradient graph with layer-alone joins (see buildNeuronGradientGraph). */
  joins: boolean;
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
  /** Whether gradient graphs take layer-alone samples from clean states (GradientEngineOptions.joined). */
  joins: boolean;
}

function resolveOptions(layout: ViTLayout, opts: GradientEngineOptions): Resolved {
  const token = opts.token ?? defaultToken(layout);
  resolveToken(layout, token); // validates
  const row = resolveToken(layout, token);
  const lastRow = opts.lastRowOnly !== false && row.kind === 'row' && layout.classToken?.row === row.row && layout.facts.pooling === 'cls';
  return { layers: checkLayers(layout, opts.layers), token, mode: opts.mode ?? 'override', objective: opts.objective ?? 'prob', lastRow, joins: opts.joined !== false };
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
    rev: kind === 'gradient' ? 3 : kind === 'clean' ? 2 : 1,
    lastRow: kind !== 'clean' && r.lastRow,
    joins: kind === 'gradient' && r.joins && r.mode === 'affine',
    logits: layout.logits,
    prepared: loaded.prepared ?? 'raw',
  };
}

/** The intervened model, with the last block sliced to the class-token row when r.lastRow and it applies. */
function intervened(model: ModelProto, layout: ViTLayout, r: Resolved) {
  const sl = r.lastRow ? sliceLastBlockRow(model, layout) : null;
  const iv = interveneNeurons(sl?.model ?? model, layout, { layers: r.layers, token: r.token, mode: r.mode, exposeActivations: true, oneRow: sl ? [sl.block] : [] });
  return { ...iv, rowOnly: sl ? [sl.block] : [] };
}

/**
 * A block's state at its neuron row in `model`: the neuron tensor and the residual stream the MLP
 * branch is added to (the other input of the Add that reads the branch), with the readers of that
 * residual which are not on the way to the neuron tensor (the residual Add). Null when the block
 * does not have that form or its neuron tensor is flattened ([batch*tokens, ffn]).
 */
export function rowState(model: ModelProto, layout: ViTLayout, block: number): { residual: string; neuron: string; readers: NodeProto[] } | null {
  const b = layout.blocks[block]!;
  if (b.neuronLayout !== 'btf') return null;
  const g = new Graph(model);
  const add = g.consumersOf(b.mlpBranch).find((n) => n.opType === 'Add' && n.input.length === 2);
  if (!add) return null;
  const residual = add.input[0] === b.mlpBranch ? add.input[1]! : add.input[0]!;
  if (!residual || residual === b.mlpBranch || !g.producerOf(b.neuron)) return null;
  const toNeuron = g.ancestors([b.neuron]);
  const readers = g.consumersOf(residual).filter((n) => !n.output.some((o) => o && toNeuron.has(o)));
  if (toNeuron.has(residual) === false || readers.length === 0) return null;
  return { residual, neuron: b.neuron, readers };
}

/**
 * Build the intervention + objective + gradient graph (no caching). With joins (r.joins, affine
 * mode, a dynamic batch, two or more layers, blocks of the usual form: see rowState) every searched
 * block after the first also takes layer-alone samples at its neuron row from clean states
 * (joinStates): such a sample runs only fc2 of its block and the blocks above, and its backward
 * stops at its row, where a sample fed at the bottom runs the whole model (the per-image part once
 * per image), so the per-layer integrated gradients (ig-layer, the ig criterion) cost about
 * (blocks above l) / (blocks) of a whole sample. Runs that join nothing feed empty states and cost
 * what the graph without joins costs (measured on vit-mnist and a ViT-S/16-sized model).
 */
export async function buildNeuronGradientGraph(model: ModelProto, layout: ViTLayout, r: Resolved, threads?: number): Promise<BuiltGraph> {
  const t0 = performance.now();
  const iv = intervened(model, layout, r);
  const f = layout.facts;
  const F = f.ffnWidth;
  const dynamic = !(typeof layout.inputDims[0] === 'number' && layout.inputDims[0] > 0);
  const T = f.tokens;
  const obj = appendObjective(iv.model, { logits: layout.logits, kind: r.objective, batchDim: batchDim(layout) });
  const batchAxes = new Map<string, number>();
  const facts = await probeFacts(obj.model, { provider: 'cpu', threads, batchAxes, batches: [1, 2] });
  // The state each searched block after the first takes joined samples at: its residual stream and
  // neuron tensor. Joining changes only how many rows the tensors above hold, an axis the probe
  // already found batch-dependent, so the facts carry over; the added tensors get theirs from the rewrite.
  const states = r.layers.slice(1).map((l) => ({ l, st: rowState(obj.model, layout, l), tok: iv.rowOnly.includes(l) ? 1 : T }));
  // Opset >= 10: the backward of the joins slices at run-time bounds.
  let joined =
    r.joins && dynamic && r.mode === 'affine' && obj.model.opsetImport.some((o) => (o.domain === '' || o.domain === 'ai.onnx') && Number(o.version) >= 10) && states.length > 0 && states.every((x) => x.st)
      ? joinStates(obj.model, {
          joins: states.map(({ l, st, tok }) => ({
            block: l,
            tensors: [
              { tensor: st!.residual, dims: [tok, f.width], readers: st!.readers },
              { tensor: st!.neuron, dims: [tok, F] },
            ],
          })),
          rowInputs: [
            ...r.layers.flatMap((l) => [
              { name: iv.inputs[l]!, dim: `rows_${l}` },
              { name: iv.scaleInputs[l]!, dim: `rows_${l}` },
            ]),
            { name: obj.target, dim: 'rows' },
          ],
        })
      : null;
  for (const t of joined?.added ?? []) facts.set(t.name, { dataType: t.dataType, dims: t.dims });
  const wrt = r.layers.map((l) => iv.inputs[l]!);
  const gradName = (n: string) => `grad_${n}`;
  // Joined runs may leave a part of the model without rows: pin the sizes its Reshapes infer.
  let g: GradientGraph | undefined;
  if (joined) {
    try {
      g = buildGradientGraph(pinReshapes(joined.model, facts).model, { loss: obj.loss, wrt, facts, gradName });
    } catch {
      joined = null; // some rule cannot take the joined form: the graph without joins
    }
  }
  g ??= buildGradientGraph(obj.model, { loss: obj.loss, wrt, facts, gradName });
  const grads: Record<number, string> = {};
  for (const l of r.layers) grads[l] = g.gradOutputs[iv.inputs[l]!]!;
  const outputs = [layout.logits, obj.perSample, ...r.layers.map((l) => iv.activations[l]!), ...r.layers.map((l) => grads[l]!)];
  let out = selectOutputs(g.model, outputs);
  // Everything upstream of the first intervened row depends on the image alone: run it once per
  // image (trace-path feeds m samples per image). Not for a fixed batch (nothing to share).
  let imageIndex: string | undefined;
  const perSample = [...Object.values(iv.inputs), ...Object.values(iv.scaleInputs ?? {}), obj.target];
  const shared = dynamic ? shareImageRows(out, { image: layout.input, perSample, batchAxis: (t) => batchAxes.get(t) }) : null;
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
    states: joined?.states,
    joins: joined?.indices,
    rowOnly: joined ? iv.rowOnly : undefined,
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
  // Each block's row state too: the clean states layer-alone samples start from.
  const blockStates: Record<number, string[]> = {};
  for (const l of r.layers) {
    const st = rowState(ex.model, layout, l);
    if (st) blockStates[l] = [st.residual, st.neuron];
  }
  const outputs = [layout.logits, ...r.layers.map((l) => ex.activations[l]!), ...Object.values(blockStates).flat()];
  const bytes = encodeModel(selectOutputs(ex.model, [...new Set(outputs)]));
  return { bytes, inputs: {}, activations: ex.activations, blockStates, grads: {}, logits: layout.logits, buildMs: performance.now() - t0, source: 'built' };
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
  return { rows: forRun(rows), count: firsts.length, index: forRun(index) };
}

/**
 * Arrays built for one run's feeds (rowsOf's copies, distinctRows): runRows hands them to a worker
 * session instead of copying them into the message (the caller's own arrays are always copied).
 */
const builtForRun = new WeakSet<object>();
function forRun<A extends object>(a: A): A {
  builtForRun.add(a);
  return a;
}

/** Rows [start, start+n) of a [batch, per] array, zero-padded to `size` rows (no copy when it already fits). */
function rowsOf<A extends Float32Array | BigInt64Array>(a: A, per: number, start: number, n: number, size: number): A {
  if (start === 0 && a.length === size * per) return a;
  const out = new (a.constructor as new (k: number) => A)(size * per);
  out.set(a.subarray(start * per, (start + n) * per) as never);
  return forRun(out);
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
   * otherwise one equal piece per session of every `chunk` rows) and return each fetched output
   * over the whole batch, padding dropped. All pieces go to one runEach: a session that finishes
   * its piece takes the next at once instead of waiting for the other sessions.
   */
  protected async runRows(
    pool: SessionPool,
    batch: number,
    feeds: (start: number, n: number, size: number) => Record<string, Feed>,
    fetch: { name: string; per: number }[],
    chunk = batch,
  ): Promise<Record<string, Float32Array>> {
    const fb = this.fixedBatch;
    const pieces: Array<[number, number]> = [];
    for (let s0 = 0; s0 < batch; s0 += chunk) {
      const end = Math.min(batch, s0 + chunk);
      if (fb !== null) for (let s = s0; s < end; s += fb) pieces.push([s, Math.min(fb, end - s)]);
      else for (const [s, n] of splitRows(end - s0, pool.size)) pieces.push([s0 + s, n]);
    }
    const outputs = fetch.map((f) => f.name);
    // Each piece's rows go to their place as soon as it ends (padding dropped), so no more than the
    // batch's outputs and the pieces in flight are held at once.
    const out: Record<string, Float32Array> = Object.fromEntries(fetch.map((f) => [f.name, new Float32Array(batch * f.per)]));
    await pool.runEach(
      pieces.length,
      (j) => {
        const f = feeds(pieces[j]![0], pieces[j]![1], fb ?? pieces[j]![1]);
        return { feeds: f, outputs, transfer: Object.keys(f).filter((k) => builtForRun.has(f[k]!.data)) };
      },
      (j, res) => {
        const [s, n] = pieces[j]!;
        for (const f of fetch) out[f.name]!.set((res[f.name]!.data as Float32Array).subarray(0, n * f.per), s * f.per);
      },
    );
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

/** Samples [from, from + count) of a group joining the joined graph at `block` (see NeuronGradientEngine.joinedFeeds). */
interface JoinPiece {
  block: number;
  /** The clean states of `block` (see NeuronGradientEngine.blockStates; the images for the first block), `stateCount` rows each, and each sample's row among them. */
  states: Float32Array[];
  stateCount: number;
  stateRow: Int32Array;
  target: BigInt64Array;
  /** Per block at or above `block`: the sample rows' offset and scale, [S, ffn] (absent = 0 and 1). */
  offset: Record<number, Float32Array | undefined>;
  scale: Record<number, Float32Array | undefined>;
  from: number;
  count: number;
}

/** Clean states computed per layer-alone call (runLayerAlone splits its images to stay near this). */
const STATE_BYTES_PER_CALL = 64 * 2 ** 20;

/** F, logits and pre-intervention rows without gradients (NeuronGradientEngine.forward). */
export type ForwardResult = Omit<GradientResult, 'grads'>;

export class NeuronGradientEngine extends LayoutRunner implements NeuronGradientSource {
  /** Layer-alone runs carry a bottom sample (set when a run with empty lower layers failed). */
  private aloneDummy = false;
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
  /** Whether the gradient graph takes layer-alone samples from clean states (runLayerAlone). */
  get joined(): boolean {
    return this.graph.states !== undefined;
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
      if (g.states) Object.assign(feeds, this.noJoins()); // the gradient graph's joins take nothing here
      return feeds;
    };
  }

  /**
   * Run the gradient graph. `overrides` feed the intervention inputs (the offsets in affine mode);
   * `scales` feed the affine scale inputs (required in affine mode, ignored otherwise). `chunk`
   * bounds the samples of one run over all sessions (each session's run takes its share of a chunk;
   * default the whole batch): memory grows with it, results do not depend on it. `rows: false`
   * leaves `activations` empty (nothing fetched for them).
   */
  async run(
    images: Float32Array,
    batch: number,
    targets: number[] | BigInt64Array,
    overrides: Record<number, Float32Array>,
    scales?: Record<number, Float32Array>,
    chunk?: number,
    rows = true,
  ): Promise<GradientResult> {
    const r = await this.runEdits(async () => ({ session: this.session, graph: this.graph }), { grads: true, rows }, images, batch, targets, overrides, scales, chunk);
    return { ...r, grads: r.grads! };
  }

  /** As run() without the backward pass (a separate forward-only graph, created on first use). */
  async forward(
    images: Float32Array,
    batch: number,
    targets: number[] | BigInt64Array,
    overrides: Record<number, Float32Array>,
    scales?: Record<number, Float32Array>,
    chunk?: number,
    rows = true,
  ): Promise<ForwardResult> {
    return this.runEdits(() => this.auxGraph('forward'), { grads: false, rows }, images, batch, targets, overrides, scales, chunk);
  }

  /**
   * run() and forward(): the edits on the graph `open` gives (after the inputs are checked, so bad
   * input never builds a graph), fetching F, logits, the rows before the edits and the gradients when asked.
   */
  private async runEdits(
    open: () => Promise<{ session: SessionPool; graph: BuiltGraph }>,
    fetchAlso: { grads: boolean; rows: boolean },
    images: Float32Array,
    batch: number,
    targets: number[] | BigInt64Array,
    overrides: Record<number, Float32Array>,
    scales: Record<number, Float32Array> | undefined,
    chunk: number | undefined,
  ): Promise<ForwardResult & { grads?: Record<number, Float32Array> }> {
    this.checkImages(images, batch);
    const tg = this.checkEdits(batch, targets, overrides, scales);
    const { session, graph: g } = await open();
    const F = this.ffn;
    const layers = this.r.layers;
    const out = await this.runRows(
      session,
      batch,
      this.editFeeds(g, images, tg, overrides, scales),
      [
        { name: g.logits, per: this.numClasses },
        { name: g.perSample!, per: 1 },
        ...(fetchAlso.rows ? layers.map((l) => ({ name: g.activations[l]!, per: F })) : []),
        ...(fetchAlso.grads ? layers.map((l) => ({ name: g.grads[l]!, per: F })) : []),
      ],
      chunk,
    );
    const of = (names: Record<number, string>) => Object.fromEntries(layers.map((l) => [l, out[names[l]!]!]));
    return { F: out[g.perSample!]!, logits: out[g.logits]!, activations: fetchAlso.rows ? of(g.activations) : {}, ...(fetchAlso.grads ? { grads: of(g.grads) } : {}) };
  }

  /**
   * Each image's clean row state at each of `blocks` (residual stream [n, tokens * width] and neuron
   * tensor [n, tokens * ffn]; the class-token row alone where the gradient graph's block runs on it),
   * from the clean graph.
   */
  async blockStates(images: Float32Array, n: number, blocks: readonly number[]): Promise<Record<number, Float32Array[]>> {
    this.checkImages(images, n);
    const { session, graph } = await this.auxGraph('clean');
    const f = this.layout.facts;
    const size = this.imageSize;
    const names = blocks.map((b) => {
      const st = graph.blockStates?.[b];
      if (!st) throw new Error(`gradient engine: the clean graph exposes no state for block ${b}`);
      return st;
    });
    const fetch = [...new Map(names.flatMap(([res, neu]) => [[res!, f.tokens * f.width] as const, [neu!, f.tokens * f.ffnWidth] as const])).entries()].map(([name, per]) => ({ name, per }));
    const out = await this.runRows(session, n, (s, k, m) => ({ [this.layout.input]: { data: rowsOf(images, size, s, k, m), dims: this.imageDims(m) } }), fetch);
    const row = this.layout.classToken?.row ?? 0;
    const rowOnly = new Set(this.graph.rowOnly ?? []);
    return Object.fromEntries(
      blocks.map((b, i) => [
        b,
        names[i]!.map((name, k) => {
          const full = out[name]!;
          if (!rowOnly.has(b)) return full;
          const w = k === 0 ? f.width : f.ffnWidth;
          const one = new Float32Array(n * w);
          for (let j = 0; j < n; j++) one.set(full.subarray((j * f.tokens + row) * w, (j * f.tokens + row + 1) * w), j * w);
          return one;
        }),
      ]),
    );
  }

  /** The state and join feeds of joined block `l`: per state its rows (empty arrays: nothing joins), each sample's row index. */
  private stateFeeds(l: number, rows: Float32Array[], count = 0, idx: BigInt64Array = new BigInt64Array(0)): Record<string, Feed> {
    const g = this.graph;
    const f = this.layout.facts;
    const tok = g.rowOnly?.includes(l) ? 1 : f.tokens;
    const feeds: Record<string, Feed> = { [g.joins![l]!]: { data: idx, dims: [idx.length] } };
    g.states![l]!.forEach((name, k) => {
      const w = k === 0 ? f.width : f.ffnWidth;
      feeds[name] = { data: rows[k] ?? new Float32Array(0), dims: [rows[k] ? count : 0, tok, w] };
    });
    return feeds;
  }

  /** Empty state and join feeds: a run whose samples all start at the bottom. */
  private noJoins(): Record<string, Feed> {
    const g = this.graph;
    const feeds: Record<string, Feed> = {};
    for (const l of Object.keys(g.states ?? {}).map(Number)) Object.assign(feeds, this.stateFeeds(l, []));
    return feeds;
  }

  /**
   * Feeds of one run of layer-alone groups (at most one per block) and where each group's rows sit
   * at each block. The group of the first block is fed at the bottom (its `states` are the images,
   * shared per image where the graph does that); the others join from clean states (joinStates).
   */
  private joinedFeeds(groups: JoinPiece[]): { feeds: Record<string, Feed>; startAt: Map<JoinPiece, Record<number, number>> } {
    const g = this.graph;
    const F = this.ffn;
    const feeds: Record<string, Feed> = {};
    const startAt = new Map<JoinPiece, Record<number, number>>(groups.map((p) => [p, {}]));
    const joinedSoFar: JoinPiece[] = [];
    /** The distinct rows of each of `p.states` its samples read and each sample's index among them. */
    const distinct = (p: JoinPiece) => {
      const used = new Map<number, number>();
      const idx = new BigInt64Array(p.count);
      for (let k = 0; k < p.count; k++) {
        const r = p.stateRow[p.from + k]!;
        let u = used.get(r);
        if (u === undefined) used.set(r, (u = used.size));
        idx[k] = BigInt(u);
      }
      const rows = p.states.map((st) => {
        const per = st.length / p.stateCount;
        const out = new Float32Array(used.size * per);
        for (const [r, u] of used) out.set(st.subarray(r * per, (r + 1) * per), u * per);
        return out;
      });
      return { rows, count: used.size, idx };
    };
    this.r.layers.forEach((l, li) => {
      const here = groups.filter((p) => p.block === l);
      if (here.length > 1) throw new Error(`gradient engine: two groups join at block ${l} in one run`);
      const p = here[0];
      if (li === 0) {
        if (p) {
          if (g.imageIndex) {
            const d = distinct(p);
            feeds[this.layout.input] = { data: d.rows[0]!, dims: this.imageDims(d.count) };
            feeds[g.imageIndex] = { data: d.idx, dims: [p.count] };
          } else {
            const imgs = new Float32Array(p.count * this.imageSize);
            const src = p.states[0]!;
            for (let k = 0; k < p.count; k++) imgs.set(src.subarray(p.stateRow[p.from + k]! * this.imageSize, (p.stateRow[p.from + k]! + 1) * this.imageSize), k * this.imageSize);
            feeds[this.layout.input] = { data: imgs, dims: this.imageDims(p.count) };
          }
        } else {
          feeds[this.layout.input] = { data: new Float32Array(0), dims: this.imageDims(0) };
          if (g.imageIndex) feeds[g.imageIndex] = { data: new BigInt64Array(0), dims: [0] };
        }
      } else if (p) {
        const d = distinct(p);
        Object.assign(feeds, this.stateFeeds(l, d.rows, d.count, d.idx));
      } else Object.assign(feeds, this.stateFeeds(l, []));
      if (p) joinedSoFar.push(p);
      const rows = joinedSoFar.reduce((a, q) => a + q.count, 0);
      const off = new Float32Array(rows * F);
      const sc = new Float32Array(rows * F).fill(1);
      let at = 0;
      for (const q of joinedSoFar) {
        startAt.get(q)![l] = at;
        const o = q.offset[l];
        const c = q.scale[l];
        if (o) off.set(o.subarray(q.from * F, (q.from + q.count) * F), at * F);
        if (c) sc.set(c.subarray(q.from * F, (q.from + q.count) * F), at * F);
        at += q.count;
      }
      feeds[g.inputs[l]!] = { data: off, dims: [rows, F] };
      feeds[g.scaleInputs![l]!] = { data: sc, dims: [rows, F] };
    });
    const total = joinedSoFar.reduce((a, q) => a + q.count, 0);
    const tg = new BigInt64Array(total);
    let at = 0;
    for (const q of joinedSoFar) {
      tg.set(q.target.subarray(q.from, q.from + q.count), at);
      at += q.count;
    }
    feeds[g.target!] = { data: tg, dims: [total] };
    return { feeds, startAt };
  }

  /** runLayerAlone over images [i0, i0 + perCall) at a time, each part's samples and results in their places. */
  private async layerAloneInParts(
    images: Float32Array,
    n: number,
    targets: Int32Array,
    groups: { block: number; image: Int32Array; scale: Float32Array; offset: Float32Array }[],
    unitsPerRun: number,
    perCall: number,
  ): Promise<{ grads: Float32Array[]; F: Float32Array[] }> {
    const F = this.ffn;
    const size = this.imageSize;
    const grads = groups.map((q) => new Float32Array(q.image.length * F));
    const Fs = groups.map((q) => new Float32Array(q.image.length));
    for (let i0 = 0; i0 < n; i0 += perCall) {
      const i1 = Math.min(n, i0 + perCall);
      const picks = groups.map((q) => q.image.reduce<number[]>((a, im, s) => (im >= i0 && im < i1 ? (a.push(s), a) : a), []));
      const part = groups.map((q, gi) => {
        const p = picks[gi]!;
        const scale = new Float32Array(p.length * F);
        const offset = new Float32Array(p.length * F);
        p.forEach((s, k) => {
          scale.set(q.scale.subarray(s * F, (s + 1) * F), k * F);
          offset.set(q.offset.subarray(s * F, (s + 1) * F), k * F);
        });
        return { block: q.block, image: Int32Array.from(p, (s) => q.image[s]! - i0), scale, offset };
      });
      const r = await this.runLayerAlone(images.subarray(i0 * size, i1 * size), i1 - i0, targets.subarray(i0, i1), part, unitsPerRun);
      picks.forEach((p, gi) =>
        p.forEach((s, k) => {
          grads[gi]!.set(r.grads[gi]!.subarray(k * F, (k + 1) * F), s * F);
          Fs[gi]![s] = r.F[gi]![k]!;
        }),
      );
    }
    return { grads, F: Fs };
  }

  /**
   * Layer-alone samples: each group's samples edit only the row of block `block` (R = row ⊙ scale +
   * offset there, every other block untouched) and start from their image's clean state entering
   * that block, so their forward runs the blocks from there up and their backward stops at the row.
   * Returns per group dF/dR at its block [S, ffn] and F per sample [S]. Runs hold at most
   * `unitsPerRun` whole-model samples' worth of blocks (a sample joined at block l counts
   * (blocks - l) / blocks). Needs the joined graph (see `joined`).
   */
  async runLayerAlone(
    images: Float32Array,
    n: number,
    targets: Int32Array,
    groups: { block: number; image: Int32Array; scale: Float32Array; offset: Float32Array }[],
    unitsPerRun: number,
  ): Promise<{ grads: Float32Array[]; F: Float32Array[] }> {
    const g = this.graph;
    if (!g.states) throw new Error('gradient engine: layer-alone runs need a gradient graph with joins');
    const F = this.ffn;
    const blocks = [...new Set(groups.map((q) => q.block))];
    if (blocks.length !== groups.length) throw new Error('gradient engine: one layer-alone group per block');
    for (const b of blocks) if (!this.r.layers.includes(b)) throw usageError(`block ${b} is not one of the engine's layers (${this.r.layers.join(', ')})`);
    const l0 = this.r.layers[0]!;
    const above = blocks.filter((b) => b !== l0);
    // The clean states of a few images at a time (a ViT-B/16-sized model's take ~3 MB per image and block).
    const f = this.layout.facts;
    const stateBytes = 4 * above.reduce((a, b) => a + (this.graph.rowOnly?.includes(b) ? 1 : f.tokens) * (f.width + f.ffnWidth), 0);
    const perCall = Math.max(1, Math.floor(STATE_BYTES_PER_CALL / Math.max(1, stateBytes)));
    if (n > perCall) return this.layerAloneInParts(images, n, targets, groups, unitsPerRun, perCall);
    const states = above.length ? await this.blockStates(images, n, above) : {};
    if (blocks.includes(l0)) states[l0] = [images];
    const B = this.layout.blocks.length;
    // Pack the samples into runs of bounded work: groups in block order, split where a run is full.
    const runs: JoinPiece[][] = [];
    let cur: JoinPiece[] = [];
    let units = 0;
    const tgOf = groups.map((q) => BigInt64Array.from(q.image, (i) => BigInt(targets[i]!)));
    const order = groups.map((q, i) => ({ q, i })).sort((a, b) => a.q.block - b.q.block);
    const pieceOf: { run: number; piece: JoinPiece; group: number }[] = [];
    for (const { q, i } of order) {
      const w = (B - q.block) / B;
      const S = q.image.length;
      let from = 0;
      while (from < S) {
        let take = Math.max(1, Math.min(S - from, Math.floor((unitsPerRun - units) / w + 1e-9)));
        if (units > 0 && units + w > unitsPerRun + 1e-9) {
          runs.push(cur);
          cur = [];
          units = 0;
          take = Math.max(1, Math.min(S - from, Math.floor(unitsPerRun / w + 1e-9)));
        }
        const piece: JoinPiece = { block: q.block, states: states[q.block]!, stateCount: n, stateRow: q.image, target: tgOf[i]!, offset: { [q.block]: q.offset }, scale: { [q.block]: q.scale }, from, count: take };
        cur.push(piece);
        pieceOf.push({ run: runs.length, piece, group: i });
        units += take * w;
        from += take;
      }
    }
    if (cur.length) runs.push(cur);
    const outputs = [g.perSample!, ...blocks.map((b) => g.grads[b]!)];
    const layouts: ReturnType<NeuronGradientEngine['joinedFeeds']>[] = new Array(runs.length);
    // A run without samples at the bottom leaves the layers below its groups without rows; where the
    // graph cannot run on empty tensors (an export's op refuses them), each such run carries one
    // bottom sample with no edits instead (its results unused).
    const dummy: JoinPiece = { block: l0, states: [images], stateCount: n, stateRow: new Int32Array(1), target: BigInt64Array.of(BigInt(targets[0]!)), offset: {}, scale: {}, from: 0, count: 1 };
    const go = () =>
      this.session.runAll(runs.length, (j) => {
        const run = runs[j]!;
        const jf = this.joinedFeeds(this.aloneDummy && !run.some((p) => p.block === l0) ? [dummy, ...run] : run);
        layouts[j] = jf;
        return { feeds: jf.feeds, outputs, transfer: Object.keys(jf.feeds) }; // every feed is built for this run
      });
    let results;
    try {
      results = await go();
    } catch (e) {
      if (this.aloneDummy) throw e;
      this.aloneDummy = true;
      results = await go();
    }
    const grads = groups.map((q) => new Float32Array(q.image.length * F));
    const Fs = groups.map((q) => new Float32Array(q.image.length));
    const last = this.r.layers[this.r.layers.length - 1]!;
    for (const { run, piece, group } of pieceOf) {
      const lay = layouts[run]!;
      const out = results[run]!;
      const at = lay.startAt.get(piece)!;
      const gl = out[g.grads[piece.block]!]!.data as Float32Array;
      grads[group]!.set(gl.subarray(at[piece.block]! * F, (at[piece.block]! + piece.count) * F), piece.from * F);
      Fs[group]!.set((out[g.perSample!]!.data as Float32Array).subarray(at[last]!, at[last]! + piece.count), piece.from);
    }
    return { grads, F: Fs };
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
