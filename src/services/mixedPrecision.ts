// Mixed precision under an accuracy budget (--max-drop): on validation images disjoint from the
// calibration images, measure each layer's sensitivity (that layer alone in int8, against the float
// model: mean KL and top-1 agreement), then quantize everything and move the most sensitive layers
// back to float, one at a time, until the validation accuracy drop is within the budget.
import type { ModelProto } from '../onnx/proto.js';
import { encodeModel } from '../onnx/model.js';
import type { ViTLayout } from '../vit/types.js';
import type { CalibratedRange } from '../quantize/calibrate.js';
import type { QuantTarget } from '../quantize/targets.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { compareClassifiers, evaluateClassifier, sessionClassifier, type ClassifierBatch, type ClassifierEvaluation } from './evaluate.js';
import { applyStatic, type QuantizedLayer } from './quantizeCore.js';

export interface Sensitivity {
  meanKl: number;
  agreement: number;
}

export interface MixedStep {
  /** Layers in float at this step (most sensitive first). */
  float: string[];
  /** Top-1 accuracy on the validation images. */
  accuracy: number;
  /** Float accuracy minus this accuracy, in points. */
  drop: number;
}

export interface MixedResult {
  model: ModelProto;
  layers: QuantizedLayer[];
  sensitivity: Map<string, Sensitivity>;
  /** Layer names in decreasing sensitivity (mean KL, then disagreement). */
  ranking: string[];
  floatAccuracy: number;
  steps: MixedStep[];
  /** Layers kept in float to meet the budget. */
  kept: string[];
  met: boolean;
}

export interface MixedOptions {
  maxDrop: number;
  runtime?: RuntimeOptions;
  batch: number;
  label?: string;
  onProgress?: (done: number, total: number) => void;
}

async function evaluateModel(model: ModelProto, layout: ViTLayout, batches: readonly ClassifierBatch[], o: MixedOptions): Promise<ClassifierEvaluation> {
  const s = await createSession(encodeModel(model), o.runtime ?? {});
  try {
    const c = sessionClassifier(s, { input: layout.input, inputType: 'float32', output: layout.logits, scores: 'logits' }, { batchSize: o.batch, label: o.label ?? 'model' });
    return await evaluateClassifier(c, batches, { keepProbabilities: false });
  } finally {
    await s.release();
  }
}

/** Per-layer sensitivity and the greedy float set that keeps the validation drop within `maxDrop` points. */
export async function chooseMixedPrecision(
  model: ModelProto,
  layout: ViTLayout,
  chosen: readonly QuantTarget[],
  ranges: ReadonlyMap<string, CalibratedRange>,
  validation: readonly ClassifierBatch[],
  o: MixedOptions,
): Promise<MixedResult> {
  const total = chosen.length + 2;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  const floatSession = await createSession(encodeModel(model), o.runtime ?? {});
  const io = { input: layout.input, inputType: 'float32' as const, output: layout.logits, scores: 'logits' as const };
  const sensitivity = new Map<string, Sensitivity>();
  let floatEval: ClassifierEvaluation | undefined;
  try {
    const reference = sessionClassifier(floatSession, io, { batchSize: o.batch, label: o.label ?? 'model' });
    for (const t of chosen) {
      const one = applyStatic(model, [t], ranges, o.label).model;
      const s = await createSession(encodeModel(one), o.runtime ?? {});
      try {
        const r = await compareClassifiers(sessionClassifier(s, io, { batchSize: o.batch, label: t.name }), reference, validation);
        sensitivity.set(t.name, { meanKl: r.comparison.meanKl, agreement: r.comparison.agreement });
        floatEval ??= r.reference;
      } finally {
        await s.release();
      }
      tick();
    }
  } finally {
    await floatSession.release();
  }
  if (!floatEval?.accuracy) throw new Error('mixed precision needs labelled validation images');
  const floatAccuracy = floatEval.accuracy.top1;
  const ranking = [...chosen]
    .map((t) => t.name)
    .sort((a, b) => sensitivity.get(b)!.meanKl - sensitivity.get(a)!.meanKl || sensitivity.get(a)!.agreement - sensitivity.get(b)!.agreement);
  const steps: MixedStep[] = [];
  let kept: string[] = [];
  for (;;) {
    const inScope = chosen.filter((t) => !kept.includes(t.name));
    const q = applyStatic(model, inScope, ranges, o.label);
    const e = inScope.length ? await evaluateModel(q.model, layout, validation, o) : floatEval;
    const accuracy = e.accuracy!.top1;
    const drop = (floatAccuracy - accuracy) * 100;
    steps.push({ float: [...kept], accuracy, drop });
    if (steps.length === 1) tick();
    if (drop <= o.maxDrop + 1e-9 || inScope.length === 0) {
      tick();
      return { model: q.model, layers: q.layers, sensitivity, ranking, floatAccuracy, steps, kept, met: drop <= o.maxDrop + 1e-9, };
    }
    kept = ranking.slice(0, kept.length + 1);
  }
}
