// The `quantize` service: write a quantized copy of a float ViT (int8 static QDQ; dynamic and
// float16 modes in their own modules) and report what it did and what it cost: per-layer scheme and
// calibrated ranges, how many layers ONNX Runtime fused into int8 kernels, and the eval service's
// before/after on images disjoint from the calibration images (accuracy with intervals, agreement,
// KL, latency at batch 1 and N, parameters, file size).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, encodeModel, saveModel, sha256Hex } from '../onnx/model.js';
import { assertFloatModel, prepareVitModel } from './vitModel.js';
import { discoverImages, type DataItem } from '../data/sources.js';
import { iterateBatches } from '../data/dataset.js';
import { inferPreprocess, type PreprocessOverrides } from '../data/preprocess.js';
import { mulberry32 } from '../random.js';
import { optimizedGraph } from '../runtime/optimized.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../quantize/calibrate.js';
import type { QuantTarget } from '../quantize/targets.js';
import { quantizeStatic, scopeOf, type QuantizedLayer } from './quantizeCore.js';
import { quantizeLinearsDynamic } from '../onnx/rewrite/quantizeDynamic.js';
import { chooseMixedPrecision, type Sensitivity } from './mixedPrecision.js';
import type { ClassifierBatch } from './evaluate.js';
import type { ModelProto } from '../onnx/proto.js';
import { Graph } from '../onnx/graph.js';
import { f16ToF32 } from '../onnx/tensor.js';
import { exposeOutputs } from '../onnx/rewrite/expose.js';
import { convertToFloat16, FLOAT16_MAX, type Float16Result } from '../onnx/rewrite/float16.js';
import { float32Islands } from '../quantize/islands.js';
import { createSession } from '../runtime/session.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { evaluateModels, type EvalProgress } from './eval.js';
import { COMMAND, MODES, quantizeResultsSchema, type LayerRecord, type QuantizeMode, type QuantizeResults } from './quantizeSchema.js';
import type { Envelope } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { CommandRun, outputModelInfo, runCommand, type RunHooks } from './commandRun.js';
import type { CsvRow } from '../report/csv.js';
import { badInput, unsupported, usageError } from '../errors.js';
import { MIN_QDQ_OPSET } from '../onnx/rewrite/quantize.js';

export { COMMAND };
export const FILES = { model: 'model.onnx', report: 'report.json', layers: 'layers.csv' } as const;
export const DEFAULTS = { calibImages: 256, calibration: 'minmax' as CalibrationMethod, percentile: 99.99, batch: 32, seed: 0 } as const;

export type QuantizeReport = Envelope<QuantizeResults>;

export interface QuantizeOptions {
  images: string;
  labels?: string;
  preprocess?: PreprocessOverrides;
  mode?: QuantizeMode;
  calibration?: CalibrationMethod;
  percentile?: number;
  /** Calibration images, drawn at random (seeded) from the image list; the rest are evaluated. */
  calibImages?: number;
  seed?: number;
  /** Evaluate at most this many of the non-calibration images. */
  limit?: number;
  include?: readonly string[];
  exclude?: readonly string[];
  /** int8: keep the most sensitive layers in float until the validation accuracy drop is at most this many points. */
  maxDrop?: number;
  /** Validation images for --max-drop (drawn from the non-calibration images; default min(500, half of them)). */
  valImages?: number;
  output?: string;
  batch?: number;
  /** Measure latency in the evaluation (default true). */
  latency?: boolean;
  warmup?: number;
  repeat?: number;
  /** Skip the before/after evaluation (the model is still written and its fusion checked). */
  evaluate?: boolean;
  runtime?: RuntimeOptions;
  out?: string;
  /** Write the model here instead of <out>/model.onnx. */
  save?: string;
  force?: boolean;
  reportOptions?: Record<string, unknown>;
  notice?: (line: string) => void;
  onProgress?: (e: { phase: 'calibrate' | 'sensitivity' | EvalProgress['phase']; done: number; total: number }) => void;
}

