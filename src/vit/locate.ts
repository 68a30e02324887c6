// The ViT layout locator: from the graph alone (structure and weight shapes, never node names) find
// every block's FFN, activation, norms, attention softmax and residual adds, plus the patch
// embedding, class token, final norm and classifier head, and report the model's facts.
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import { attrInt, attrInts } from '../onnx/attributes.js';
import { badInput, unsupported, usageError } from '../errors.js';
import type { BlockLayout, Dim, HeadChoice, LinearRef, NormRef, ViTFacts, ViTLayout } from './types.js';
import { DataType } from '../onnx/proto.js';
import { constDims, findLinears } from './linear.js';
import { LAYOUT_OPS, matchFfn, normAfter, type FfnMatch } from './patterns.js';
import { constInts, inferHeads, rankOf } from './shapes.js';
import { toNumbers } from '../onnx/tensor.js';

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

interface BlockDraft {
  ffn: FfnMatch;
  input: string;
  attnResidual: string;
  attnBranch: string;
  output: string;
  mlpBranch: string;
  softmax?: NodeProto;
  attnRegion: Set<string>;
}

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
  const drafts: BlockDraft[] = [];
  let ffnCount = 0;
  for (const l of linears.values()) {
    const ffn = matchFfn(g, l, linearByNode);
    if (!ffn) continue;
    ffnCount++;
    const d = draftBlock(g, ffn);
    if (d) drafts.push(d);
  }
  if (drafts.length === 0) {
    fail(ffnCount ? `${ffnCount} feed-forward pair(s) but none whose output is added to a residual stream that an attention branch also adds to` : 'no feed-forward pair (linear D->F, activation, linear F->D)');
  }
  const noSoftmax = drafts.filter((d) => !d.softmax);
  if (noSoftmax.length) fail(`${drafts.length} residual feed-forward block(s), but ${noSoftmax.length} of them has no Softmax in its attention branch`);
  drafts.sort((a, b) => pos.get(nodeOfLinear(g, a.ffn.fc1)!)! - pos.get(nodeOfLinear(g, b.ffn.fc1)!)!);

  const blocks: BlockLayout[] = drafts.map((d, index) => {
    const mlpRegion = g.ancestors([d.ffn.fc1.input], new Set([d.attnResidual]));
    const attnNorm = normAfter(g, d.input, (o) => d.attnRegion.has(o));
    const mlpNorm = normAfter(g, d.attnResidual, (o) => mlpRegion.has(o));
    const neuron = d.ffn.fc2.input;
    const r = rankOf(g, neuron);
    const neuronLayout: 'btf' | 'flat' = r === 2 || (r === undefined && d.ffn.fc1.kind === 'gemm') ? 'flat' : 'btf';
    const b: BlockLayout = {
      index,
      input: d.input,
      attnResidual: d.attnResidual,
      output: d.output,
      attnBranch: d.attnBranch,
      attnSoftmax: d.softmax!.output[0]!,
      mlpBranch: d.mlpBranch,
      fc1: d.ffn.fc1,
      activation: d.ffn.activation,
      neuron,
      neuronLayout,
      fc2: d.ffn.fc2,
    };
    if (attnNorm) b.attnNorm = attnNorm;
    if (mlpNorm) b.mlpNorm = mlpNorm;
    return b;
  });
  const first = blocks[0]!;
  const last = blocks[blocks.length - 1]!;
  const width = first.fc1.inFeatures;

  // ---- classifier head(s) and logits output ----
  const afterBlocks = g.descendants([last.output]);
  const readoutOf = (out: string) => findReadout(g, out, linears, afterBlocks);
  let logits: string;
  let readout: Readout;
  if (opts.output !== undefined) {
    if (!g.outputNames.includes(opts.output)) {
      throw usageError(`${label}: --output ${opts.output} is not an output of the model; its outputs are: ${g.outputNames.join(', ')}.`);
    }
    const r = readoutOf(opts.output);
    if (!r) throw unsupported(`${label}: output ${opts.output} is not written by a linear classifier head after the transformer blocks; pick the logits output with --output (outputs: ${g.outputNames.join(', ')}).`);
    logits = opts.output;
    readout = r;
  } else {
    const cands = g.outputNames.map((o) => ({ o, r: readoutOf(o), dims: g.shapeOf(o)?.dims })).filter((c) => c.r);
    if (cands.length === 0) {
      const probs = g.outputNames.find((o) => ['Softmax', 'LogSoftmax'].includes(g.producerOf(o)?.opType ?? '') && readoutOf(g.producerOf(o)!.input[0]!));
      if (probs) throw unsupported(`${label}: output ${probs} holds class probabilities (a Softmax after the classifier head); vitpath needs the logits. Re-export the model without the final softmax.`);
      const combined = g.outputNames.map((o) => describeCombination(g, o, linears, afterBlocks)).find((d) => d);
      if (combined) throw unsupported(`${label}: the logits output ${combined}; vitpath reads one linear head, or the average of a class-token head and a distillation-token head (DeiT).`);
    }
    if (cands.length === 0) fail(`${blocks.length} transformer block(s), but no graph output is written by a linear head reading them (outputs: ${g.outputNames.join(', ')})`);
    const ranked = cands.filter((c) => c.dims?.length === 2);
    const pick = (ranked.length ? ranked : cands)[0]!;
    logits = pick.o;
    readout = pick.r!;
  }
  const extraOutputs = g.outputNames.filter((o) => o !== logits);

  // ---- pooling and final norm between the last block and each head ----
  const tokenData = dataDescendants(g, last.output);
  const pools = readout.heads.map((h) => {
    const headPath = intersect(g.ancestors([h.input]), afterBlocks);
    const pathNodes = order.filter((n) => n.output.some((o) => headPath.has(o)));
    let pool: Pooling | undefined;
    for (const n of pathNodes.filter((x) => tokenData.has(x.input[0] ?? ''))) {
      pool = poolingOf(g, n, label);
      if (pool) break;
    }
    return { head: h, headPath, pathNodes, pool };
  });
  const unpooled = pools.find((p) => !p.pool);
  if (unpooled) fail(`${blocks.length} transformer block(s) and a head, but no token pooling between them (a Gather/Slice of one token or a ReduceMean over tokens)`);
  if (pools.length > 1 && !pools.every((p) => p.pool!.kind === 'cls')) {
    throw unsupported(`${label}: the logits average ${pools.length} heads pooled by ${pools.map((p) => (p.pool!.kind === 'cls' ? `token row ${p.pool!.row}` : 'mean')).join(' and ')}; vitpath reads a class-token head averaged with a distillation-token head (DeiT), each reading one token row.`);
  }
  const rowsRead = new Set(pools.map((p) => p.pool!.row));
  if (rowsRead.size !== pools.length) throw unsupported(`${label}: the logits average ${pools.length} heads that read the same token row ${[...rowsRead].join(', ')}; vitpath reads a class-token head averaged with a distillation-token head (DeiT).`);
  // The class head reads the lowest row (DeiT joins [class, distillation, patches]).
  pools.sort((a, b) => a.pool!.row - b.pool!.row);
  const main = pools[0]!;
  const head = main.head;
  const pooling: 'cls' | 'mean' = main.pool!.kind;
  const poolRow = main.pool!.row;
  let finalNorm: NormRef | undefined;
  for (const t of [last.output, ...main.pathNodes.flatMap((n) => n.output)]) {
    if (!main.headPath.has(t)) continue;
    finalNorm = normAfter(g, t, (o) => main.headPath.has(o));
    if (finalNorm) break;
  }

  // ---- patch embedding, image input, tokens ----
  const embedRegion = g.ancestors([first.input]);
  // The patch embedding is the last Conv before the first block (earlier ones form a hybrid stem).
  const convs = order.filter(
    (n) => n.opType === 'Conv' && embedRegion.has(n.output[0]!) && constDims(g, n.input[1] ?? '')?.length === 4 && !g.isConstant(n.input[0]!),
  );
  const conv = convs[convs.length - 1];
  if (!conv) fail(`${blocks.length} transformer block(s), but no patch-embedding Conv (4-D constant weight) before the first block`);
  const convW = constDims(g, conv!.input[1]!)!;
  const convIn = g.ancestors([conv!.input[0]!]);
  const input = g.inputNames.find((i) => convIn.has(i));
  if (!input) fail('the patch-embedding Conv does not read a graph input');
  const inputDims: Dim[] = (g.shapeOf(input!)?.dims ?? []).map((d) => d ?? '?');
  // The image as the Conv sees it: NHWC inputs reach it through a Transpose (e.g. Keras exports).
  const toConv = intersect(convIn, dataDescendants(g, input!));
  const hybrid = convs.some((c) => c !== conv && toConv.has(c.output[0]!));
  const perms = order.filter((n) => n.opType === 'Transpose' && toConv.has(n.output[0]!)).map((n) => attrInts(n, 'perm'));
  const nchw: Dim[] = perms.length === 1 && perms[0]?.length === 4 && inputDims.length === 4 ? perms[0].map((k) => inputDims[k]!) : inputDims;
  const convOut = conv!.output[0]!;
  const afterConv = dataDescendants(g, convOut);
  const kernel = attrInts(conv!, 'kernel_shape') ?? convW.slice(2);
  const strides = attrInts(conv!, 'strides') ?? [1, 1];
  const pads = attrInts(conv!, 'pads') ?? [0, 0, 0, 0];
  const dil = attrInts(conv!, 'dilations') ?? [1, 1];
  const channels = convW[1]! * attrInt(conv!, 'group', 1);

  // Extra tokens concatenated to the patches on the token axis (class token, distillation token).
  const extras: { initializer?: string; offset: number; count: number }[] = [];
  const concat = order.find((n) => n.opType === 'Concat' && embedRegion.has(n.output[0]!) && afterConv.has(n.output[0]!) && n.input.some((i) => !afterConv.has(i)));
  if (concat) {
    let offset = 0;
    for (const i of concat.input) {
      if (afterConv.has(i)) {
        offset += NaN; // unknown until numPatches is known; extras after the patches are rare
        continue;
      }
      const init = dataSource(g, i);
      const d = init ? constDims(g, init) : undefined;
      const count = d ? d[d.length - 2]! : 1;
      extras.push({ initializer: init, offset, count });
      offset += count;
    }
  }
  const extraTokens = extras.reduce((a, e) => a + e.count, 0);

  // Position embedding: a constant [1,T,D] or [T,D] added before the first block, after the extra
  // tokens are joined (T = all tokens) or before (T = patches only, timm's no_embed_class).
  let posTokens: number | undefined;
  const afterConcat = concat ? g.descendants([concat.output[0]!]) : undefined;
  for (const n of order) {
    if (n.opType !== 'Add' || !embedRegion.has(n.output[0]!) || !afterConv.has(n.output[0]!)) continue;
    for (const i of n.input) {
      const d = g.isConstant(i) ? constDims(g, i) : undefined;
      if (d && d.length >= 2 && d[d.length - 1] === width && d.slice(0, -2).every((x) => x === 1) && d[d.length - 2]! > 1) {
        posTokens = d[d.length - 2]! + (afterConcat && !afterConcat.has(n.output[0]!) ? extraTokens : 0);
      }
    }
  }

  const [H, W] = [nchw[2], nchw[3]];
  let numPatches: number;
  let imageSize: [number, number];
  const outSide = (size: number, axis: 0 | 1) => Math.floor((size + pads[axis]! + pads[axis + 2]! - dil[axis]! * (kernel[axis]! - 1) - 1) / strides[axis]!) + 1;
  const known = typeof H === 'number' && typeof W === 'number';
  if (known && !hybrid) numPatches = outSide(H, 0) * outSide(W, 1);
  else numPatches = posTokens !== undefined ? posTokens - extraTokens : NaN;
  if (known) imageSize = [H, W];
  else {
    const side = Math.round(Math.sqrt(numPatches));
    imageSize = [side * strides[0]!, side * strides[1]!];
  }
  if (!Number.isFinite(numPatches)) fail(`${blocks.length} transformer block(s), but the number of patches is unknown (symbolic image size and no position embedding)`);
  const tokens = numPatches + extraTokens;
  const patchSize = kernel[0] === kernel[1] && kernel[0] === strides[0] && strides[0] === strides[1] ? kernel[0]! : null;

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
    const { start, end } = main.pool!;
    const norm = (v: number) => Math.max(0, Math.min(tokens, v < 0 ? v + tokens : v));
    meanRows = { start: norm(start), end: norm(end) };
    if (meanRows.end - meanRows.start < 1) fail(`the head averages token rows ${start}..${end}, which hold no token of the ${tokens}`);
  }
  let distillation: ViTLayout['distillation'];
  if (pools.length === 2) {
    const dist = pools[1]!;
    const e = extras.find((x) => x.offset === dist.pool!.row);
    distillation = {
      row: dist.pool!.row,
      clsHead: head,
      clsLogits: head.output,
      distHead: dist.head,
      distLogits: dist.head.output,
      averaged: logits,
    };
    if (e?.initializer) distillation.initializer = e.initializer;
  }

  // ---- heads ----
  const d0 = drafts[0]!;
  const regionNodes = order.filter((n) => n.output.some((o) => d0.attnRegion.has(o)));
  const heads = inferHeads(g, regionNodes, d0.softmax, width);

  const batchDim = inputDims[0];
  const facts: ViTFacts = {
    numBlocks: blocks.length,
    width,
    ffnWidth: Math.max(...blocks.map((b) => b.fc1.outFeatures)),
    heads,
    tokens,
    numPatches,
    patchSize,
    imageSize,
    channels,
    numClasses: head.outFeatures,
    batch: typeof batchDim === 'number' ? batchDim : 'dynamic',
    opset: g.opset,
    irVersion: Number(model.irVersion),
    producer: model.producerName,
    pooling: pooling!,
  };
  const layout: ViTLayout = {
    facts,
    input: input!,
    inputDims,
    logits,
    extraOutputs,
    patchEmbed: { node: conv!.name, weight: conv!.input[1]!, output: convOut },
    blocks,
    pooled: head.input,
    head,
  };
  if (conv!.input[2]) layout.patchEmbed.bias = conv!.input[2];
  if (classToken) layout.classToken = classToken;
  if (meanRows) layout.meanRows = meanRows;
  if (distillation) {
    layout.distillation = distillation;
    layout.readout = 'avg';
  }
  if (finalNorm) layout.finalNorm = finalNorm;
  const stored = head.weight ? g.initializers.get(head.weight)?.dataType : undefined;
  if (stored === DataType.FLOAT16) layout.precision = { stored: 'float16', analysed: 'float32' };
  return opts.head ? selectReadout(layout, opts.head, label) : layout;
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

