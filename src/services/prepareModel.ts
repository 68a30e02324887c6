// Load a user's model and make it ready for vitpath's graph rewrites: generalize its batch (drop
// stale stored shapes, rewrite shape constants baked at batch 1), fold its shape subgraphs to
// constants, and verify any rewrite numerically against one-image runs of the original in ONNX
// Runtime; when a rewrite cannot be proven, fall back to one image at a time with one notice.
// Every command that builds graphs from the user's model starts here.
import { loadModel, encodeModel, type LoadedModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';
import { DataType } from '../onnx/proto.js';
import { Graph, valueInfoShape } from '../onnx/graph.js';
import { generalizeBatch, fixBatch, conflictText, type BatchStatus } from '../onnx/rewrite/batch.js';
import { foldShapes, type FoldRefusal, type FoldResult } from '../onnx/rewrite/foldShapes.js';
import { declaredInputDims } from '../onnx/shapes/infer.js';
import type { Dim } from '../onnx/shapes/sym.js';
import { locateVit, type LocateOptions } from '../vit/locate.js';
import type { ViTLayout } from '../vit/types.js';
import { createSession, type Feed } from '../runtime/session.js';
import { mulberry32 } from '../random.js';
import { f16ToF32, f32ToF16, numel } from '../onnx/tensor.js';

/** What vitpath found about the batch and did about it. */
export type PreparedBatch =
  /** The input declares a fixed batch size. */
  | 'fixed'
  /** Consistent at every batch size (stale stored shapes dropped where there were any). */
  | 'dynamic'
  /** Shape constants baked at batch 1 rewritten; equal to one-image runs (checked). */
  | 'rewritten'
  /** Baked at one batch size in a way vitpath could not rewrite: runs one image at a time. */
  | 'one-at-a-time';

export interface Preparation {
  batch: PreparedBatch;
  /** One line for inspect: "dynamic (stale batch-1 value_info dropped)", ... */
  summary: string;
  /** value_info entries dropped because they contradict the symbolic batch. */
  staleValueInfo: number;
  /** Graph outputs whose stored dims were corrected. */
  staleOutputs: string[];
  /** Shape constants rewritten to batch-agnostic forms. */
  rewrites: { node: string; kind: 'reshape' | 'concat-expand'; detail: string }[];
  /** Why the batch could not be generalized (one-at-a-time), or what was baked (rewritten). */
  conflicts: string[];
  /** How the rewrite was checked: largest |difference| of the outputs against one-image runs (null when none ran). */
  verifiedMaxDiff: number | null;
  fold: { removed: number; constants: number; batchShapes: number; refused: FoldRefusal[] };
  /** The notice printed when falling back to one image at a time. */
  notice?: string;
}

export interface PrepareOptions {
  /** How messages name the model. */
  label?: string;
  /** Called once with the fallback notice (default: none; callers print it). */
  notice?: (line: string) => void;
  /** Batch size of the numeric check (default 3). */
  checkBatch?: number;
}

export interface PreparedModel {
  /** The loaded file with `proto` replaced by the prepared model (sha256 and size stay the file's). */
  loaded: LoadedModel;
  /** The model as read from the file. */
  original: ModelProto;
  preparation: Preparation;
}

const CHECK_SEED = 20240917;
/** Revision of the preparation (in graph cache keys): bump when it changes what it produces. */
export const PREPARATION_REV = 'prep1';

/** Dims of the batch input with non-batch dims known (declared, or from the located image size). */
function inputDimsFor(model: ModelProto, label: string): Record<string, Dim[] | undefined> | undefined {
  const g = new Graph(model);
  const out: Record<string, Dim[] | undefined> = {};
  let needs = false;
  for (const v of model.graph!.input) {
    if (g.initializers.has(v.name)) continue;
    const dims = valueInfoShape(v).dims;
    if (dims && dims.length === 4 && !declaredInputDims(dims)) needs = true;
  }
  if (!needs) return undefined;
  let layout: ViTLayout;
  try {
    layout = locateVit(model, { label });
  } catch {
    return undefined;
  }
  const f = layout.facts;
  const d0 = layout.inputDims[0];
  out[layout.input] = [typeof d0 === 'number' && d0 > 0 ? d0 : { a: 1n, c: 0n }, f.channels, f.imageSize[0], f.imageSize[1]];
  return out;
}

/** Seeded images in [0, 1) for every float input of `model`, `batch` rows. */
function checkFeeds(model: ModelProto, inputDims: Record<string, Dim[] | undefined> | undefined, batch: number): Record<string, Feed> | undefined {
  const g = new Graph(model);
  const rnd = mulberry32(CHECK_SEED);
  const feeds: Record<string, Feed> = {};
  for (const v of model.graph!.input) {
    if (g.initializers.has(v.name)) continue;
    const s = valueInfoShape(v);
    const dims = inputDims?.[v.name] ?? declaredInputDims(s.dims);
    const half = s.dataType === DataType.FLOAT16;
    if (!dims || (s.dataType !== DataType.FLOAT && s.dataType !== undefined && !half)) return undefined;
    const d = dims.map((x, i) => (typeof x === 'number' ? x : i === 0 ? batch : NaN));
    if (d.some((x) => !Number.isFinite(x))) return undefined;
    const n = numel(d);
    if (half) {
      const data = new Uint16Array(n);
      for (let i = 0; i < n; i++) data[i] = f32ToF16(rnd());
      feeds[v.name] = { data, dims: d, type: 'float16' };
    } else {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = rnd();
      feeds[v.name] = { data, dims: d };
    }
  }
  return feeds;
}

function rowsOf(f: Feed, r: number): Feed {
  const per = f.data.length / f.dims[0]!;
  return { ...f, data: (f.data as Float32Array).slice(r * per, (r + 1) * per), dims: [1, ...f.dims.slice(1)] };
}

/** A float output as float32 values (float16 decoded); undefined for other types. */
function floats(o: { data: unknown; type: string }): Float32Array | undefined {
  if (o.data instanceof Float32Array) return o.data;
  if (o.type === 'float16' && o.data instanceof Uint16Array) return Float32Array.from(o.data, f16ToF32);
  return undefined;
}

/**
 * Largest |difference| between `candidate` run on a batch and `reference` run one image at a time
 * (every float output); Infinity when the candidate fails or disagrees in shape.
 */
async function compareWithOneImageRuns(reference: ModelProto, candidate: ModelProto, feeds: Record<string, Feed>, batch: number): Promise<{ maxDiff: number; scale: number; error?: string }> {
  const ref = await createSession(encodeModel(reference), { provider: 'cpu', threads: 1 });
  const cand = await createSession(encodeModel(candidate), { provider: 'cpu', threads: 1 });
  try {
    let got: Awaited<ReturnType<typeof cand.run>>;
    try {
      got = await cand.run(feeds);
    } catch (e) {
      return { maxDiff: Infinity, scale: 0, error: (e as Error).message };
    }
    let maxDiff = 0;
    let scale = 0;
    let compared = 0;
    for (let r = 0; r < batch; r++) {
      const one: Record<string, Feed> = {};
      for (const [k, f] of Object.entries(feeds)) one[k] = rowsOf(f, r);
      const want = await ref.run(one);
      for (const [name, w] of Object.entries(want)) {
        const wv = floats(w);
        if (!wv) continue;
        const gv = got[name] ? floats(got[name]!) : undefined;
        if (!gv || got[name]!.dims[0] !== batch || gv.length !== wv.length * batch) return { maxDiff: Infinity, scale, error: `output ${name} has dims [${got[name]?.dims.join(',')}]` };
        const off = r * wv.length;
        for (let i = 0; i < wv.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(gv[off + i]! - wv[i]!));
          scale = Math.max(scale, Math.abs(wv[i]!));
        }
        compared++;
      }
    }
    // Nothing comparable (no float output): nothing proven.
    return compared ? { maxDiff, scale } : { maxDiff: Infinity, scale, error: 'it has no float output to compare' };
  } finally {
    await ref.release();
    await cand.release();
  }
}

