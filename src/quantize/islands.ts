// The nodes float16 mode keeps in float32: every normalization (LayerNormalization, BatchNorm, or a
// decomposed LayerNorm: the nodes between the norm's input and output, ReduceMean/Sub/Pow/Sqrt/Div
// included), every Softmax / LogSoftmax (attention probabilities; the objective), and the residual
// stream's Adds (so the stream, and every norm's input, stays float32: residual outliers keep their
// precision, and ONNX Runtime's LayerNorm fusion never meets a float16 -> float32 Cast inside a
// decomposed LayerNorm, which it fuses into a node of mismatched types), and the classifier head.
import type { NodeProto } from '../onnx/proto.js';
import type { Graph } from '../onnx/graph.js';
import type { NormRef, ViTLayout } from '../vit/types.js';

const FLOAT32_OPS = new Set(['LayerNormalization', 'BatchNormalization', 'Softmax', 'LogSoftmax', 'GroupNormalization', 'InstanceNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization']);

export function float32Islands(g: Graph, layout: ViTLayout): Set<NodeProto> {
  const keep = new Set<NodeProto>(g.nodes.filter((n) => FLOAT32_OPS.has(n.opType)));
  const norms: NormRef[] = [];
  for (const b of layout.blocks) for (const n of [b.attnNorm, b.mlpNorm]) if (n) norms.push(n);
  if (layout.finalNorm) norms.push(layout.finalNorm);
  for (const b of layout.blocks) {
    for (const t of [b.input, b.attnResidual, b.output]) {
      const p = g.producerOf(t);
      if (p && p.opType === 'Add') keep.add(p);
    }
  }
  // The classifier head: logits of magnitude ~10 would carry float16's 2^-7 relative step into the probabilities.
  const headOut = g.producerOf(layout.head.output);
  if (headOut) {
    keep.add(headOut);
    for (const i of headOut.input) {
      const p = g.producerOf(i);
      if (p && (p.opType === 'MatMul' || p.opType === 'Gemm') && p.input.includes(layout.head.weight)) keep.add(p);
    }
  }
  for (const norm of norms) {
    const inside = g.ancestors([norm.output], new Set([norm.input]));
    const below = g.descendants([norm.input]);
    for (const t of inside) {
      if (t === norm.input || !below.has(t)) continue;
      const p = g.producerOf(t);
      if (p) keep.add(p);
    }
  }
  return keep;
}
