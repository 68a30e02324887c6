// Apply a pruning plan to a model in one graph edit: whole blocks dropped, FFN neurons and
// attention heads kept per block; then nodes and initializers nothing reads any more are dropped. The input model is not changed.
import type { ModelProto } from '../onnx/proto.js';
import { GraphEditor } from '../onnx/edit.js';
import type { ViTLayout } from '../vit/types.js';
import { keepFfnNeurons } from './ffn.js';
import { dropBlocks } from './blocks.js';
import { keepHeads } from './heads.js';

export interface PrunePlan {
  /** Block -> FFN neurons kept (increasing); blocks not listed keep every neuron. */
  ffn: ReadonlyMap<number, readonly number[]>;
  /** Block -> attention heads kept (increasing); blocks not listed keep every head. */
  heads?: ReadonlyMap<number, readonly number[]>;
  /** Blocks removed whole (the residual stream passes through). */
  dropBlocks?: readonly number[];
}

export function applyPlan(model: ModelProto, layout: ViTLayout, plan: PrunePlan): ModelProto {
  const ed = new GraphEditor(model);
  const dropped = new Set(plan.dropBlocks ?? []);
  dropBlocks(ed, layout, [...dropped]);
  for (const [l, keep] of plan.ffn) {
    if (dropped.has(l)) continue;
    const blk = layout.blocks[l];
    if (!blk) throw new Error(`applyPlan: block ${l} does not exist (the model has ${layout.blocks.length})`);
    keepFfnNeurons(ed, blk, keep);
  }
  for (const [l, keep] of plan.heads ?? []) {
    if (dropped.has(l)) continue;
    const blk = layout.blocks[l];
    if (!blk) throw new Error(`applyPlan: block ${l} does not exist (the model has ${layout.blocks.length})`);
    keepHeads(ed, blk, keep);
  }
  ed.removeDeadNodes();
  ed.removeUnusedInitializers();
  return ed.model();
}