/** The linear head(s) a logits tensor is read from: one, or two whose average it is (DeiT). */
interface Readout {
  heads: LinearRef[];
}

/** The linear layer after the blocks that writes `out`, through layout-only ops. */
function singleHead(g: Graph, out: string, linears: Map<string, LinearRef>, afterBlocks: Set<string>): LinearRef | undefined {
  let t = out;
  for (let k = 0; k < 8; k++) {
    const l = linears.get(t);
    if (l) return afterBlocks.has(l.input) ? l : undefined;
    const p = g.producerOf(t);
    if (!p || !LAYOUT_OPS.has(p.opType) || !p.input[0]) return undefined;
    t = p.input[0];
  }
  return undefined;
}

/** `out` back through layout-only ops to the first node that computes. */
function computingProducer(g: Graph, out: string): NodeProto | undefined {
  let t = out;
  for (let k = 0; k < 8; k++) {
    const p = g.producerOf(t);
    if (!p || !LAYOUT_OPS.has(p.opType) || !p.input[0]) return p;
    t = p.input[0];
  }
  return undefined;
}

function scalarConst(g: Graph, name: string | undefined): number | undefined {
  if (!name || !g.isConstant(name)) return undefined;
  const v = g.constantValue(name);
  if (!v || v.data.length !== 1) return undefined;
  return toNumbers(v)[0];
}

