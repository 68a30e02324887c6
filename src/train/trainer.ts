// Trains a synthetic ViT (src/vit/synth.ts) on 28x28 digits: forward + backward in ONNX Runtime
// through the training graph (trainingGraph.ts), Adam in TypeScript, seeded data order and
// augmentation, one intra-op thread, so the same options give the same weights bit for bit.
import { buildSyntheticVit, mulberry32, type SynthVit, type SynthVitConfig } from '../vit/synth.js';
import { createSession, type SessionLike } from '../runtime/session.js';
import { encodeModel } from '../onnx/model.js';
import { runtimeError } from '../errors.js';
import { scoreLogits } from '../analysis/classify.js';
import { evaluateClassifier, type Classifier, type ClassifierBatch } from '../services/evaluate.js';
import { Adam, warmupCosine } from './adam.js';
import { buildTrainingGraph, initialValues, weightsAsInputs, withCrossEntropy, LOSS_OUTPUT, TARGET_INPUT, type TrainParam, type TrainingGraph } from './trainingGraph.js';
import { DIGIT_PIXELS, DIGIT_SIDE, type DigitSet } from './digits.js';

export interface TrainOptions {
  /** The model (its `seed` draws the initial weights). imageSize 28, channels 1, classes 10. */
  vit: Partial<SynthVitConfig>;
  /** Seed of the data order and the augmentation. */
  seed: number;
  epochs: number;
  batch: number;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  /** Final learning rate as a fraction of the peak (cosine decay). */
  minLrFraction: number;
  weightDecay: number;
  /** Random translation of each training digit by up to this many pixels per axis (0 = none). */
  shift: number;
  /** ONNX Runtime intra-op threads (1 keeps runs bit-reproducible). */
  threads: number;
  /** Stop after this many optimizer steps (tests); the epoch in progress is then evaluated. */
  maxSteps?: number;
  /** Evaluate the held-out split after each epoch (default true). */
  evaluate?: boolean;
}

export const DIGITS_TRAIN_DEFAULTS: TrainOptions = {
  vit: { imageSize: 28, channels: 1, patch: 7, width: 64, depth: 4, heads: 4, ffn: 128, classes: 10, opset: 17, seed: 7, gelu: 'erf', norm: 'layernorm', linear: 'matmul', head: 'cls', batch: 'dynamic', inputName: 'input' },
  seed: 7,
  epochs: 30,
  batch: 64,
  lr: 2e-3,
  warmupSteps: 100,
  minLrFraction: 0.02,
  weightDecay: 0.05,
  shift: 2,
  threads: 1,
};

export interface EpochRecord {
  epoch: number;
  steps: number;
  /** Learning rate at the epoch's last step. */
  lr: number;
  /** Mean loss / accuracy over the epoch's training batches (augmented, weights changing). */
  trainLoss: number;
  trainAccuracy: number;
  heldOutLoss: number;
  heldOutAccuracy: number;
  seconds: number;
}

export interface TrainResult {
  vit: SynthVit;
  params: TrainParam[];
  /** Trained values by tensor name (stored layout: MatMul weights [in, out]). */
  weights: Record<string, Float32Array>;
  curve: EpochRecord[];
  /** The loss of every optimizer step, in order. */
  stepLosses: number[];
  seconds: number;
  graph: TrainingGraph;
}

export interface TrainHooks {
  onEpoch?: (r: EpochRecord) => void;
  onStep?: (step: number, loss: number) => void;
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, rand: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Copy digit `src` of `set` into `out` at `offset`, translated by (dx, dy) pixels with zero fill. */
export function shiftedDigit(set: DigitSet, src: number, dx: number, dy: number, out: Float32Array, offset: number): void {
  const base = src * DIGIT_PIXELS;
  for (let y = 0; y < DIGIT_SIDE; y++) {
    const sy = y - dy;
    for (let x = 0; x < DIGIT_SIDE; x++) {
      const sx = x - dx;
      out[offset + y * DIGIT_SIDE + x] = sy >= 0 && sy < DIGIT_SIDE && sx >= 0 && sx < DIGIT_SIDE ? set.pixels[base + sy * DIGIT_SIDE + sx]! : 0;
    }
  }
}

function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  const t = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) t[i * classes + labels[i]!] = 1;
  return t;
}

