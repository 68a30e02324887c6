// Branch gates for ablation: every block's attention and MLP branch is multiplied by a per-sample
// gate before it is added to the residual stream, so one model runs any mix of "branch removed"
// (gate 0) and "branch kept" (gate 1) per batch row. probe-layers packs (image, ablation) pairs
// into the batch axis and runs all ablations of a batch of images in a few runs.
//
// New input `branch_gates` [B, 2L] (float32): column 2l gates block l's attention branch, column
// 2l+1 its MLP branch. All gates 1 reproduce the model exactly (x * 1 is exact in IEEE arithmetic).
import { DataType, type ModelProto, type NodeProto } from '../proto.js';
import type { Graph } from '../graph.js';
import { tensorValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';
import type { ViTLayout } from '../../vit/types.js';
import { batchDim } from '../../vit/tokens.js';
import { unsupported } from '../../errors.js';

export type BranchKind = 'attn' | 'mlp';

export const GATES_INPUT = 'branch_gates';

export interface GatedModel {
  model: ModelProto;
  /** Name of the [B, 2L] float32 gate input. */
  gates: string;
  /** Number of gate columns (2 x blocks). */
  columns: number;
}

/** Gate column of block l's branch. */
export function gateColumn(l: number, kind: BranchKind): number {
  return 2 * l + (kind === 'attn' ? 0 : 1);
}

/** The residual Add that adds `branch` to the stream and produces `sum`. */
function residualAdd(graph: Graph, branch: string, sum: string, what: string): NodeProto {
  const add = graph.producerOf(sum);
  if (!add || add.opType !== 'Add' || !add.input.includes(branch)) {
    throw unsupported(`${what}: "${sum}" is not an Add of the branch "${branch}" to the residual stream; probe-layers can only ablate branches added by a residual Add.`);
  }
  return add;
}

/** Element type of the residual stream at `t` (float32 unless the graph says otherwise). */
function streamType(graph: Graph, t: string, fallback: DataType): DataType {
  return graph.shapeOf(t)?.dataType ?? fallback;
}

/** Insert gates on every block's attention and MLP branch. */
export function gateBranches(model: ModelProto, layout: ViTLayout): GatedModel {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  if (graph.inputNames.includes(GATES_INPUT)) throw unsupported(`the model already has an input named "${GATES_INPUT}"; it was gated before.`);
  const b = ed.builder('gate');
  const gates = b.reserve(GATES_INPUT);
  const L = layout.blocks.length;
  const headType = (graph.initializers.get(layout.head.weight)?.dataType as DataType | undefined) ?? DataType.FLOAT;
  // Gate nodes go right before the add they feed; rewired adds read the gated branch.
  for (const blk of layout.blocks) {
    for (const kind of ['attn', 'mlp'] as const) {
      const branch = kind === 'attn' ? blk.attnBranch : blk.mlpBranch;
      const sum = kind === 'attn' ? blk.attnResidual : blk.output;
      const add = residualAdd(graph, branch, sum, `block ${blk.index} ${kind === 'attn' ? 'attention' : 'MLP'}`);
      const start = b.nodes.length;
      let g = b.op('Gather', [gates, b.constI64([gateColumn(blk.index, kind)], [])], { axis: 1 }); // [B]
      g = b.unsqueeze(g, [1, 2]); // [B,1,1]
      const dt = streamType(graph, branch, headType);
      if (dt !== DataType.FLOAT) g = b.op('Cast', [g], { to: dt });
      const gated = b.op('Mul', [branch, g]);
      ed.insertBefore(add, b.nodes.slice(start));
      ed.replaceInputs(add, new Map([[branch, gated]]));
    }
  }
  ed.addInputs([tensorValueInfo(gates, DataType.FLOAT, [batchDim(layout), 2 * L])]);
  return { model: ed.model(), gates, columns: 2 * L };
}

/** Gate rows [rows, 2L]: all ones except the given (row -> column) zeros (-1 = none). */
export function gateRows(columns: number, zeroColumn: ArrayLike<number>): Float32Array {
  const out = new Float32Array(zeroColumn.length * columns).fill(1);
  for (let r = 0; r < zeroColumn.length; r++) {
    const c = zeroColumn[r]!;
    if (c >= 0) out[r * columns + c] = 0;
  }
  return out;
}
