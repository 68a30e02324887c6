// The embedding locator: the patch-embedding Conv before the first block (the last one, after any
// hybrid stem), the image input it reads (NCHW, or NHWC through a Transpose), the extra tokens
// joined to the patches (class, distillation), the position embedding, and the token count.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import { attrInt, attrInts } from '../../onnx/attributes.js';
import type { Dim } from '../types.js';
import { constDims } from '../linear.js';
import { dataDescendants, dataSource, intersect } from './walk.js';

/** An extra token joined to the patches: its initializer, first row (NaN when after the patches) and row count. */
export interface ExtraToken {
  initializer?: string;
  offset: number;
  count: number;
}

export interface Embedding {
  conv: NodeProto;
  /** Output of the patch-embedding Conv. */
  convOut: string;
  input: string;
  inputDims: Dim[];
  channels: number;
  extras: ExtraToken[];
  numPatches: number;
  tokens: number;
  imageSize: [number, number];
  patchSize: number | null;
}

export function locateEmbedding(
  g: Graph,
  order: NodeProto[],
  firstInput: string,
  width: number,
  numBlocks: number,
  fail: (why: string) => never,
): Embedding {
  const embedRegion = g.ancestors([firstInput]);
  // The patch embedding is the last Conv before the first block (earlier ones form a hybrid stem).
  const convs = order.filter(
    (n) => n.opType === 'Conv' && embedRegion.has(n.output[0]!) && constDims(g, n.input[1] ?? '')?.length === 4 && !g.isConstant(n.input[0]!),
  );
  const conv = convs[convs.length - 1];
  if (!conv) fail(`${numBlocks} transformer block(s), but no patch-embedding Conv (4-D constant weight) before the first block`);
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
  const extras: ExtraToken[] = [];
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
  if (!Number.isFinite(numPatches)) fail(`${numBlocks} transformer block(s), but the number of patches is unknown (symbolic image size and no position embedding)`);
  const tokens = numPatches + extraTokens;
  const patchSize = kernel[0] === kernel[1] && kernel[0] === strides[0] && strides[0] === strides[1] ? kernel[0]! : null;
  return { conv: conv!, convOut, input: input!, inputDims, channels, extras, numPatches, tokens, imageSize, patchSize };
}