/** Session over the model with the weights as inputs, computing `loss` and `logits` only. */
export async function evalSession(vit: SynthVit, params: readonly TrainParam[], threads: number): Promise<SessionLike> {
  const m = weightsAsInputs(withCrossEntropy(vit.model, vit.tensors.logits!, vit.config.classes), params.map((p) => p.name));
  return createSession(encodeModel(m), { provider: 'cpu', threads });
}

/** Mean cross-entropy and accuracy of `weights` on `set` (batches of `batch`). */
export async function evaluate(session: SessionLike, vit: SynthVit, weights: Record<string, Float32Array>, set: DigitSet, batch = 500): Promise<{ loss: number; accuracy: number; predictions: Uint8Array }> {
  const classes = vit.config.classes;
  let lossSum = 0;
  // The eval session computes the loss beside the logits: it needs the weights and one-hot targets as inputs.
  const model: Classifier = {
    async logits(b) {
      const n = b.dims[0]!;
      const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {
        [vit.config.inputName]: { data: b.data, dims: b.dims },
        [TARGET_INPUT]: { data: oneHot(b.labels!, classes), dims: [n, classes] },
      };
      for (const [k, w] of Object.entries(weights)) feeds[k] = { data: w, dims: dimsOf(vit, k) };
      const out = await session.run(feeds, [LOSS_OUTPUT, vit.tensors.logits!]);
      lossSum += (out[LOSS_OUTPUT]!.data as Float32Array)[0]! * n;
      return out[vit.tensors.logits!]!.data as Float32Array;
    },
  };
  function* batches(): Generator<ClassifierBatch> {
    for (let s = 0; s < set.count; s += batch) {
      const n = Math.min(batch, set.count - s);
      yield { data: set.pixels.slice(s * DIGIT_PIXELS, (s + n) * DIGIT_PIXELS), dims: [n, 1, DIGIT_SIDE, DIGIT_SIDE], labels: set.labels.subarray(s, s + n) };
    }
  }
  const ev = await evaluateClassifier(model, batches());
  return { loss: lossSum / set.count, accuracy: ev.accuracy?.top1 ?? NaN, predictions: Uint8Array.from(ev.predictions) };
}

const dimsCache = new WeakMap<SynthVit, Map<string, number[]>>();
function dimsOf(vit: SynthVit, name: string): number[] {
  let m = dimsCache.get(vit);
  if (!m) {
    m = new Map();
    for (const t of vit.model.graph!.initializer) m.set(t.name, t.dims.map(Number));
    dimsCache.set(vit, m);
  }
  const d = m.get(name);
  if (!d) throw new Error(`no weight named ${name}`);
  return d;
}

