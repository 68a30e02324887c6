// Shape probe: run a model once or twice with every intermediate exposed to learn each tensor's
// element type and dims, marking axes that follow the batch size (used by autodiff rules).
import { DataType, type ModelProto } from '../onnx/proto.js';
import { GraphEditor } from '../onnx/edit.js';
import { Graph, valueInfoShape } from '../onnx/graph.js';
import { namedValueInfo } from '../onnx/builder.js';
import { encodeModel } from '../onnx/model.js';
import { numel } from '../onnx/tensor.js';
import type { TensorFacts } from '../onnx/autodiff/types.js';
import { createSession, type Feed, type RuntimeOptions } from './session.js';

const ORT_TYPES: Record<string, DataType> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

/** A zero-filled feed for a graph input, with dynamic dims set to `batch`. */
export function zeroFeed(dataType: DataType | undefined, dims: (number | string | undefined)[], batch: number): Feed {
  const d = dims.map((x) => (typeof x === 'number' && x > 0 ? x : batch));
  const n = numel(d);
  switch (dataType) {
    case DataType.DOUBLE:
      return { data: new Float64Array(n), dims: d };
    case DataType.INT64:
      return { data: new BigInt64Array(n), dims: d };
    case DataType.INT32:
      return { data: new Int32Array(n), dims: d };
    case DataType.BOOL:
      return { data: new Uint8Array(n), dims: d, type: 'bool' };
    case DataType.UINT8:
      return { data: new Uint8Array(n), dims: d };
    case DataType.FLOAT16:
      return { data: new Uint16Array(n), dims: d, type: 'float16' };
    default:
      return { data: new Float32Array(n), dims: d };
  }
}

export interface ProbeOptions extends RuntimeOptions {
  /** Feeds per batch size; default zero tensors shaped from the graph inputs. */
  feeds?: (batch: number) => Record<string, Feed>;
  /**
   * The two batch sizes to probe at (default [2, 3]); they must differ. A dim is batch-dependent
   * when it differs between the two runs, so a dim that is 1 at batch 1 is still seen as batch-
   * dependent, and a static dim equal to a probe size stays static (it is equal in both runs).
   * Smaller sizes probe faster: every intermediate of the model is copied out.
   */
  batches?: readonly [number, number];
  /** Filled with the batch axis of every tensor whose size on that axis is the batch size at each probe (others untouched). */
  batchAxes?: Map<string, number>;
}

/** The batch sizes the probe runs at by default (two when some input is dynamic). */
export const PROBE_BATCHES = [2, 3] as const;

/**
 * Run `model` with all intermediate tensors as outputs at batch 2 and 3 (or opts.batches; once if no input
 * has a dynamic dim) and return dtype + dims per tensor, with null for batch-dependent axes.
 */
export async function probeFacts(model: ModelProto, opts: ProbeOptions = {}): Promise<Map<string, TensorFacts>> {
  const graph = new Graph(model);
  const inputs = model.graph!.input.filter((v) => !graph.initializers.has(v.name));
  const dynamic = inputs.some((v) => (valueInfoShape(v).dims ?? []).some((d) => typeof d !== 'number' || d <= 0));
  const exposed = new Set<string>();
  for (const n of graph.nodes) for (const o of n.output) if (o && !graph.initializers.has(o)) exposed.add(o);
  for (const o of graph.outputNames) exposed.delete(o);
  const ed = new GraphEditor(model);
  ed.addOutputs([...exposed].map((o) => namedValueInfo(o)));
  const probeModel = ed.model();
  const session = await createSession(encodeModel(probeModel), { ...opts, provider: opts.provider === 'auto' || !opts.provider ? 'cpu' : opts.provider });
  const feedsFor =
    opts.feeds ??
    ((batch: number) => {
      const f: Record<string, Feed> = {};
      for (const v of inputs) {
        const s = valueInfoShape(v);
        f[v.name] = zeroFeed(s.dataType, s.dims ?? [], batch);
      }
      return f;
    });
  try {
    const runs: Record<string, { dims: number[]; type: string }>[] = [];
    const pair = opts.batches ?? PROBE_BATCHES;
    if (!(pair[0] >= 1 && pair[1] >= 1 && pair[0] !== pair[1])) throw new Error(`probeFacts: the two probe batch sizes must be distinct positive integers (got ${pair.join(', ')})`);
    const batches = dynamic ? [...pair] : [pair[0]];
    for (const batch of batches) {
      const feeds = feedsFor(batch);
      const out = await session.run(feeds);
      const rec: Record<string, { dims: number[]; type: string }> = {};
      for (const [k, v] of Object.entries(out)) rec[k] = { dims: v.dims, type: v.type };
      for (const [k, v] of Object.entries(feeds)) rec[k] = { dims: [...v.dims], type: v.type ?? ortType(v.data) };
      runs.push(rec);
    }
    const facts = new Map<string, TensorFacts>();
    for (const [name, r] of Object.entries(runs[0]!)) {
      const other = runs[1]?.[name];
      const dims = r.dims.map((d, i) => (other && (other.dims.length !== r.dims.length || other.dims[i] !== d) ? null : d));
      facts.set(name, { dataType: ORT_TYPES[r.type] ?? DataType.UNDEFINED, dims });
      if (opts.batchAxes && other && other.dims.length === r.dims.length) {
        const axes = dims.flatMap((d, i) => (d === null ? [i] : []));
        if (axes.length === 1 && r.dims[axes[0]!] === batches[0] && other.dims[axes[0]!] === batches[1]) opts.batchAxes.set(name, axes[0]!);
      }
    }
    for (const [name, t] of graph.initializers) facts.set(name, { dataType: t.dataType as DataType, dims: t.dims.map(Number) });
    return facts;
  } finally {
    await session.release();
  }
}

function ortType(data: Feed['data']): string {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint16Array) return 'float16';
  return 'uint8';
}
