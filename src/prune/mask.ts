// Neuron masks at every token: fc2 of the chosen blocks reads its input multiplied by a constant
// per-neuron factor (0 removes a neuron, 1 keeps it). The masked model is what FFN pruning must
// reproduce (a removed neuron contributes nothing to fc2); it also scores removals without
// slicing weights. Works for [B,T,F] and flat [B*T,F] neuron tensors (the mask broadcasts on F).
import type { ModelProto } from '../onnx/proto.js';
import { GraphEditor } from '../onnx/edit.js';
import type { ViTLayout } from '../vit/types.js';
import { neuronDataType } from '../onnx/rewrite/intervene.js';
import { linearNode } from './slice.js';

/** Block -> factor per neuron (length = the block's FFN width). */
export type NeuronMasks = ReadonlyMap<number, ArrayLike<number>>;

export function maskNeurons(model: ModelProto, layout: ViTLayout, masks: NeuronMasks): ModelProto {
  const ed = new GraphEditor(model);
  const b = ed.builder('mask');
  for (const [l, mask] of masks) {
    const blk = layout.blocks[l];
    if (!blk) throw new Error(`maskNeurons: block ${l} does not exist (the model has ${layout.blocks.length})`);
    const F = blk.fc1.outFeatures;
    if (mask.length !== F) throw new Error(`maskNeurons: block ${l} has ${F} neurons, mask has ${mask.length}`);
    const fc2 = linearNode(ed, blk.fc2);
    const start = b.nodes.length;
    const m = b.constFloat(neuronDataType(model, layout, l), Array.from(mask), [F], `neuron_mask_${l}`);
    const out = b.op('Mul', [blk.neuron, m]);
    ed.insertOnEdge(blk.neuron, b.nodes.slice(start), out, [fc2]);
  }
  return ed.model();
}

/**
 * Head masks: each chosen block's output projection reads its input multiplied by a constant 0/1 per
 * feature, head h being features [h*d, (h+1)*d): what head pruning must reproduce.
 */
export function maskHeads(model: ModelProto, layout: ViTLayout, keep: ReadonlyMap<number, readonly number[]>): ModelProto {
  const ed = new GraphEditor(model);
  const b = ed.builder('head_mask');
  for (const [l, heads] of keep) {
    const a = layout.blocks[l]?.attention;
    if (!a?.heads || !a.headDim) throw new Error(`maskHeads: block ${l} has no located attention heads`);
    const m = new Array<number>(a.dim).fill(0);
    for (const h of heads) for (let j = 0; j < a.headDim; j++) m[h * a.headDim + j] = 1;
    const proj = linearNode(ed, a.proj);
    const start = b.nodes.length;
    const c = b.constFloat(neuronDataType(model, layout, l), m, [a.dim], `head_mask_${l}`);
    const out = b.op('Mul', [a.proj.input, c]);
    ed.insertOnEdge(a.proj.input, b.nodes.slice(start), out, [proj]);
  }
  return ed.model();
}