function foldSummary(f: FoldResult): Preparation['fold'] {
  return { removed: f.removed, constants: f.constants.length, batchShapes: f.batchShapes.length, refused: f.refused };
}

function summaryOf(p: Omit<Preparation, 'summary'>): string {
  const staleParts: string[] = [];
  if (p.staleValueInfo) staleParts.push(`${p.staleValueInfo} stale value_info dropped`);
  if (p.staleOutputs.length) staleParts.push(`output dims corrected (${p.staleOutputs.join(', ')})`);
  const stale = staleParts.length ? ` (${staleParts.join('; ')})` : '';
  switch (p.batch) {
    case 'fixed':
      return 'fixed';
    case 'dynamic':
      return `dynamic${stale}`;
    case 'rewritten':
      return `fixed at 1 in the export; rewritten (${p.rewrites.length} shape constant${p.rewrites.length === 1 ? '' : 's'}, checked against one-image runs)${stale}`;
    case 'one-at-a-time':
      return 'fixed at 1 in the export; run one image at a time';
  }
}

/** Prepare an already loaded model (see the file comment). */
export async function prepareLoaded(loaded: LoadedModel, opts: PrepareOptions = {}): Promise<PreparedModel> {
  const label = opts.label ?? loaded.path;
  const original = loaded.proto;
  const inputDims = inputDimsFor(original, label);
  const gen = generalizeBatch(original, { inputDims });
  const checkBatch = opts.checkBatch ?? 3;
  const base = {
    staleValueInfo: gen.stale.dropped.length,
    staleOutputs: gen.stale.outputs,
    rewrites: gen.repairs.map((r) => ({
      node: r.node.name || r.node.output[0] || r.node.opType,
      kind: r.kind,
      detail: r.kind === 'reshape' ? `target [${r.target.join(',')}]` : `input ${r.input} expanded to the batch`,
    })),
    conflicts: gen.conflicts.map(conflictText),
    verifiedMaxDiff: null as number | null,
  };
  let status: BatchStatus | 'one-at-a-time' = gen.status;
  let folded: FoldResult | undefined;
  let why = gen.conflicts.length ? conflictText(gen.conflicts[0]!) : '';
  if (status === 'fixed' || status === 'dynamic') {
    folded = foldShapes(gen.model, { inputDims, inference: gen.inference });
  } else if (status === 'rewritten' || status === 'unknown') {
    // Prove it: the prepared model on a batch equals the original one image at a time.
    folded = foldShapes(gen.model, { inputDims, inference: gen.inference });
    const feeds = checkFeeds(original, inputDims, checkBatch);
    if (!feeds) {
      status = 'one-at-a-time';
      why = 'the inputs cannot be fed for the check';
    } else {
      const c = await compareWithOneImageRuns(fixBatch(original, 1, { inputDims }), folded.model, feeds, checkBatch);
      base.verifiedMaxDiff = c.maxDiff;
      if (c.maxDiff <= 1e-4 * Math.max(1, c.scale)) status = status === 'unknown' ? 'dynamic' : 'rewritten';
      else {
        status = 'one-at-a-time';
        why = c.error ? `at batch ${checkBatch} it fails (${c.error.split('\n')[0]})` : `at batch ${checkBatch} its outputs differ from one-image runs by ${c.maxDiff.toExponential(2)}`;
      }
    }
  } else status = 'one-at-a-time';

  let notice: string | undefined;
  if (status === 'one-at-a-time') {
    const one = fixBatch(original, 1, { inputDims });
    folded = foldShapes(one, { inputDims: inputDims ? Object.fromEntries(Object.entries(inputDims).map(([k, d]) => [k, d ? [1, ...d.slice(1)] : d])) : undefined });
    base.rewrites = [];
    base.staleValueInfo = 0;
    base.staleOutputs = [];
    notice = `vitpath: ${label}: the export fixes the batch at 1 in ways vitpath cannot rewrite (${why || 'see vitpath inspect'}); running one image at a time.`;
    opts.notice?.(notice);
  }
  const batch = status as PreparedBatch; // unknown and unproven end as dynamic (proven by the check) or one-at-a-time
  const prep: Omit<Preparation, 'summary'> = { batch, ...base, fold: foldSummary(folded!), ...(notice ? { notice } : {}) };
  return { loaded: { ...loaded, proto: folded!.model, prepared: `${PREPARATION_REV}:${batch}` }, original, preparation: { ...prep, summary: summaryOf(prep) } };
}

/** Load `modelPath`, prepare it and locate its layout (the start of every command). */
export async function loadPrepared(modelPath: string, opts: PrepareOptions & Pick<LocateOptions, 'output'> = {}): Promise<PreparedModel & { layout: ViTLayout }> {
  const loaded = loadModel(modelPath);
  const p = await prepareLoaded(loaded, { ...opts, label: opts.label ?? modelPath });
  const layout = locateVit(p.loaded.proto, { output: opts.output, label: opts.label ?? modelPath });
  return { ...p, layout };
}
