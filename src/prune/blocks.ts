// Whole-block removal: a dropped block's attention and MLP branches go, and whatever read the
// block's output reads its input (the residual stream passes through). Consecutive dropped blocks
// chain to the first kept stream before them. Equal to gating both branches of the block to zero.
import type { GraphEditor } from '../onnx/edit.js';
import type { ViTLayout } from '../vit/types.js';
import { unsupported } from '../errors.js';

export function dropBlocks(ed: GraphEditor, layout: ViTLayout, blocks: readonly number[]): void {
  const drop = new Set(blocks);
  if (drop.size === 0) return;
  if (drop.size >= layout.blocks.length) throw unsupported(`dropping ${drop.size} of ${layout.blocks.length} blocks would leave none; drop fewer.`);
  const through = new Map<string, string>(); // dropped block output -> its input
  for (const l of drop) {
    const b = layout.blocks[l];
    if (!b) throw new Error(`dropBlocks: block ${l} does not exist (the model has ${layout.blocks.length})`);
    if (ed.graph.outputNames.includes(b.output)) throw unsupported(`block ${l}'s output "${b.output}" is a graph output; vitpath cannot drop that block.`);
    through.set(b.output, b.input);
  }
  const resolve = (t: string) => {
    while (through.has(t)) t = through.get(t)!;
    return t;
  };
  for (const [out, inp] of through) ed.renameConsumers(out, resolve(inp));
}