/** One head, or the average of two: (a + b) / 2, (a + b) * 0.5, or Mean(a, b). */
function findReadout(g: Graph, out: string, linears: Map<string, LinearRef>, afterBlocks: Set<string>): Readout | undefined {
  const one = singleHead(g, out, linears, afterBlocks);
  if (one) return { heads: [one] };
  const p = computingProducer(g, out);
  if (!p) return undefined;
  let pair: string[] | undefined;
  if (p.opType === 'Mean' && p.input.length === 2) pair = [...p.input];
  else if ((p.opType === 'Div' && scalarConst(g, p.input[1]) === 2) || (p.opType === 'Mul' && p.input.some((i) => scalarConst(g, i) === 0.5))) {
    const sum = p.input.find((i) => !g.isConstant(i));
    const q = sum ? computingProducer(g, sum) : undefined;
    if (q?.opType === 'Add' && q.input.length === 2 && q.input.every((i) => i && !g.isConstant(i))) pair = [...q.input];
  }
  if (!pair) return undefined;
  const heads = pair.map((t) => singleHead(g, t, linears, afterBlocks));
  if (heads.some((h) => !h) || heads[0] === heads[1]) return undefined;
  return { heads: heads as LinearRef[] };
}

/** For messages: an output computed from linear heads in a way vitpath does not read (a sum, a concat, ...). */
function describeCombination(g: Graph, out: string, linears: Map<string, LinearRef>, afterBlocks: Set<string>): string | undefined {
  const p = computingProducer(g, out);
  if (!p) return undefined;
  const heads = [...g.ancestors([out])].map((t) => linears.get(t)).filter((l): l is LinearRef => !!l && afterBlocks.has(l.input));
  if (heads.length === 0) return undefined;
  return `"${out}" is computed by ${p.opType} from ${heads.length} linear head(s) (${heads.map((h) => `${h.inFeatures}->${h.outFeatures}`).join(', ')})`;
}