/**
 * Run the float16 model on the calibration images with every float16 activation exposed: the largest
 * |value| (float16 bit patterns of finite values order like their magnitudes) and whether any is
 * infinite or NaN.
 */
async function float16Overflow(r: Float16Result, input: string, items: readonly DataItem[], spec: PreprocessSpec, batch: number, fixedBatch: boolean, o: QuantizeOptions): Promise<{ maxAbs: number; overflow: boolean }> {
  const names = r.float16Activations;
  const s = await createSession(encodeModel(exposeOutputs(r.model, names)), o.runtime ?? {});
  let maxBits = 0;
  let overflow = false;
  let done = 0;
  try {
    for await (const b of iterateBatches(items, spec, batch)) {
      if (fixedBatch && b.dims[0] !== batch) continue; // a fixed-batch model takes only full batches
      const out = await s.run({ [input]: { data: b.data, dims: b.dims } }, names);
      for (const n of names) {
        const t = out[n]!;
        if (t.type !== 'float16') continue;
        const h = t.data as Uint16Array;
        for (let i = 0; i < h.length; i++) {
          const a = h[i]! & 0x7fff;
          if (a >= 0x7c00) overflow = true;
          else if (a > maxBits) maxBits = a;
        }
      }
      done += b.dims[0];
      o.onProgress?.({ phase: 'calibrate', done, total: items.length });
    }
  } finally {
    await s.release();
  }
  return { maxAbs: f16ToF32(maxBits), overflow };
}

