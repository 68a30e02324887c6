// Compute the per-image part of a graph once per image instead of once per sample: every tensor
// that depends on the image input but on none of the per-sample inputs (interventions, target) is
// identical for all samples of an image. The rewrite feeds the distinct images (a new batch
// axis) plus an int64 index [samples] -> image, and gathers each such tensor along its batch axis
// where a per-sample node (or a graph output) first reads it. In trace-path's graphs this is
// everything upstream of the first intervened neuron row: the patch embedding and block 0 up to
// its FFN activation.
import { DataType, type ModelProto, type NodeProto } from '../proto.js';
import { valueInfoShape } from '../graph.js';
import { tensorValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';

export interface ImageRowsOptions {
  /** The image input (batch axis 0). */
  image: string;
  /** Inputs that differ between the samples of one image. */
  perSample: string[];
  /**
   * Per tensor, the axis that is the batch (its size equals the batch size at every probed batch),
   * or undefined when no axis is exactly the batch. Only tensors whose axis is known can be shared.
   */
  batchAxis: (name: string) => number | undefined;
}

export interface ImageRows {
  model: ModelProto;
  /** The int64 [samples] input: the row of the image input each sample reads. */
  index: string;
  /** Tensors gathered from image rows to sample rows. */
  shared: string[];
}

/**
 * Returns the rewritten model, or null when the rewrite does not apply: nothing depends on the
 * image alone, or some per-image tensor read by a per-sample node is not a float tensor with a
 * known batch axis (e.g. a shape computed from the batch size), which gathering cannot carry.
 */
export function shareImageRows(model: ModelProto, o: ImageRowsOptions): ImageRows | null {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  if (!graph.inputNames.includes(o.image)) return null;
  // Classify tensors: 'sample' (depends on a per-sample input), 'image' (on the image input only).
  const kind = new Map<string, 'image' | 'sample'>();
  kind.set(o.image, 'image');
  for (const p of o.perSample) kind.set(p, 'sample');
  for (const n of graph.topologicalOrder()) {
    const ks = n.input.filter(Boolean).map((i) => kind.get(i));
    const k = ks.includes('sample') ? 'sample' : ks.includes('image') ? 'image' : undefined;
    if (k) for (const out of n.output) if (out) kind.set(out, k);
  }
  const isSampleNode = (n: NodeProto) => n.input.some((i) => i && kind.get(i) === 'sample');
  // Frontier: per-image tensors read by per-sample nodes or fetched as graph outputs.
  const frontier = new Set<string>();
  for (const n of graph.nodes) if (isSampleNode(n)) for (const i of n.input) if (i && kind.get(i) === 'image') frontier.add(i);
  for (const out of graph.outputNames) if (kind.get(out) === 'image') frontier.add(out);
  if (frontier.size === 0) return null;
  for (const t of frontier) if (o.batchAxis(t) === undefined) return null;
  // Skip when the image part is only the input itself (nothing to save).
  if (frontier.size === 1 && frontier.has(o.image) && ![...graph.nodes].some((n) => !isSampleNode(n) && n.input.includes(o.image))) return null;

  const b = ed.builder('image_rows');
  const index = b.fresh('index');
  const rename = new Map<string, string>(); // frontier tensor -> its per-sample version
  const outputRename = new Map<string, string>(); // graph output -> the per-image tensor behind it
  for (const t of frontier) {
    const before = b.nodes.length;
    if (graph.outputNames.includes(t)) {
      // The graph output keeps its name: its per-image tensor is renamed and gathered into it.
      const img = b.fresh(`per_image`);
      outputRename.set(t, img);
      b.op('Gather', [img, index], { axis: o.batchAxis(t)! }, t);
      rename.set(t, t);
    } else {
      rename.set(t, b.op('Gather', [t, index], { axis: o.batchAxis(t)! }, b.fresh('per_sample')));
    }
    // Gathers of graph inputs come first; the others right after the node producing their source.
    ed.insertAfter(t, b.nodes.slice(before));
  }
  for (const n of graph.nodes) {
    if (isSampleNode(n)) ed.replaceInputs(n, new Map(n.input.filter((i) => i && kind.get(i) === 'image' && rename.has(i)).map((i) => [i, rename.get(i)!])));
    else if ([...n.input, ...n.output].some((x) => outputRename.has(x))) {
      // Per-image nodes produce and read the per-image tensor behind a renamed graph output.
      const r = (x: string) => outputRename.get(x) ?? x;
      ed.editNode(n, { input: n.input.map(r), output: n.output.map(r) });
    }
  }
  // A batch axis of its own: the image count differs from the sample count.
  ed.mapValues((v, where) => {
    if (where !== 'input' || v.name !== o.image) return v;
    const sh = valueInfoShape(v);
    if (!sh.dims || sh.dataType === undefined) return v;
    return tensorValueInfo(v.name, sh.dataType, sh.dims.map((d, i) => (i === 0 ? 'images' : d)));
  });
  ed.addInputs([tensorValueInfo(index, DataType.INT64, ['samples'])]);
  return { model: ed.model(), index, shared: [...frontier] };
}