/** The MatMul/Gemm node of a linear (its output is the node's output, or the bias Add's input). */
function nodeOfLinear(g: Graph, l: LinearRef): NodeProto | undefined {
  const p = g.producerOf(l.output);
  if (!p) return undefined;
  if (p.opType === 'MatMul' || p.opType === 'Gemm') return p;
  for (const i of p.input) {
    const q = g.producerOf(i);
    if (q && (q.opType === 'MatMul' || q.opType === 'Gemm') && q.input[1] === l.weight) return q;
  }
  return undefined;
}

/** From an FFN, follow fc2's output to the residual Add, then back to the attention residual Add. */
function draftBlock(g: Graph, ffn: FfnMatch): BlockDraft | undefined {
  let t = ffn.fc2.output;
  let add: NodeProto | undefined;
  for (let k = 0; k < 6 && !add; k++) {
    const cs = g.consumersOf(t);
    if (cs.length !== 1) return undefined;
    const c = cs[0]!;
    if (c.opType === 'Add' && c.input.every((i) => i && !g.isConstant(i))) add = c;
    else if (LAYOUT_OPS.has(c.opType) && c.input[0] === t) t = c.output[0]!;
    else if (c.opType === 'Mul' && c.input.some((i) => i !== t && g.isConstant(i))) t = c.output[0]!; // layer scale
    else return undefined;
  }
  if (!add) return undefined;
  const mlpBranch = t;
  const attnResidual = add.input[0] === t ? add.input[1]! : add.input[0]!;
  const pa = g.producerOf(attnResidual);
  if (!pa || pa.opType !== 'Add' || pa.input.length !== 2 || pa.input.some((i) => !i || g.isConstant(i))) return undefined;
  const [a, b] = pa.input as [string, string];
  let input: string;
  let attnBranch: string;
  if (g.ancestors([b]).has(a)) [input, attnBranch] = [a, b];
  else if (g.ancestors([a]).has(b)) [input, attnBranch] = [b, a];
  else return undefined;
  const attnRegion = intersect(g.ancestors([attnBranch], new Set([input])), g.descendants([input]));
  attnRegion.delete(input);
  const softmaxes = g.nodes.filter((n) => n.opType === 'Softmax' && attnRegion.has(n.output[0]!));
  return { ffn, input, attnResidual, attnBranch, output: add.output[0]!, mlpBranch, softmax: softmaxes[softmaxes.length - 1], attnRegion };
}