/** Train on `train`, evaluating on `heldOut` after each epoch. */
export async function trainDigits(train: DigitSet, heldOut: DigitSet, o: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const t0 = performance.now();
  const vit = buildSyntheticVit(o.vit);
  const classes = vit.config.classes;
  const graph = await buildTrainingGraph(vit, { threads: o.threads });
  const params = graph.params;
  const weights = initialValues(vit.model, params);
  const session = await createSession(encodeModel(graph.model), { provider: 'cpu', threads: o.threads });
  const evalSess = o.evaluate === false ? undefined : await evalSession(vit, params, o.threads);
  // Decay the matrices (linear, conv); not biases, norms, class token or position embedding.
  const decayed = new Set(params.filter((p) => /\.weight$/.test(p.logical) && p.dims.length >= 2).map((p) => p.name));
  const adam = new Adam({ lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay }, decayed);
  const stepsPerEpoch = Math.floor(train.count / o.batch);
  const total = Math.min(stepsPerEpoch * o.epochs, o.maxSteps ?? Infinity);
  const gradNames = params.map((p) => graph.gradOutputs[p.name]!);
  const fetch = [LOSS_OUTPUT, graph.logitsName, ...gradNames];
  const curve: EpochRecord[] = [];
  const stepLosses: number[] = [];
  const x = new Float32Array(o.batch * DIGIT_PIXELS);
  let step = 0;
  try {
    for (let epoch = 1; epoch <= o.epochs && step < total; epoch++) {
      const te = performance.now();
      const rand = mulberry32((Math.imul(o.seed, 0x9e3779b1) + epoch) >>> 0);
      const order = permutation(train.count, rand);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lr = 0;
      for (let k = 0; k < stepsPerEpoch && step < total; k++) {
        const labels = new Uint8Array(o.batch);
        for (let i = 0; i < o.batch; i++) {
          const src = order[k * o.batch + i]!;
          const dx = o.shift ? Math.floor(rand() * (2 * o.shift + 1)) - o.shift : 0;
          const dy = o.shift ? Math.floor(rand() * (2 * o.shift + 1)) - o.shift : 0;
          shiftedDigit(train, src, dx, dy, x, i * DIGIT_PIXELS);
          labels[i] = train.labels[src]!;
        }
        const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
          [graph.inputName]: { data: x, dims: [o.batch, 1, DIGIT_SIDE, DIGIT_SIDE] },
          [graph.targetName]: { data: oneHot(labels, classes), dims: [o.batch, classes] },
        };
        for (const p of params) feeds[p.name] = { data: weights[p.name]!, dims: p.dims };
        const out = await session.run(feeds, fetch);
        const loss = (out[LOSS_OUTPUT]!.data as Float32Array)[0]!;
        if (!Number.isFinite(loss)) throw runtimeError(`training diverged at step ${step + 1} (loss ${loss}); lower the learning rate`);
        const logits = out[graph.logitsName]!.data as Float32Array;
        correct += scoreLogits(logits, o.batch, classes, labels).correct;
        lossSum += loss * o.batch;
        seen += o.batch;
        const grads: Record<string, Float32Array> = {};
        params.forEach((p, i) => (grads[p.name] = out[gradNames[i]!]!.data as Float32Array));
        lr = warmupCosine(step, total, o.warmupSteps, o.lr, o.minLrFraction);
        adam.step(weights, grads, lr);
        step++;
        stepLosses.push(loss);
        hooks.onStep?.(step, loss);
      }
      const ev = evalSess ? await evaluate(evalSess, vit, weights, heldOut) : { loss: NaN, accuracy: NaN };
      const rec: EpochRecord = {
        epoch,
        steps: step,
        lr,
        trainLoss: lossSum / seen,
        trainAccuracy: correct / seen,
        heldOutLoss: ev.loss,
        heldOutAccuracy: ev.accuracy,
        seconds: (performance.now() - te) / 1000,
      };
      curve.push(rec);
      hooks.onEpoch?.(rec);
    }
  } finally {
    await session.release();
    await evalSess?.release();
  }
  return { vit, params, weights, curve, stepLosses, seconds: (performance.now() - t0) / 1000, graph };
}

/** Stored-layout weights (MatMul [in, out]) back to the logical torch layout synth.ts takes ([out, in]). */
export function logicalWeights(params: readonly TrainParam[], weights: Record<string, Float32Array>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const p of params) {
    const w = weights[p.name]!;
    if (p.dims.length === 2) {
      const [rows, cols] = p.dims as [number, number]; // stored [in, out]
      const t = new Float32Array(w.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
      out[p.logical] = t;
    } else out[p.logical] = Float32Array.from(w);
  }
  return out;
}
