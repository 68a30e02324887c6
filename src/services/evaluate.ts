// The shared classifier evaluation every command and test uses: run a classifier (an ONNX Runtime
// session, or anything that turns a batch of images into class scores) over a dataset, then
// predictions, true-class probabilities, top-1 / top-k accuracy with a Wilson interval, per-class
// accuracy and the confusion cells; with a reference model on the same images also top-1
// agreement, KL(reference || model), max |Δ probability| and the paired accuracy difference.
import type { Feed, SessionLike } from '../runtime/session.js';
import { fixedBatchOf, runBatched } from '../runtime/batching.js';
import type { ClassifierIo } from '../onnx/classifier.js';
import { f16ToF32, f32ToF16 } from '../onnx/tensor.js';
import { scoreLogits } from '../analysis/classify.js';
import { klDivergenceFromLogits, softmax } from '../analysis/stats.js';
import { pairedCounts, pairedDifference, wilsonInterval, type Interval, type PairedDifference } from '../analysis/intervals.js';
import { badInput, unsupported } from '../errors.js';

/** Preprocessed images [b, C, H, W] and their labels (-1 = none; omit when unlabelled). */
export interface ClassifierBatch {
  data: Float32Array;
  dims: readonly number[];
  labels?: ArrayLike<number>;
}

/** Anything that scores a batch: class scores [b, K] that softmax turns into probabilities (logits or log-probabilities). */
export interface Classifier {
  logits(batch: ClassifierBatch): Promise<Float32Array | Float64Array>;
}

export interface EvaluateOptions {
  /** k of the top-k accuracy (default 5). */
  topK?: number;
  /** Keep every softmax row (probabilities [count, classes], float32). */
  keepProbabilities?: boolean;
  /** Called after each batch with the images done so far. */
  onProgress?: (done: number) => void;
}

export interface ClassAccuracy {
  class: number;
  /** Labelled images of this class. */
  count: number;
  correct: number;
  /** correct / count; null when the class has no image. */
  accuracy: number | null;
}

export interface ConfusionCell {
  true: number;
  pred: number;
  count: number;
}

export interface AccuracySummary {
  labelled: number;
  correct: number;
  top1: number;
  /** Wilson 95% interval of top1. */
  top1Interval: Interval;
  /** null when the model has no more than k classes (every label is then in the top k). */
  topK: { k: number; correct: number; accuracy: number } | null;
  /** Mean softmax probability of the true class over the labelled images. */
  meanTrueProb: number;
  perClass: ClassAccuracy[];
  /** Non-zero cells of the confusion matrix, by true class then prediction. */
  confusion: ConfusionCell[];
}

export interface ClassifierEvaluation {
  count: number;
  classes: number;
  /** Per image: the label (-1 = none), top-1 prediction, softmax probability of the label (NaN without one), top-k hit. */
  labels: Int32Array;
  predictions: Int32Array;
  trueProbabilities: Float64Array;
  topKHits: Uint8Array;
  /** Softmax rows [count, classes], with keepProbabilities. */
  probabilities?: Float32Array;
  /** null when no image has a label. */
  accuracy: AccuracySummary | null;
}

export interface ClassifierComparison {
  count: number;
  /** Images where model and reference predict the same class. */
  agreed: number;
  agreement: number;
  /** Mean over images of KL(softmax(reference) || softmax(model)), nats. */
  meanKl: number;
  /** Largest |p_model - p_reference| over images and classes. */
  maxAbsProbDiff: number;
  /** Accuracy of the model minus the reference's on the labelled images, paired; null without labels. */
  paired: PairedDifference | null;
}