/** Tensors computed from `src`'s values (not merely from its shape, so Shape/Size end the walk). */
function dataDescendants(g: Graph, src: string): Set<string> {
  const seen = new Set<string>();
  const stack = [src];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const c of g.consumersOf(s)) {
      if (c.opType === 'Shape' || c.opType === 'Size') continue;
      if ((c.opType === 'Expand' || c.opType === 'Reshape' || c.opType === 'Tile') && c.input[0] !== s) continue;
      for (const o of c.output) if (o) stack.push(o);
    }
  }
  return seen;
}

/** The constant a token tensor is copied from: back through Expand/Tile/Reshape/Cast/Identity data inputs. */
function dataSource(g: Graph, t: string): string | undefined {
  for (let k = 0; k < 8; k++) {
    if (g.isConstant(t)) return t;
    const p = g.producerOf(t);
    if (!p || !['Expand', 'Tile', 'Reshape', 'Cast', 'Identity', 'Unsqueeze'].includes(p.opType) || !p.input[0]) return undefined;
    t = p.input[0];
  }
  return undefined;
}

/** Token pooling: one row (cls), or the mean over rows [start, end) (end may be huge or negative, as Slice allows). */
interface Pooling {
  kind: 'cls' | 'mean';
  row: number;
  start: number;
  end: number;
}

