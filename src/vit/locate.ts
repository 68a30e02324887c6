// The ViT layout locator: from the graph alone (structure and weight shapes, never node names) find
// every block's FFN, attention, norms and residual adds, plus the patch embedding, class token,
// final norm and classifier head, and report the model's facts. The parts are found by the
// locators in locate/ (blocks, attention, head, pooling, embedding); this module joins them.
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import { badInput, unsupported, usageError } from '../errors.js';
import type { HeadChoice, LinearRef, ViTFacts, ViTLayout } from './types.js';
import { DataType } from '../onnx/proto.js';
import { findLinears } from './linear.js';
import { inferHeads } from './shapes.js';
import { locateBlocks, nodeOfLinear } from './locate/blocks.js';
import { locateLogits } from './locate/head.js';
import { locatePooling } from './locate/pooling.js';
import { locateEmbedding } from './locate/embedding.js';
import { locateAttention } from './locate/attention.js';
import { namedLinears } from './locate/linears.js';

export interface LocateOptions {
  /** Graph output holding the logits; by default the [batch, classes] output a classifier head writes. */
  output?: string;
  /** How messages name the model (usually its path). */
  label?: string;
  /** Distilled models (DeiT): read the average of both heads (default), or one head. */
  head?: HeadChoice;
}

const WHAT_WE_LOOK_FOR =
  'transformer blocks (a linear D->F, a GELU/ReLU activation, a linear F->D added to a residual stream, after an attention Softmax added to the same stream), a patch-embedding Conv on the image input and a linear classifier head';

/** Locate the parts of a Vision Transformer in `model`. Throws exit-code-3 errors when it cannot. */
export function locateVit(model: ModelProto, opts: LocateOptions = {}): ViTLayout {
  const label = opts.label ?? 'model';
  const g = new Graph(model);
  let order: NodeProto[];
  try {
    order = g.topologicalOrder();
  } catch (e) {
    throw badInput(`${label}: the graph is malformed (${(e as Error).message}); it is not a valid ONNX model. Re-export it, or check it with onnx.checker.`, e);
  }
  const pos = new Map(order.map((n, i) => [n, i]));
  const linears = findLinears(g);
  const linearByNode = new Map<NodeProto, LinearRef>();
  for (const l of linears.values()) {
    const n = nodeOfLinear(g, l);
    if (n) linearByNode.set(n, l);
  }
  const fail = (why: string): never => {
    throw unsupported(`${label}: no Vision Transformer found: ${why}. Looked for ${WHAT_WE_LOOK_FOR}; found ${inventory(g, linears)}. vitpath works on ViT-style image classifiers exported to ONNX (torch.onnx.export, optimum, timm).`);
  };

  // ---- FFNs that feed a residual Add, and the attention sub-block before each ----
  const { drafts, blocks } = locateBlocks(g, pos, linears, linearByNode, fail);
  const first = blocks[0]!;
  const last = blocks[blocks.length - 1]!;
  const width = first.fc1.inFeatures;

  // ---- classifier head(s) and logits output ----
  const afterBlocks = g.descendants([last.output]);
  const { logits, readout } = locateLogits(g, linears, afterBlocks, { output: opts.output, label, numBlocks: blocks.length }, fail);
  const extraOutputs = g.outputNames.filter((o) => o !== logits);

  // ---- pooling and final norm between the last block and each head ----
  const { pools, finalNorm } = locatePooling(g, order, last.output, readout.heads, afterBlocks, { label, numBlocks: blocks.length }, fail);
  const main = pools[0]!;
  const head = main.head;
  const pooling: 'cls' | 'mean' = main.pool.kind;
  const poolRow = main.pool.row;

  // ---- patch embedding, image input, tokens ----
  const emb = locateEmbedding(g, order, first.input, width, blocks.length, fail);
  const { extras, tokens, inputDims } = emb;

  let classToken: ViTLayout['classToken'];
  if (pooling === 'cls') {
    const e = extras.find((x) => x.offset === poolRow) ?? extras[0];
    if (e?.initializer) classToken = { initializer: e.initializer, row: Number.isNaN(e.offset) ? poolRow : e.offset };
  } else if (extras[0]?.initializer && extras[0].offset === 0 && extras[0].count === 1) {
    // Mean pooling with a class token joined anyway: the token still exists (--token cls reads it).
    classToken = { initializer: extras[0].initializer, row: 0 };
  }
  let meanRows: ViTLayout['meanRows'];
  if (pooling === 'mean') {
    const { start, end } = main.pool;
    const norm = (v: number) => Math.max(0, Math.min(tokens, v < 0 ? v + tokens : v));
    meanRows = { start: norm(start), end: norm(end) };
    if (meanRows.end - meanRows.start < 1) fail(`the head averages token rows ${start}..${end}, which hold no token of the ${tokens}`);
  }
  let distillation: ViTLayout['distillation'];
  if (pools.length === 2) {
    const dist = pools[1]!;
    const e = extras.find((x) => x.offset === dist.pool.row);
    distillation = {
      row: dist.pool.row,
      clsHead: head,
      clsLogits: head.output,
      distHead: dist.head,
      distLogits: dist.head.output,
      averaged: logits,
    };
    if (e?.initializer) distillation.initializer = e.initializer;
  }

  // ---- attention: q/k/v (or fused qkv), projection and head split of every block ----
  const batchDim = inputDims[0];
  const batch = typeof batchDim === 'number' ? batchDim : undefined;
  drafts.forEach((d, l) => {
    const attention = locateAttention(g, order, d, linears, { tokens, batch, width });
    if (attention) blocks[l]!.attention = attention;
  });
  // The model's head count: block 0's (as found before attention was located, when it was not).
  const d0 = drafts[0]!;
  const heads = first.attention ? first.attention.heads : inferHeads(g, order.filter((n) => n.output.some((o) => d0.attnRegion.has(o))), d0.softmax, width);

  const facts: ViTFacts = {
    numBlocks: blocks.length,
    width,
    ffnWidth: Math.max(...blocks.map((b) => b.fc1.outFeatures)),
    heads,
    tokens,
    numPatches: emb.numPatches,
    patchSize: emb.patchSize,
    imageSize: emb.imageSize,
    channels: emb.channels,
    numClasses: head.outFeatures,
    batch: typeof batchDim === 'number' ? batchDim : 'dynamic',
    opset: g.opset,
    irVersion: Number(model.irVersion),
    producer: model.producerName,
    pooling: pooling!,
  };
  const conv = emb.conv;
  // `linears` is set last, so it follows the other parts in reports.
  const layout: Omit<ViTLayout, 'linears'> = {
    facts,
    input: emb.input,
    inputDims,
    logits,
    extraOutputs,
    patchEmbed: { node: conv.name, weight: conv.input[1]!, output: emb.convOut },
    blocks,
    pooled: head.input,
    head,
  };
  if (conv.input[2]) layout.patchEmbed.bias = conv.input[2];
  if (classToken) layout.classToken = classToken;
  if (meanRows) layout.meanRows = meanRows;
  if (distillation) {
    layout.distillation = distillation;
    layout.readout = 'avg';
  }
  if (finalNorm) layout.finalNorm = finalNorm;
  const stored = head.weight ? g.initializers.get(head.weight)?.dataType : undefined;
  if (stored === DataType.FLOAT16) layout.precision = { stored: 'float16', analysed: 'float32' };
  const located: ViTLayout = Object.assign(layout, { linears: namedLinears(layout, conv, g) });
  return opts.head ? selectReadout(located, opts.head, label) : located;
}

