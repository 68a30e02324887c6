// The quantity vitpath differentiates: the softmax probability (or the raw logit) of a per-sample
// target class, given as an int64 input `target` [batch], plus its batch sum as the scalar loss.
// Samples do not interact, so the gradient of the sum w.r.t. per-sample inputs is per-sample.
import { DataType, type ModelProto } from '../proto.js';
import { tensorValueInfo } from '../builder.js';
import { GraphEditor } from '../edit.js';
import { badInput, usageError } from '../../errors.js';

export type ObjectiveKind = 'prob' | 'logit';

export interface ObjectiveOptions {
  /** The logits tensor, [batch, classes]. */
  logits: string;
  kind?: ObjectiveKind;
  /** Declared batch dim of the new inputs/outputs (a symbol for dynamic batch); default 'batch'. */
  batchDim?: number | string;
  /** Element type of the logits; default float32. */
  dataType?: DataType;
}

export interface Objective {
  model: ModelProto;
  /** Name of the int64 [batch] input holding each sample's target class. */
  target: string;
  /** Output [batch]: F per sample (probability or logit of the target class). */
  perSample: string;
  /** Output scalar: the sum of perSample over the batch, the tensor to differentiate. */
  loss: string;
  /** Output [batch, classes]: the softmax probabilities (prob objective only). */
  probs?: string;
}

export const TARGET_INPUT = 'target';
export const OBJECTIVE_OUTPUT = 'objective';
export const LOSS_OUTPUT = 'objective_sum';

/**
 * Append the objective to `model`. The target class is picked with OneHot + Mul + ReduceSum (valid
 * at every opset 9..21; the products with 0 are exact zeros, so F equals softmax(logits)[target]
 * bit for bit). Out-of-range targets give F = 0 (OneHot yields an all-zero row).
 */
export function appendObjective(model: ModelProto, opts: ObjectiveOptions): Objective {
  const ed = new GraphEditor(model);
  const graph = ed.graph;
  if (!graph.producer.has(opts.logits) && !graph.inputNames.includes(opts.logits)) {
    throw badInput(`objective: the model has no tensor "${opts.logits}" to take as logits; check the located head.`);
  }
  const kind = opts.kind ?? 'prob';
  if (kind !== 'prob' && kind !== 'logit') throw usageError(`objective must be 'prob' or 'logit' (got "${kind}")`);
  const dt = opts.dataType ?? DataType.FLOAT;
  const bd = opts.batchDim ?? 'batch';
  for (const name of [TARGET_INPUT, OBJECTIVE_OUTPUT, LOSS_OUTPUT]) {
    if (graph.hasTensor(name)) {
      throw usageError(`the model already has a tensor named "${name}"; the objective was appended before.`);
    }
  }
  const b = ed.builder('objective');
  const target = b.reserve(TARGET_INPUT);
  const scores = kind === 'prob' ? b.softmaxLast(opts.logits, 2) : opts.logits;
  const depth = b.slice(b.op('Shape', [opts.logits]), [1], [2], [0]);
  const onehot = b.op('OneHot', [target, depth, b.constFloat(dt, [0, 1], [2], 'onehot_values')], { axis: -1 });
  const picked = b.reduceSum(b.op('Mul', [scores, onehot]), [1], false);
  const perSample = b.op('Identity', [picked], {}, OBJECTIVE_OUTPUT);
  const loss = b.op('Identity', [b.reduceSum(perSample, [0], false)], {}, LOSS_OUTPUT);
  ed.append(b.nodes);
  ed.addInputs([tensorValueInfo(target, DataType.INT64, [bd])]);
  ed.addOutputs([tensorValueInfo(perSample, dt, [bd]), tensorValueInfo(loss, dt, [])]);
  return { model: ed.model(), target, perSample, loss, probs: kind === 'prob' ? scores : undefined };
}
