// The attention locator: in a block's attention sub-block, the linears that write q, k and v (three
// separate ones, or one fused qkv linear of width 3*dim), the output projection after the Softmax,
// the head count and head dim, and every constant that encodes the head count (headShapes.ts).
// q and k are told apart by the scores MatMul (q on the left), v as the linear the scores do not read.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import type { AttentionLayout, LinearRef } from '../types.js';
import { inferHeads } from '../shapes.js';
import type { BlockDraft } from './blocks.js';
import { traceHeadShapes } from './headShapes.js';
import { forwardFrom } from './walk.js';

export interface AttentionContext {
  tokens: number;
  /** Fixed batch size of the image input, if any. */
  batch?: number;
  /** The model width (the residual stream's last dim). */
  width: number;
}

/** q and k among two linears: the scores MatMul (of two sub-block tensors) reads q's descendant on the left and k's on the right. */
function orderQk(g: Graph, nodes: NodeProto[], region: Set<string>, before: Set<string>, stops: Set<string>, a: LinearRef, b: LinearRef): [LinearRef, LinearRef] | undefined {
  for (const n of nodes) {
    if (n.opType !== 'MatMul' || !before.has(n.output[0]!) || n.input.some((i) => !i || !region.has(i))) continue;
    const left = g.ancestors([n.input[0]!], stops);
    const right = g.ancestors([n.input[1]!], stops);
    if (left.has(a.output) && right.has(b.output) && !left.has(b.output)) return [a, b];
    if (left.has(b.output) && right.has(a.output) && !left.has(a.output)) return [b, a];
  }
  return undefined;
}

/** The attention layout of one located block, or undefined when its linears are not q/k/v and a projection. */
export function locateAttention(g: Graph, order: NodeProto[], d: BlockDraft, linears: Map<string, LinearRef>, ctx: AttentionContext): AttentionLayout | undefined {
  const softmax = d.softmax;
  if (!softmax) return undefined;
  const nodes = order.filter((n) => n.output.some((o) => d.attnRegion.has(o)));
  const pos = new Map(nodes.map((n, i) => [n.output[0]!, i]));
  const inRegion = [...linears.values()].filter((l) => d.attnRegion.has(l.output));
  // Walks stay inside the sub-block: back to the block input, forward within the region.
  const stops = new Set([d.input]);
  const after = forwardFrom(g, softmax.output[0]!, (c) => c.output.filter((o) => d.attnRegion.has(o)));
  const post = inRegion.filter((l) => after.has(l.output));
  const pre = inRegion.filter((l) => !after.has(l.output));
  if (post.length === 0) return undefined;
  // The projection: the last linear after the Softmax (the one nearest the branch).
  const at = (l: LinearRef) => pos.get(g.producerOf(l.output)?.output[0] ?? '') ?? -1;
  const proj = post.reduce((p, l) => (at(l) > at(p) ? l : p));
  const dim = proj.inFeatures;
  const before = g.ancestors([softmax.input[0]!], stops);
  let qkv: Pick<AttentionLayout, 'form' | 'qkv' | 'q' | 'k' | 'v'>;
  if (pre.length === 1 && pre[0]!.outFeatures === 3 * dim) qkv = { form: 'fused', qkv: pre[0]! };
  else if (pre.length === 3 && pre.every((l) => l.outFeatures === dim)) {
    const v = pre.filter((l) => !before.has(l.output));
    if (v.length !== 1) return undefined;
    const [a, b] = pre.filter((l) => l !== v[0]) as [LinearRef, LinearRef];
    const qk = orderQk(g, nodes, d.attnRegion, before, stops, a, b);
    if (!qk) return undefined;
    qkv = { form: 'separate', q: qk[0], k: qk[1], v: v[0]! };
  } else return undefined;

  const heads = inferHeads(g, nodes, softmax, dim);
  const headDim = heads ? dim / heads : null;
  const out: AttentionLayout = { ...qkv, proj, heads, headDim, dim, softmax: softmax.output[0]!, headConstants: [], computedShapes: [], untraced: [] };
  if (qkv.form === 'fused') out.qkvOrder = null;
  if (heads && headDim) {
    const traced = traceHeadShapes(g, {
      input: d.input,
      width: ctx.width,
      tokens: ctx.tokens,
      batch: ctx.batch,
      heads,
      headDim,
      qkv: qkv.form === 'fused' ? [qkv.qkv!] : [qkv.q!, qkv.k!, qkv.v!],
      fused: qkv.form === 'fused',
      proj,
      nodes,
      softmax,
      beforeSoftmax: before,
      afterSoftmax: after,
    });
    out.headConstants = traced.headConstants;
    out.computedShapes = traced.computedShapes;
    out.untraced = traced.untraced;
    if (qkv.form === 'fused') out.qkvOrder = traced.qkvOrder;
  } else out.untraced = ['(head count unknown)'];
  return out;
}