/** Positions of the calibration images: `n` drawn without replacement (seeded), in list order. */
export function calibrationIndices(total: number, n: number, seed: number): number[] {
  const idx = Array.from({ length: total }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (total - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, n).sort((a, b) => a - b);
}

function checkOptions(o: QuantizeOptions): Required<Pick<QuantizeOptions, 'mode' | 'calibration' | 'percentile' | 'calibImages' | 'seed' | 'batch'>> {
  const mode = o.mode ?? 'int8';
  if (!MODES.includes(mode)) throw usageError(`--mode must be one of ${MODES.join(', ')} (got "${mode}")`);
  const calibration = o.calibration ?? DEFAULTS.calibration;
  if (!CALIBRATION_METHODS.includes(calibration)) throw usageError(`--calibration must be one of ${CALIBRATION_METHODS.join(', ')} (got "${calibration}")`);
  const percentile = o.percentile ?? DEFAULTS.percentile;
  if (!(percentile > 0 && percentile <= 100)) throw usageError(`--percentile must be in (0, 100] (got ${percentile})`);
  const calibImages = o.calibImages ?? DEFAULTS.calibImages;
  if (!Number.isInteger(calibImages) || calibImages < 1) throw usageError(`--calib-images must be a positive integer (got ${calibImages})`);
  const batch = o.batch ?? DEFAULTS.batch;
  if (!Number.isInteger(batch) || batch < 1) throw usageError(`--batch must be a positive integer (got ${batch})`);
  return { mode, calibration, percentile, calibImages, seed: o.seed ?? DEFAULTS.seed, batch };
}

/** What a mode did to one layer (the rest of its record comes from the target). */
type LayerOutcome = Pick<LayerRecord, 'precision' | 'scheme' | 'activation' | 'weights' | 'biasInt32'>;

const STATIC_SCHEME = 'int8 weights symmetric per output channel, uint8 activations asymmetric per tensor (calibrated)';
const DYNAMIC_SCHEME = 'int8 weights symmetric per output channel, uint8 activations quantized at run time (DynamicQuantizeLinear)';

function staticOutcome(q: QuantizedLayer): LayerOutcome {
  return {
    precision: 'int8',
    scheme: STATIC_SCHEME,
    activation: {
      min: q.range.min,
      max: q.range.max,
      observedMin: q.range.observedMin,
      observedMax: q.range.observedMax,
      scale: q.activation.scale,
      zeroPoint: q.activation.zeroPoint,
      clippedFraction: q.range.clippedFraction,
    },
    weights: { channels: q.result.channels, zeroChannels: q.result.zeroChannels, maxStepError: q.result.maxWeightStepError },
    biasInt32: q.target.linear.bias ? q.result.biasInt32 : null,
  };
}

function layerRecord(t: QuantTarget, done: LayerOutcome | undefined, reason: string | null): LayerRecord {
  const l = t.linear;
  return {
    name: t.name,
    block: t.block,
    kind: t.kind,
    node: l.node,
    weight: l.weight,
    inFeatures: l.inFeatures,
    outFeatures: l.outFeatures,
    ...(done ?? { precision: 'float32', scheme: 'float', activation: null, weights: null, biasInt32: null }),
    reason: done ? null : reason,
    sensitivity: null,
  };
}

export const LAYER_COLUMNS = [
  'name', 'block', 'kind', 'precision', 'in_features', 'out_features', 'act_min', 'act_max', 'observed_min', 'observed_max',
  'scale', 'zero_point', 'clipped_fraction', 'weight_zero_channels', 'weight_max_step_error', 'bias_int32', 'sensitivity_kl', 'sensitivity_agreement', 'reason',
] as const;

/** layers.csv: one row per linear layer. */
export function layerRows(layers: readonly LayerRecord[]): CsvRow[] {
  return layers.map((l) => ({
    name: l.name,
    block: l.block,
    kind: l.kind,
    precision: l.precision,
    in_features: l.inFeatures,
    out_features: l.outFeatures,
    act_min: l.activation?.min,
    act_max: l.activation?.max,
    observed_min: l.activation?.observedMin,
    observed_max: l.activation?.observedMax,
    scale: l.activation?.scale,
    zero_point: l.activation?.zeroPoint,
    clipped_fraction: l.activation?.clippedFraction,
    weight_zero_channels: l.weights?.zeroChannels,
    weight_max_step_error: l.weights?.maxStepError,
    bias_int32: l.biasInt32 === null ? null : l.biasInt32 ? 1 : 0,
    sensitivity_kl: l.sensitivity?.meanKl,
    sensitivity_agreement: l.sensitivity?.agreement,
    reason: l.reason,
  }));
}

/** The images split into calibration and evaluation, disjoint. */
function splitImages(o: QuantizeOptions, calibImages: number, seed: number): { items: DataItem[]; calib: number[]; notice?: string } {
  const src = discoverImages(o.images, { labels: o.labels });
  const total = src.items.length;
  if (total < 2) throw badInput(`${o.images}: quantize needs at least 2 images (calibration images and different evaluation images); found ${total}.`);
  let n = calibImages;
  let notice: string | undefined;
  if (n >= total) {
    n = Math.floor(total / 2);
    notice = `${COMMAND}: ${o.images} has ${total} images, not more than --calib-images ${calibImages}: calibrating on ${n} and evaluating on the other ${total - n}`;
  }
  return { items: src.items, calib: calibrationIndices(total, n, seed), notice };
}

export interface QuantizeOutcome {
  report: QuantizeReport;
  outDir: OutDir;
  modelPath: string;
}

/** The whole command: check inputs, claim the outputs, calibrate, rewrite, save, verify fusion, evaluate, write the reports. */
export async function runQuantize(modelPath: string, o: QuantizeOptions, hooks: RunHooks = { notice: o.notice }): Promise<QuantizeOutcome> {
  return runCommand(COMMAND, hooks, (run) => quantizeRun(run, modelPath, o));
}

async function quantizeRun(run: CommandRun, modelPath: string, o: QuantizeOptions): Promise<QuantizeOutcome> {
  const opt = checkOptions(o);
  const clock = run.clock;
  const stored = await clock.time('load', () => loadModel(modelPath));
  assertFloatModel(stored.proto, modelPath, COMMAND);
  const { loaded, layout } = await clock.time('locate', () => prepareVitModel(stored, { output: o.output }));
  const { all, chosen } = scopeOf(loaded.proto, layout, o.include, o.exclude);
  if (o.mode === 'fp16' && (o.include?.length || o.exclude?.length)) throw usageError('--include/--exclude choose the layers of --mode int8 and dynamic; --mode fp16 converts the whole model (LayerNorm, Softmax and residual Adds stay float32)');
  if (chosen.length === 0) throw usageError(`--include/--exclude leave no linear layer to quantize in ${modelPath}`);
  if (opt.mode !== 'fp16' && layout.facts.opset < MIN_QDQ_OPSET) {
    throw unsupported(`${modelPath}: opset ${layout.facts.opset}; int8 quantization needs opset ${MIN_QDQ_OPSET} or newer (per-channel DequantizeLinear). Re-export the model with opset_version=${MIN_QDQ_OPSET} or later, or use --mode fp16.`);
  }
  const spec = inferPreprocess(layout.inputDims, o.preprocess);
  // Dynamic int8 needs no calibration: every image is evaluated.
  const { items, calib, notice } = opt.mode === 'dynamic' ? { items: [], calib: [], notice: undefined } : splitImages(o, opt.calibImages, opt.seed);
  if (notice) o.notice?.(notice);
  if (o.maxDrop !== undefined && opt.mode !== 'int8') throw usageError('--max-drop chooses layers of --mode int8 (static); drop it, or use --mode int8');
  if (o.maxDrop !== undefined && !(o.maxDrop >= 0 && o.maxDrop <= 100)) throw usageError(`--max-drop is in accuracy points, from 0 to 100 (got ${o.maxDrop})`);
  let validation: number[] = [];
  if (o.maxDrop !== undefined) {
    const rest = items.map((_, i) => i).filter((i) => !calib.includes(i));
    const want = o.valImages ?? Math.min(500, Math.floor(rest.length / 2));
    if (want < 1 || want >= rest.length) throw badInput(`${o.images}: --max-drop needs validation images and evaluation images besides the ${calib.length} calibration images; ${rest.length} are left, asked for ${want} for validation. Give more images or lower --calib-images / --val-images.`);
    validation = calibrationIndices(rest.length, want, opt.seed + 1).map((k) => rest[k]!);
    if (items.filter((it, i) => validation.includes(i) && it.label !== undefined).length === 0) throw badInput(`${o.images}: --max-drop needs labelled images (the accuracy drop is measured on them); pass --labels or use class subfolders.`);
  }
  const calibSet = new Set([...calib, ...validation]);

  // Claim every output before the work (the shared command run: refused without --force, locked,
  // proved writable): no partial output for bad input, nothing overwritten without --force.
  const target = o.save ? path.resolve(o.save) : undefined;
  if (target && !o.force && fs.existsSync(target)) throw usageError(`${o.save} already exists; pass --force to overwrite it, or choose another --save path.`);
  const outDir = run.claim({ out: o.out, force: o.force, files: o.save ? [FILES.report, FILES.layers] : Object.values(FILES) });
  const modelFile = target ?? outDir.path(FILES.model);

  const outcomes = new Map<string, LayerOutcome>();
  const skipped = new Map<string, string>();
  let model: ModelProto;
  let calibration: QuantizeResults['calibration'] = null;
  let float16: QuantizeResults['float16'] = null;
  let mixed: QuantizeResults['mixedPrecision'] = null;
  let sensitivity = new Map<string, Sensitivity>();
  if (opt.mode === 'int8') {
    const fixed = typeof layout.facts.batch === 'number' ? layout.facts.batch : undefined;
    const calibItems = calib.map((i) => items[i]!);
    const batches = async function* () {
      for await (const b of iterateBatches(calibItems, spec, fixed ?? opt.batch)) {
        if (fixed !== undefined && b.dims[0] !== fixed) continue; // a fixed-batch model takes only full batches
        yield { data: b.data, dims: b.dims };
      }
    };
    o.onProgress?.({ phase: 'calibrate', done: 0, total: calibItems.length });
    const q = await clock.time('calibrate', () =>
      quantizeStatic(loaded.proto, layout, batches(), {
        method: opt.calibration,
        percentile: opt.percentile,
        include: o.include,
        exclude: o.exclude,
        runtime: o.runtime,
        label: modelPath,
        onProgress: (done) => o.onProgress?.({ phase: 'calibrate', done, total: calibItems.length }),
      }),
    );
    model = q.model;
    let layersDone = q.layers;
    if (o.maxDrop !== undefined) {
      const valItems = validation.map((i) => items[i]!);
      const valBatches: ClassifierBatch[] = [];
      for await (const b of iterateBatches(valItems, spec, fixed ?? opt.batch)) valBatches.push({ data: b.data, dims: b.dims, labels: b.labels });
      const chosenQ = chosen.filter((t) => q.layers.some((l) => l.target.name === t.name));
      const mixedResult = await clock.time('sensitivity', () =>
        chooseMixedPrecision(loaded.proto, layout, chosenQ, q.ranges, valBatches, {
          maxDrop: o.maxDrop!,
          runtime: o.runtime,
          batch: fixed ?? opt.batch,
          label: modelPath,
          onProgress: (done, total) => o.onProgress?.({ phase: 'sensitivity', done, total }),
        }),
      );
      model = mixedResult.model;
      layersDone = mixedResult.layers;
      sensitivity = mixedResult.sensitivity;
      for (const name of mixedResult.kept) skipped.set(name, `kept in float for --max-drop ${o.maxDrop} (sensitivity rank ${mixedResult.ranking.indexOf(name) + 1})`);
      mixed = {
        maxDrop: o.maxDrop,
        validation: { images: validation.length, indices: validation },
        floatAccuracy: mixedResult.floatAccuracy,
        ranking: mixedResult.ranking,
        steps: mixedResult.steps,
        kept: mixedResult.kept,
        met: mixedResult.met,
      };
    }
    for (const l of layersDone) outcomes.set(l.target.name, staticOutcome(l));
    calibration = { method: opt.calibration, percentile: opt.calibration === 'percentile' ? opt.percentile : null, images: calib.length, seed: opt.seed, indices: calib };
  } else if (opt.mode === 'dynamic') {
    const r = await clock.time('rewrite', () => quantizeLinearsDynamic(loaded.proto, chosen.map((t) => t.linear), modelPath));
    model = r.model;
    const byLinear = new Map(chosen.map((t) => [t.linear, t.name]));
    for (const l of r.layers) {
      outcomes.set(byLinear.get(l.linear)!, { precision: 'int8', scheme: DYNAMIC_SCHEME, activation: null, weights: { channels: l.channels, zeroChannels: l.zeroChannels, maxStepError: l.maxWeightStepError }, biasInt32: null });
    }
    for (const k of r.skipped) skipped.set(byLinear.get(k.linear)!, k.reason);
  } else {
    const islands = float32Islands(new Graph(loaded.proto), layout);
    const r = await clock.time('rewrite', () => convertToFloat16(loaded.proto, (n) => islands.has(n), modelPath));
    model = r.model;
    const check = await clock.time('calibrate', () => float16Overflow(r, layout.input, calib.map((i) => items[i]!), spec, typeof layout.facts.batch === 'number' ? layout.facts.batch : Math.min(opt.batch, 8), typeof layout.facts.batch === 'number', o));
    float16 = { clampedWeights: r.clampedWeights, maxAbsActivation: check.maxAbs, overflow: check.overflow };
    for (const t of all) outcomes.set(t.name, { precision: 'float16', scheme: 'float16 weights and activations (LayerNorm, Softmax and residual Adds in float32)', activation: null, weights: null, biasInt32: null });
    calibration = { method: 'float16-overflow-check', percentile: null, images: calib.length, seed: opt.seed, indices: calib };
  }
  const bytes = encodeModel(model);
  const fused = await clock.time('verify', () => optimizedGraph(bytes, { threads: o.runtime?.threads || 1 }));
  const notes: string[] = [];
  const quantized = [...outcomes.values()].filter((x) => x.precision === 'int8').length;
  if (float16) {
    if (float16.clampedWeights > 0) notes.push(`${float16.clampedWeights} weight values beyond ±${FLOAT16_MAX} were stored as ±${FLOAT16_MAX}`);
    if (float16.overflow) notes.push(`an activation overflows float16 on the calibration images (largest |value| ${float16.maxAbsActivation}); the float16 model computes infinities there - keep those layers in float32 or use --mode int8`);
    notes.push('float16 is a GPU format: ONNX Runtime CPU runs it through inserted Casts, usually slower than float32 (a DeiT-S block measured 0.77x); run it with --provider cuda');
    for (const n of notes) o.notice?.(`${COMMAND}: ${n}`);
  }
  if (fused.fusedInt8 < quantized) {
    const line = `${COMMAND}: ONNX Runtime fused ${fused.fusedInt8} of the ${quantized} quantized layers into int8 kernels; the others run as float over dequantized weights (slower). Report the model's export style in an issue.`;
    notes.push(line);
    o.notice?.(line);
  }
  await clock.time('save', () => saveModel(model, modelFile, { force: true }));

  const chosenNames = new Set(chosen.map((t) => t.name));
  const scoped = Boolean(o.include?.length || o.exclude?.length);
  const layers = all.map((t) => ({
    ...layerRecord(t, outcomes.get(t.name), skipped.get(t.name) ?? (chosenNames.has(t.name) ? null : scoped ? 'out of the --include/--exclude scope' : 'kept in float by default (the classifier head)')),
    sensitivity: sensitivity.get(t.name) ?? null,
  }));

  let evaluation: QuantizeResults['evaluation'] = null;
  let runtime: QuantizeReport['runtime'] = null;
  if (o.evaluate !== false) {
    const ev = await clock.time('evaluate', () =>
      evaluateModels(modelFile, {
        images: o.images,
        labels: o.labels,
        select: (list) => list.filter((_, i) => !calibSet.has(i)),
        limit: o.limit,
        compare: modelPath,
        maxDrop: o.maxDrop,
        compareOutput: o.output,
        output: undefined,
        preprocess: o.preprocess,
        batch: opt.batch,
        latency: o.latency,
        warmup: o.warmup,
        repeat: o.repeat,
        runtime: o.runtime,
        notice: o.notice,
        onProgress: (e) => o.onProgress?.(e),
      }),
    );
    evaluation = ev.report.results;
    runtime = ev.report.runtime;
  }
  const sizeBytes = fs.statSync(modelFile).size;
  const results: QuantizeResults = {
    mode: opt.mode,
    calibration,
    output: { path: o.save ?? path.relative(process.cwd(), modelFile), sha256: sha256Hex(bytes), bytes: sizeBytes },
    fused: (opt.mode as QuantizeMode) === 'fp16' ? null : { quantizedLayers: quantized, int8Kernels: fused.fusedInt8, ops: fused.ops },
    layers,
    float16,
    mixedPrecision: mixed,
    evaluation,
    notes,
  };
  const report = run.envelope(
    {
      options: o.reportOptions ?? { images: o.images, mode: opt.mode, calibration: opt.calibration, calibImages: opt.calibImages, seed: opt.seed, include: o.include, exclude: o.exclude },
      model: { path: modelPath, sha256: stored.sha256, layout: layout as unknown as QuantizeReport['model']['layout'] },
      outputModel: outputModelInfo(modelFile, results.output.path),
      runtime,
      results,
    },
    quantizeResultsSchema,
  );
  await run.writeReports(report, (out) => out.writeCsv(FILES.layers, layerRows(layers), LAYER_COLUMNS));
  return { report, outDir, modelPath: modelFile };
}

