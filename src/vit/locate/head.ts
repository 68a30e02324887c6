// The head locator: the graph output holding the logits and the linear classifier head(s) that
// write it after the blocks: one head, or the average of a class-token head and a distillation-
// token head (DeiT), read through layout-only ops. Explains outputs it cannot read (probabilities,
// other combinations of heads).
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';
import { toNumbers } from '../../onnx/tensor.js';
import { unsupported, usageError } from '../../errors.js';
import type { LinearRef } from '../types.js';
import { LAYOUT_OPS } from '../patterns.js';

/** The linear head(s) a logits tensor is read from: one, or two whose average it is (DeiT). */
export interface Readout {
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

/**
 * The logits output (`output` when given, else the [batch, classes] output a linear head after the
 * blocks writes) and the head(s) it is read from. `afterBlocks`: tensors after the last block.
 */
export function locateLogits(
  g: Graph,
  linears: Map<string, LinearRef>,
  afterBlocks: Set<string>,
  opts: { output?: string; label: string; numBlocks: number },
  fail: (why: string) => never,
): { logits: string; readout: Readout } {
  const { label } = opts;
  const readoutOf = (out: string) => findReadout(g, out, linears, afterBlocks);
  if (opts.output !== undefined) {
    if (!g.outputNames.includes(opts.output)) {
      throw usageError(`${label}: --output ${opts.output} is not an output of the model; its outputs are: ${g.outputNames.join(', ')}.`);
    }
    const r = readoutOf(opts.output);
    if (!r) throw unsupported(`${label}: output ${opts.output} is not written by a linear classifier head after the transformer blocks; pick the logits output with --output (outputs: ${g.outputNames.join(', ')}).`);
    return { logits: opts.output, readout: r };
  }
  const cands = g.outputNames.map((o) => ({ o, r: readoutOf(o), dims: g.shapeOf(o)?.dims })).filter((c) => c.r);
  if (cands.length === 0) {
    const probs = g.outputNames.find((o) => ['Softmax', 'LogSoftmax'].includes(g.producerOf(o)?.opType ?? '') && readoutOf(g.producerOf(o)!.input[0]!));
    if (probs) throw unsupported(`${label}: output ${probs} holds class probabilities (a Softmax after the classifier head); vitpath needs the logits. Re-export the model without the final softmax.`);
    const combined = g.outputNames.map((o) => describeCombination(g, o, linears, afterBlocks)).find((d) => d);
    if (combined) throw unsupported(`${label}: the logits output ${combined}; vitpath reads one linear head, or the average of a class-token head and a distillation-token head (DeiT).`);
  }
  if (cands.length === 0) fail(`${opts.numBlocks} transformer block(s), but no graph output is written by a linear head reading them (outputs: ${g.outputNames.join(', ')})`);
  const ranked = cands.filter((c) => c.dims?.length === 2);
  const pick = (ranked.length ? ranked : cands)[0]!;
  return { logits: pick.o, readout: pick.r! };
}
