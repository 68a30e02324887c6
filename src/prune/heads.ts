// Attention-head removal as a physical graph edit: head h of a block is output features
// [h*d, (h+1)*d) of q, k and v (of each of the three chunks of a fused qkv) with their bias entries,
// and the same input features (rows) of the output projection; every constant the attention
// locator found encoding the head count (Reshape targets, Split sizes, Slice bounds) is rewritten
// for the heads kept (forked for its reader when other nodes share it). Equal to zeroing those
// heads' outputs before the projection.
import type { GraphEditor } from '../onnx/edit.js';
import { makeAttr } from '../onnx/attributes.js';
import { DataType, type NodeProto } from '../onnx/proto.js';
import { toNumbers } from '../onnx/tensor.js';
import { tensorValueInfo } from '../onnx/builder.js';
import { valueInfoShape } from '../onnx/graph.js';
import type { AttentionLayout, BlockLayout } from '../vit/types.js';
import { keepInputs, keepOutputs } from './slice.js';
import { unsupported } from '../errors.js';

/** The block's attention, checked prunable: located, head count known, every head-count constant found. */
export function prunableAttention(block: BlockLayout, label = 'model'): AttentionLayout & { heads: number; headDim: number } {
  const a = block.attention;
  if (!a) throw unsupported(`${label}: block ${block.index}'s attention linears were not located as q/k/v (or fused qkv) and a projection; its heads cannot be pruned.`);
  if (!a.heads || !a.headDim) throw unsupported(`${label}: block ${block.index}: the head count of its attention is unknown; its heads cannot be pruned.`);
  if (a.untraced.length) throw unsupported(`${label}: block ${block.index}: vitpath could not follow the head shapes through ${a.untraced.slice(0, 3).join(', ')}; its heads cannot be pruned safely.`);
  if (a.computedShapes.length) throw unsupported(`${label}: block ${block.index}: the head count enters shapes computed at run time (${a.computedShapes[0]!.reader}); prune the shape-folded model.`);
  return a as AttentionLayout & { heads: number; headDim: number };
}

function nodeByOutput(ed: GraphEditor, out: string): NodeProto {
  const n = ed.graph.producerOf(out);
  if (!n) throw new Error(`keepHeads: no node writes "${out}"`);
  return n;
}

/** Keep heads `keep` (increasing) of `block`'s attention. */
export function keepHeads(ed: GraphEditor, block: BlockLayout, keep: readonly number[], label = 'model'): void {
  const a = prunableAttention(block, label);
  const H = a.heads;
  const d = a.headDim;
  if (keep.length === 0) throw unsupported(`block ${block.index}: pruning would remove all ${H} heads; keep at least one (or drop the block).`);
  for (let i = 0; i < keep.length; i++) {
    const h = keep[i]!;
    if (!Number.isInteger(h) || h < 0 || h >= H || (i > 0 && h <= keep[i - 1]!)) throw new Error(`block ${block.index}: heads to keep must be increasing indices in 0..${H - 1}`);
  }
  if (keep.length === H) return;
  // Stored shapes between q/k/v and the projection hold the head count: value_info dropped, graph
  // outputs there (exposed attention probabilities) keep their element type only.
  const g = ed.graph;
  const starts = a.form === 'fused' ? [a.qkv!.output] : [a.q!.output, a.k!.output, a.v!.output];
  const down = g.descendants(starts);
  const region = new Set([...g.ancestors([a.proj.input], new Set(starts))].filter((t) => down.has(t)));
  for (const o of g.outputNames) if (down.has(o) && !g.descendants([a.proj.input]).has(o)) region.add(o);
  ed.filterValueInfo((vi) => !region.has(vi.name));
  ed.mapValues((vi, where) => (where === 'output' && region.has(vi.name) ? tensorValueInfo(vi.name, valueInfoShape(vi).dataType ?? DataType.FLOAT) : vi));
  const features = keep.flatMap((h) => Array.from({ length: d }, (_, j) => h * d + j));
  if (a.form === 'fused') keepOutputs(ed, a.qkv!, [0, 1, 2].flatMap((c) => features.map((f) => c * a.dim + f)));
  else for (const l of [a.q!, a.k!, a.v!]) keepOutputs(ed, l, features);
  keepInputs(ed, a.proj, features);
  // Head-count constants: one rewrite per (reader, input or attribute), every element of it at once.
  const groups = new Map<string, typeof a.headConstants>();
  for (const c of a.headConstants) {
    const key = `${c.reader}\u0000${c.input ?? ''}\u0000${c.attribute ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const list of groups.values()) {
    const c0 = list[0]!;
    const node = nodeByOutput(ed, c0.reader);
    if (c0.attribute !== undefined) {
      ed.editNode(node, (cur) => ({
        attribute: cur.attribute.map((at) => {
          if (at.name !== c0.attribute) return at;
          const vals = at.ints.map(Number);
          for (const c of list) vals[c.index] = c.perHead * keep.length;
          return makeAttr(at.name, vals);
        }),
      }));
      continue;
    }
    const name = ed.current(node).input[c0.input!]!;
    const v = ed.constantValue(name);
    if (!v) throw unsupported(`block ${block.index}: the head-count constant "${name}" read by "${c0.reader}" is not a constant`);
    const vals = toNumbers(v);
    for (const c of list) vals[c.index] = c.perHead * keep.length;
    const data = v.dataType === DataType.INT32 ? Int32Array.from(vals) : BigInt64Array.from(vals.map((x) => BigInt(x)));
    ed.forkConstant(node, c0.input!, { dataType: v.dataType, dims: v.dims, data });
  }
}
