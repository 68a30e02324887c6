// Extract the tail of a ViT (everything between the last block's output and the logits: final
// norm, pooling, head) as a standalone ONNX model, so the model's own readout can be applied to
// any block's residual stream (the logit lens of probe-layers).
//
// Two input forms:
//   'tokens': input `residual` [B,T,D] fed straight into the extracted nodes. Fed the last block's
//             output it reproduces the model's logits bit for bit (same ops, same weights).
//   'row':    input `residual` [B,D], broadcast to every token ([B,1,D] Expand [1,T,1]) before the
//             tail. A class-token tail then reads that row; a mean-pooled tail reads norm(row) —
//             the readout of one chosen token (or the patch mean computed by the caller).
import { create, DataType, GraphProtoSchema, ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto } from '../proto.js';
import type { Graph } from '../graph.js';
import { tensorValueInfo } from '../builder.js';
import { copyMessage, GraphEditor } from '../edit.js';
import type { ViTLayout } from '../../vit/types.js';
import { batchDim } from '../../vit/tokens.js';
import { unsupported, usageError } from '../../errors.js';

export type TailInput = 'tokens' | 'row';

export interface TailOptions {
  /** Input form (see the file comment). Default 'tokens'. */
  input?: TailInput;
  /** The tensor the tail starts from; default the last block's output. */
  from?: string;
}

export interface Tail {
  model: ModelProto;
  /** Name of the single input: [B,T,D] ('tokens') or [B,D] ('row'). */
  input: string;
  /** Name of the logits output [B, classes]. */
  output: string;
  inputForm: TailInput;
  /** Number of nodes copied from the source model. */
  copiedNodes: number;
}

export const TAIL_INPUT = 'residual';

/** Element type of the residual stream: from its value info, else the head weight's, else float32. */
function residualType(graph: Graph, from: string, layout: ViTLayout): DataType {
  const s = graph.shapeOf(from);
  if (s?.dataType) return s.dataType;
  const w = graph.initializers.get(layout.head.weight);
  return w ? (w.dataType as DataType) : DataType.FLOAT;
}

/** The nodes computing `logits` from `from` alone (plus constants), in the model's order. */
export function tailNodes(graph: Graph, from: string, logits: string): NodeProto[] {
  const needed = graph.ancestors([logits], new Set([from]));
  if (!needed.has(from)) {
    throw unsupported(`the logits "${logits}" do not depend on "${from}"; the located layout does not match the model's head.`);
  }
  const external = [...needed].filter((t) => t !== from && !graph.producer.has(t) && !graph.initializers.has(t) && t !== '');
  if (external.length > 0) {
    throw unsupported(
      `the model's head reads ${external.map((t) => `"${t}"`).join(', ')} besides the last block's output "${from}", so its tail cannot be run on its own; probe-layers needs a head computed from the residual stream only.`,
    );
  }
  const fromProducer = graph.producer.get(from);
  return graph.topologicalOrder().filter((n) => n !== fromProducer && n.output.some((o) => o && o !== from && needed.has(o)));
}

/** Extract the tail (final norm, pooling, head) of `model` as its own model. */
export function extractTail(model: ModelProto, layout: ViTLayout, opts: TailOptions = {}): Tail {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  const form = opts.input ?? 'tokens';
  if (form !== 'tokens' && form !== 'row') throw usageError(`tail input must be 'tokens' or 'row' (got "${String(form)}")`);
  const last = layout.blocks[layout.blocks.length - 1];
  const from = opts.from ?? last?.output;
  if (!from) throw unsupported('the model has no transformer blocks, so it has no tail to extract.');
  const nodes = tailNodes(graph, from, layout.logits);

  const used = new Set<string>();
  for (const n of nodes) for (const i of n.input) if (i) used.add(i);
  const initializers: TensorProto[] = model.graph!.initializer.filter((t) => used.has(t.name));

  const dt = residualType(graph, from, layout);
  const bd = batchDim(layout);
  const T = layout.facts.tokens;
  const D = layout.facts.width;
  if (graph.hasTensor(TAIL_INPUT)) throw unsupported(`the model already has a tensor named "${TAIL_INPUT}"; rename it to extract the tail.`);
  const b = ed.builder('tail');
  const input = b.reserve(TAIL_INPUT);
  if (form === 'tokens') {
    b.op('Identity', [input], {}, from);
  } else {
    const row3 = b.unsqueeze(input, [1]); // [B,1,D]
    b.op('Expand', [row3, b.constI64([1, T, 1])], {}, from); // [B,T,D]
  }
  const outInfo = model.graph!.output.find((v) => v.name === layout.logits) ?? tensorValueInfo(layout.logits, dt, [bd, layout.facts.numClasses]);
  // A graph of its own (only the tail's nodes, initializers and value_info), named after the model's.
  const g = create(GraphProtoSchema, {
    name: `${model.graph!.name || 'model'}_tail`,
    node: [...b.nodes, ...nodes],
    input: [tensorValueInfo(input, dt, form === 'tokens' ? [bd, T, D] : [bd, D])],
    output: [outInfo],
    initializer: [...initializers, ...b.initializers],
    valueInfo: model.graph!.valueInfo.filter((v) => used.has(v.name) && v.name !== from),
  });
  const tailModel = copyMessage(ModelProtoSchema, model, { graph: g, metadataProps: [] });
  return { model: tailModel, input, output: layout.logits, inputForm: form, copiedNodes: nodes.length };
}