/**
 * The layout reading one head of a distilled model: `logits` becomes that head's output (an inner
 * tensor), `head`/`pooled` its linear. 'avg' keeps the model's output. Usage error on a model
 * without a distillation head unless 'avg' (the only readout such a model has).
 */
export function selectReadout(layout: ViTLayout, choice: HeadChoice, label = 'model'): ViTLayout {
  const d = layout.distillation;
  if (!d) {
    if (choice === 'avg') return layout;
    throw usageError(`${label}: --head ${choice} needs a model with a class head and a distillation head (DeiT); this model has one head.`);
  }
  if (choice === 'avg') return { ...layout, logits: d.averaged, head: d.clsHead, pooled: d.clsHead.input, readout: 'avg' };
  const h = choice === 'cls' ? d.clsHead : d.distHead;
  return { ...layout, logits: choice === 'cls' ? d.clsLogits : d.distLogits, head: h, pooled: h.input, readout: choice };
}

/** A short description of what the graph holds, for "not a transformer" messages. */
function inventory(g: Graph, linears: Map<string, LinearRef>): string {
  const count = (op: string) => g.nodes.filter((n) => n.opType === op).length;
  const lin = [...linears.values()];
  const shapes = lin.slice(0, 6).map((l) => `${l.inFeatures}->${l.outFeatures}`);
  const acts = ['Erf', 'Tanh', 'Gelu', 'Relu'].map((op) => [op, count(op)] as const).filter(([, c]) => c > 0);
  const parts = [
    `${g.nodes.length} nodes`,
    `${lin.length} linear layer(s)${lin.length ? ` (${shapes.join(', ')}${lin.length > 6 ? ', ...' : ''})` : ''}`,
    `${count('Softmax')} Softmax`,
    `${count('Conv')} Conv`,
    acts.length ? acts.map(([op, c]) => `${c} ${op}`).join(', ') : 'no GELU/ReLU activation',
  ];
  return parts.join(', ');
}
