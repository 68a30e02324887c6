// The contract between the shape inference pass (infer.ts) and the per-op rules: what is known
// about a tensor (element type, dims with the batch size symbolic, and its value when it is small
// and computable), and the registry mapping op types to rules.
import type { DataType, NodeProto } from '../proto.js';
import type { Dim } from './sym.js';
import type { Val } from './value.js';

/** What is known about one tensor. dims undefined = unknown; value only for computable tensors. */
export interface TInfo {
  dataType?: DataType;
  dims?: Dim[];
  value?: Val;
}

/** A fix for a shape constant baked at batch 1 (see infer.ts, repair mode). */
export type Repair =
  /** Reshape: replace the target by `target` (-1 at `axis`, which then carries the batch). */
  | { kind: 'reshape'; node: NodeProto; target: bigint[]; axis: number }
  /** Concat: broadcast input `input` to `dims` (its batch-1 axis to the batch) before joining. */
  | { kind: 'concat-expand'; node: NodeProto; input: number; dims: Dim[] };

export interface RuleContext {
  node: NodeProto;
  opset: number;
  /** One entry per node input; undefined for an omitted optional input or an unknown tensor. */
  ins: (TInfo | undefined)[];
  /** Largest tensor (elements) whose value is computed. */
  valueLimit: number;
  /** Record that the node is only consistent at one batch size (a constant baked at the traced batch). */
  conflict(message: string): void;
  /**
   * Offer fixes for a conflict; returns the one the caller chose (repair mode), or undefined
   * (then the rule records the conflict and continues with the batch-1 reading).
   */
  offer(candidates: Repair[], message: string): Repair | undefined;
}

/** Output infos, one per node output (undefined = unknown). */
export type ShapeRule = (ctx: RuleContext) => (TInfo | undefined)[];

const rules = new Map<string, ShapeRule>();

export function registerShapeRule(ops: string | string[], rule: ShapeRule): void {
  for (const op of Array.isArray(ops) ? ops : [ops]) rules.set(op, rule);
}

export function shapeRuleFor(opType: string): ShapeRule | undefined {
  return rules.get(opType);
}
