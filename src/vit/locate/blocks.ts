// The blocks locator: every FFN (fc1 -> activation -> fc2) whose output is added to a residual
// stream that an attention branch (holding a Softmax) also adds to, in graph order, with the
// block's norms and neuron tensor.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import type { BlockLayout, LinearRef } from '../types.js';
import { LAYOUT_OPS, matchFfn, normAfter, type FfnMatch } from '../patterns.js';
import { rankOf } from '../shapes.js';
import { intersect } from './walk.js';

export interface BlockDraft {
  ffn: FfnMatch;
  input: string;
  attnResidual: string;
  attnBranch: string;
  output: string;
  mlpBranch: string;
  softmax?: NodeProto;
  /** Tensors between the block input (excluded) and the attention branch: the attention sub-block. */
  attnRegion: Set<string>;
}

/** The MatMul/Gemm node of a linear (its output is the node's output, or the bias Add's input). */
export function nodeOfLinear(g: Graph, l: LinearRef): NodeProto | undefined {
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

/**
 * The blocks in graph order (by fc1), each with its draft (attention region, softmax). Throws via
 * `fail` when no residual FFN is found, or one has no Softmax in its attention branch.
 */
export function locateBlocks(
  g: Graph,
  pos: Map<NodeProto, number>,
  linears: Map<string, LinearRef>,
  linearByNode: Map<NodeProto, LinearRef>,
  fail: (why: string) => never,
): { drafts: BlockDraft[]; blocks: BlockLayout[] } {
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
  return { drafts, blocks };
}
