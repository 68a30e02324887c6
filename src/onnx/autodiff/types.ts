// The contract between the reverse-mode engine (backward.ts) and the per-op gradient rules.
import type { DataType, NodeProto } from '../proto.js';
import type { GraphBuilder } from '../builder.js';
import type { Graph } from '../graph.js';

/**
 * Static facts about one tensor from the shape probe. `dims[i]` is null when that axis
 * depends on the batch size (it changed between two probe runs), so rules must take it
 * from a runtime Shape op instead of baking it into a constant.
 */
export interface TensorFacts {
  dataType: DataType;
  dims: (number | null)[];
}

export interface GradContext {
  /** Emits gradient nodes (opset-aware helpers: unsqueeze, reduceSum, slice, padZeros, ...). */
  b: GraphBuilder;
  node: NodeProto;
  graph: Graph;
  opset: number;
  /** Probe facts for any tensor (inputs, outputs, intermediates, initializers). */
  facts(name: string): TensorFacts;
  /** Gradient of each node output (undefined where no gradient flows back). */
  gy: (string | undefined)[];
  /** Which inputs need a gradient (on a path from a differentiated tensor, float-typed). */
  needs: boolean[];
}

/**
 * A gradient rule returns, for each input of the node, the name of a tensor holding
 * dLoss/dInput with exactly that input's shape, or undefined (not needed / no gradient).
 */
export type GradRule = (ctx: GradContext) => (string | undefined)[];