export interface Compared {
  model: ClassifierEvaluation;
  reference: ClassifierEvaluation;
  comparison: ClassifierComparison;
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime sessions as classifiers

export interface SessionClassifierOptions {
  /** Images per run for a dynamic batch axis (a fixed batch size is always respected). */
  batchSize: number;
}

/** Float32 image data as the element type the model's input takes. */
export function inputFeed(data: Float32Array, dims: readonly number[], type: ClassifierIo['inputType']): Feed {
  if (type === 'float16') return { data: Uint16Array.from(data, f32ToF16), dims, type: 'float16' };
  if (type === 'float64') return { data: Float64Array.from(data), dims };
  return { data, dims };
}

/** Class scores [b, K] from an output: float16 decoded, probabilities turned into log-probabilities. */
export function scoresOf(data: Float32Array | Float64Array | Uint16Array, type: string, scores: ClassifierIo['scores']): Float32Array | Float64Array {
  const x = type === 'float16' ? Float32Array.from(data as Uint16Array, f16ToF32) : (data as Float32Array | Float64Array);
  if (scores !== 'probabilities') return x;
  return Float64Array.from(x, (p) => Math.log(p));
}

/** The number of classes an output [b, ...] holds: the product of its dims after the batch, at most one of them > 1. */
export function classesOf(dims: readonly number[], name: string, label: string): number {
  const rest = dims.slice(1);
  if (dims.length < 2 || rest.filter((d) => d !== 1).length > 1) {
    throw unsupported(`${label}: output ${name} has shape [${dims.join(', ')}], not [batch, classes]; pick the class scores with --output NAME.`);
  }
  return rest.reduce((a, d) => a * d, 1);
}

/** A classifier over an ONNX Runtime session: batches in chunks (fixed batch sizes respected), scores out. */
export function sessionClassifier(session: SessionLike, io: Pick<ClassifierIo, 'input' | 'inputType' | 'output' | 'scores'>, o: SessionClassifierOptions & { label: string }): Classifier {
  const fixedBatch = fixedBatchOf(session, io.input);
  return {
    async logits(batch) {
      const b = batch.dims[0]!;
      const per = batch.data.length / b;
      const out = await runBatched(
        session,
        (st, c) => {
          const rows = st === 0 && c === b ? batch.data : batch.data.slice(st * per, (st + c) * per);
          return { [io.input]: inputFeed(rows, [c, ...batch.dims.slice(1)], io.inputType) };
        },
        b,
        { batchSize: o.batchSize, fixedBatch, outputs: [io.output] },
      );
      const y = out[io.output]!;
      classesOf(y.dims, io.output, o.label);
      return scoresOf(y.data as Float32Array, y.type, io.scores);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The evaluation

/** Per-model collector over batches. */
class Collector {
  readonly labels: Int32Array[] = [];
  readonly predictions: Int32Array[] = [];
  readonly trueProb: Float64Array[] = [];
  readonly topKHit: Uint8Array[] = [];
  readonly probabilities: Float32Array[] = [];
  count = 0;
}

function concat<T extends Int32Array | Float64Array | Uint8Array | Float32Array>(parts: T[], n: number, Ctor: new (n: number) => T): T {
  const out = new Ctor(n);
  let o = 0;
  for (const p of parts) {
    out.set(p as never, o);
    o += p.length;
  }
  return out;
}

/** The accuracy summary of per-image labels, predictions, true-class probabilities and top-k hits. */
export function summarizeAccuracy(labels: Int32Array, predictions: Int32Array, trueProb: Float64Array, topKHits: Uint8Array, classes: number, k: number): AccuracySummary | null {
  const perClassCount = new Int32Array(classes);
  const perClassCorrect = new Int32Array(classes);
  const cells = new Map<number, number>();
  let labelled = 0;
  let correct = 0;
  let topK = 0;
  let probSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y < 0) continue;
    const p = predictions[i]!;
    labelled++;
    perClassCount[y]!++;
    if (p === y) {
      correct++;
      perClassCorrect[y]!++;
    }
    if (topKHits[i]) topK++;
    probSum += trueProb[i]!;
    const key = y * classes + p;
    cells.set(key, (cells.get(key) ?? 0) + 1);
  }
  if (labelled === 0) return null;
  const confusion = [...cells]
    .sort((a, b) => a[0] - b[0])
    .map(([key, count]) => ({ true: Math.floor(key / classes), pred: key % classes, count }));
  return {
    labelled,
    correct,
    top1: correct / labelled,
    top1Interval: wilsonInterval(correct, labelled),
    topK: classes > k ? { k, correct: topK, accuracy: topK / labelled } : null,
    meanTrueProb: probSum / labelled,
    perClass: Array.from(perClassCount, (count, c) => ({ class: c, count, correct: perClassCorrect[c]!, accuracy: count ? perClassCorrect[c]! / count : null })),
    confusion,
  };
}

function finish(c: Collector, classes: number, k: number, keep: boolean): ClassifierEvaluation {
  const n = c.count;
  const labels = concat(c.labels, n, Int32Array);
  const predictions = concat(c.predictions, n, Int32Array);
  const trueProbabilities = concat(c.trueProb, n, Float64Array);
  const topKHits = concat(c.topKHit, n, Uint8Array);
  const e: ClassifierEvaluation = {
    count: n,
    classes,
    labels,
    predictions,
    trueProbabilities,
    topKHits,
    accuracy: summarizeAccuracy(labels, predictions, trueProbabilities, topKHits, classes, k),
  };
  if (keep) e.probabilities = concat(c.probabilities, n * classes, Float32Array);
  return e;
}

interface RunState {
  collectors: Collector[];
  classes: number;
  agreed: number;
  klSum: number;
  maxAbs: number;
}

async function evaluateAll(models: Classifier[], names: string[], dataset: AsyncIterable<ClassifierBatch> | Iterable<ClassifierBatch>, o: EvaluateOptions): Promise<RunState> {
  const k = o.topK ?? 5;
  const st: RunState = { collectors: models.map(() => new Collector()), classes: 0, agreed: 0, klSum: 0, maxAbs: 0 };
  for await (const batch of dataset) {
    const b = batch.dims[0]!;
    if (b === 0) continue;
    const labels = batch.labels ? Int32Array.from(batch.labels) : new Int32Array(b).fill(-1);
    const outs: Array<Float32Array | Float64Array> = [];
    for (let m = 0; m < models.length; m++) {
      const y = await models[m]!.logits(batch);
      const K = y.length / b;
      if (!Number.isInteger(K) || K < 1) throw unsupported(`${names[m]}: returned ${y.length} scores for ${b} images; expected [batch, classes]`);
      if (st.classes === 0) st.classes = K;
      else if (K !== st.classes) throw badInput(`${names[m]} has ${K} classes but ${names[0]} has ${st.classes}; compare models over the same classes`);
      for (let i = 0; i < b; i++) if (labels[i]! >= K) throw badInput(`label ${labels[i]} is outside the ${K} classes of ${names[m]} (labels are 0-based class indices)`);
      outs.push(y);
      const s = scoreLogits(y, b, K, labels, k);
      const c = st.collectors[m]!;
      c.labels.push(labels);
      c.predictions.push(s.predictions);
      c.trueProb.push(s.trueProb);
      c.topKHit.push(s.topKHit);
      if (o.keepProbabilities) c.probabilities.push(Float32Array.from(softmax(y, b, K)));
      c.count += b;
    }
    if (models.length === 2) compareBatch(st, outs[0]!, outs[1]!, b);
    o.onProgress?.(st.collectors[0]!.count);
  }
  return st;
}

function compareBatch(st: RunState, model: Float32Array | Float64Array, reference: Float32Array | Float64Array, b: number): void {
  const K = st.classes;
  const [cm, cr] = st.collectors as [Collector, Collector];
  const pm = cm.predictions[cm.predictions.length - 1]!;
  const pr = cr.predictions[cr.predictions.length - 1]!;
  for (let i = 0; i < b; i++) if (pm[i] === pr[i]) st.agreed++;
  for (const v of klDivergenceFromLogits(reference, model, b, K)) st.klSum += v;
  const a = softmax(model, b, K);
  const r = softmax(reference, b, K);
  for (let j = 0; j < a.length; j++) {
    const d = Math.abs(a[j]! - r[j]!);
    if (d > st.maxAbs) st.maxAbs = d;
  }
}

/** Score `model` on every batch of `dataset`. */
export async function evaluateClassifier(model: Classifier, dataset: AsyncIterable<ClassifierBatch> | Iterable<ClassifierBatch>, o: EvaluateOptions = {}): Promise<ClassifierEvaluation> {
  const st = await evaluateAll([model], ['the model'], dataset, o);
  return finish(st.collectors[0]!, st.classes, o.topK ?? 5, Boolean(o.keepProbabilities));
}

/** Score `model` and `reference` on the same batches (each decoded once) and compare them image by image. */
export async function compareClassifiers(
  model: Classifier,
  reference: Classifier,
  dataset: AsyncIterable<ClassifierBatch> | Iterable<ClassifierBatch>,
  o: EvaluateOptions & { names?: [string, string] } = {},
): Promise<Compared> {
  const st = await evaluateAll([model, reference], o.names ?? ['the model', 'the reference'], dataset, o);
  const k = o.topK ?? 5;
  const keep = Boolean(o.keepProbabilities);
  const m = finish(st.collectors[0]!, st.classes, k, keep);
  const r = finish(st.collectors[1]!, st.classes, k, keep);
  let paired: PairedDifference | null = null;
  if (m.accuracy) {
    const lab: number[] = [];
    for (let i = 0; i < m.count; i++) if (m.labels[i]! >= 0) lab.push(i);
    paired = pairedDifference(
      pairedCounts(
        lab.map((i) => m.predictions[i] === m.labels[i]),
        lab.map((i) => r.predictions[i] === r.labels[i]),
      ),
    );
  }
  const n = m.count;
  return {
    model: m,
    reference: r,
    comparison: { count: n, agreed: st.agreed, agreement: n ? st.agreed / n : NaN, meanKl: n ? st.klSum / n : NaN, maxAbsProbDiff: st.maxAbs, paired },
  };
}
