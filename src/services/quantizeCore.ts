// The quantize pipeline on a model in memory, without files or reports: pick the linears in scope,
// calibrate their input activations, and rewrite them to int8 QDQ. The `quantize` command and the
// tests share it.
import type { ModelProto } from '../onnx/proto.js';
import type { ViTLayout } from '../vit/types.js';
import { linearTargets, selectTargets, type QuantTarget } from '../quantize/targets.js';
import { activationParams, type ActivationQuant } from '../onnx/quantScheme.js';
import type { CalibratedRange, CalibrationMethod } from '../quantize/calibrate.js';
import { quantizeLinearsQdq, type LinearQuantResult } from '../onnx/rewrite/quantize.js';
import { calibrateActivations, type CalibrationBatch } from './calibrate.js';
import type { RuntimeOptions } from '../runtime/session.js';

export interface StaticQuantOptions {
  method: CalibrationMethod;
  percentile?: number;
  include?: readonly string[];
  exclude?: readonly string[];
  runtime?: RuntimeOptions;
  label?: string;
  onProgress?: (done: number) => void;
}

export interface QuantizedLayer {
  target: QuantTarget;
  range: CalibratedRange;
  activation: ActivationQuant;
  result: LinearQuantResult;
}

export interface StaticQuantResult {
  model: ModelProto;
  /** Every linear of the model with its name (quantized or not). */
  targets: QuantTarget[];
  layers: QuantizedLayer[];
  /** Calibrated ranges of every tensor a target in scope reads. */
  ranges: Map<string, CalibratedRange>;
}

/** The in-scope targets of a located model. */
export function scopeOf(model: ModelProto, layout: ViTLayout, include?: readonly string[], exclude?: readonly string[]): { all: QuantTarget[]; chosen: QuantTarget[] } {
  const all = linearTargets(layout);
  return { all, chosen: selectTargets(all, include, exclude) };
}

/** Rewrite the chosen targets with the calibrated ranges (no ONNX Runtime involved). */
export function applyStatic(model: ModelProto, chosen: readonly QuantTarget[], ranges: ReadonlyMap<string, CalibratedRange>, label?: string): { model: ModelProto; layers: QuantizedLayer[] } {
  const acts = chosen.map((t) => {
    const r = ranges.get(t.linear.input);
    if (!r) throw new Error(`no calibrated range for ${t.linear.input} (${t.name})`);
    return { t, r, a: activationParams(r.min, r.max) };
  });
  const q = quantizeLinearsQdq(model, acts.map(({ t, a }) => ({ linear: t.linear, input: a })), label);
  return { model: q.model, layers: acts.map(({ t, r, a }, i) => ({ target: t, range: r, activation: a, result: q.layers[i]! })) };
}

/** Calibrate and quantize the linears in scope of `model` (float32, located as `layout`). */
export async function quantizeStatic(model: ModelProto, layout: ViTLayout, batches: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>, o: StaticQuantOptions): Promise<StaticQuantResult> {
  const { all, chosen } = scopeOf(model, layout, o.include, o.exclude);
  const ranges = await calibrateActivations(
    model,
    layout.input,
    chosen.map((t) => t.linear.input),
    batches,
    { method: o.method, percentile: o.percentile, runtime: o.runtime, onProgress: o.onProgress, label: o.label },
  );
  const q = applyStatic(model, chosen, ranges, o.label);
  return { model: q.model, targets: all, layers: q.layers, ranges };
}
