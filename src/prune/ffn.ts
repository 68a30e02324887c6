// FFN neuron removal as a physical graph edit: a neuron of block l is fc1's output column, its bias
// entry and fc2's input row; removing it is exactly masking it to zero before fc2 (up to the order
// of float additions). Blocks may keep different widths. Shape constants inside the FFN (a Reshape
// to [..., F]) and per-neuron constants (an elementwise op with a [F] operand) follow the new width;
// stored value_info of the FFN's inner tensors is dropped (its last dim changed).
import type { GraphEditor } from '../onnx/edit.js';
import { toNumbers } from '../onnx/tensor.js';
import { DataType, type NodeProto } from '../onnx/proto.js';
import type { BlockLayout } from '../vit/types.js';
import { keepInputs, keepOutputs, linearNode, sliceConstantInput } from './slice.js';
import { unsupported } from '../errors.js';

/** Check a keep list: strictly increasing neuron indices in 0..F-1, at least one. */
export function checkKeep(block: BlockLayout, keep: readonly number[]): void {
  const F = block.fc1.outFeatures;
  if (keep.length === 0) throw unsupported(`block ${block.index}: pruning would remove all ${F} FFN neurons; keep at least one`);
  for (let i = 0; i < keep.length; i++) {
    const k = keep[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= F || (i > 0 && k <= keep[i - 1]!)) throw new Error(`block ${block.index}: keep list must be increasing indices in 0..${F - 1} (got ${k} at ${i})`);
  }
}

/** Tensors strictly inside block's FFN: from fc1's output to fc2's input (both included). */
export function ffnInner(ed: GraphEditor, block: BlockLayout): Set<string> {
  const g = ed.graph;
  const down = g.descendants([block.fc1.output]);
  const up = g.ancestors([block.fc2.input], new Set([block.fc1.output]));
  const out = new Set<string>();
  for (const t of up) if (down.has(t)) out.add(t);
  return out;
}

/** Keep FFN neurons `keep` (increasing) of `block`. */
export function keepFfnNeurons(ed: GraphEditor, block: BlockLayout, keep: readonly number[]): void {
  checkKeep(block, keep);
  const F = block.fc1.outFeatures;
  if (keep.length === F) return;
  if (block.fc2.inFeatures !== F) throw unsupported(`block ${block.index}: fc1 writes ${F} features but fc2 reads ${block.fc2.inFeatures}`);
  const inner = ffnInner(ed, block);
  const g = ed.graph;
  const ends = new Set<NodeProto>([linearNode(ed, block.fc1), linearNode(ed, block.fc2)]);
  const fc1Bias = block.fc1.bias && block.fc1.kind === 'matmul' ? g.producerOf(block.fc1.output) : undefined;
  if (fc1Bias) ends.add(fc1Bias);
  // Nodes computing inner tensors from inner tensors (the activation, layout ops between the linears).
  for (const n of g.nodes) {
    if (ends.has(n) || !n.output.some((o) => inner.has(o))) continue;
    n.input.forEach((name, idx) => {
      if (!name || inner.has(name)) return;
      const v = ed.constantValue(name);
      if (!v) return;
      if (n.opType === 'Reshape' && idx === 1) {
        const dims = toNumbers(v);
        if (dims.includes(F)) ed.forkConstant(n, idx, { dataType: DataType.INT64, dims: v.dims, data: BigInt64Array.from(dims.map((d) => BigInt(d === F ? keep.length : d))) });
        return;
      }
      if (v.dims.length > 0 && v.dims[v.dims.length - 1] === F && v.data.length > 1 && (v.dataType === DataType.FLOAT || v.dataType === DataType.FLOAT16 || v.dataType === DataType.DOUBLE)) {
        sliceConstantInput(ed, n, idx, -1, keep);
        return;
      }
      if (v.data.length > 1 && v.dims.length > 0 && v.dataType !== DataType.INT64) {
        throw unsupported(`block ${block.index}: node "${n.name || n.output[0]}" (${n.opType}) inside the FFN reads a constant of shape [${v.dims.join(', ')}] vitpath cannot slice to the pruned width`);
      }
    });
  }
  keepOutputs(ed, block.fc1, keep);
  keepInputs(ed, block.fc2, keep);
  ed.filterValueInfo((vi) => !inner.has(vi.name));
}