/** Whether node `n` pools tokens: a Gather/Slice of one token (cls) or a ReduceMean over tokens (of all rows, or of a Slice of them). */
function poolingOf(g: Graph, n: NodeProto, label = 'model'): Pooling | undefined {
  const rank = rankOf(g, n.input[0] ?? '');
  const tokenAxis = (axis: number) => axis === 1 || (rank !== undefined && rank >= 3 && axis === rank - 2) || (rank === 3 && axis === -2);
  /** The token rows a Slice keeps: undefined when it leaves the token axis whole, 'unreadable' when it is not a plain range of it. */
  const tokenSlice = (s: NodeProto): { start: number; end: number } | 'unreadable' | undefined => {
    const starts = attrInts(s, 'starts') ?? constInts(g, s.input[1]);
    const ends = attrInts(s, 'ends') ?? constInts(g, s.input[2]);
    const axes = attrInts(s, 'axes') ?? constInts(g, s.input[3]) ?? starts?.map((_, i) => i);
    const steps = !attrInts(s, 'starts') && s.input[4] ? constInts(g, s.input[4]) : undefined;
    if (!starts || !ends || !axes) return 'unreadable';
    const k = axes.findIndex((a) => tokenAxis(a));
    if (k < 0) return undefined;
    if (steps && steps[k] !== 1) return 'unreadable';
    return { start: starts[k]!, end: ends[k]! };
  };
  if (n.opType === 'Gather') {
    const idx = constInts(g, n.input[1]);
    if (idx && idx.length === 1 && tokenAxis(attrInt(n, 'axis', 0))) return { kind: 'cls', row: idx[0]!, start: idx[0]!, end: idx[0]! + 1 };
  }
  if (n.opType === 'Slice') {
    const sl = tokenSlice(n);
    if (sl && sl !== 'unreadable' && sl.end - sl.start === 1) return { kind: 'cls', row: sl.start, start: sl.start, end: sl.end };
  }
  if (n.opType === 'ReduceMean') {
    const axes = attrInts(n, 'axes') ?? constInts(g, n.input[1]);
    if (axes && axes.length === 1 && tokenAxis(axes[0]!)) {
      const p = g.producerOf(n.input[0] ?? '');
      const sl = p?.opType === 'Slice' ? tokenSlice(p) : undefined;
      if (sl === 'unreadable') {
        throw unsupported(`${label}: the head averages tokens after a Slice that is not a plain range of token rows (node "${p!.name || p!.output[0]}"); vitpath reads a mean over all tokens or over rows start..end.`);
      }
      return { kind: 'mean', row: 0, start: sl?.start ?? 0, end: sl?.end ?? Number.MAX_SAFE_INTEGER };
    }
  }
  return undefined;
}

function intersect<T>(a: Set<T>, b: Set<T>): Set<T> {
  const out = new Set<T>();
  for (const x of a) if (b.has(x)) out.add(x);
  return out;
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
