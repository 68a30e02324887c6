// Recovery after pruning: distil the pruned model (student) from the original (teacher) on the
// unlabelled scoring images. Loss = T² · mean_b KL(softmax(z_t/T) || softmax(z_s/T)); its gradient
// w.r.t. every remaining float weight comes from vitpath's own gradient graph (onnx/autodiff) run in
// ONNX Runtime, and Adam (src/train) updates the weights in TypeScript. The trained weights are
// written back into the stored form of the pruned model (same names; float16 stays float16).
import type { ModelProto } from '../onnx/proto.js';
import { DataType } from '../onnx/proto.js';
import { tensorValueInfo } from '../onnx/builder.js';
import { GraphEditor } from '../onnx/edit.js';
import { encodeModel } from '../onnx/model.js';
import { f32ToF16, hostToTensor, toNumbers, tensorToHost } from '../onnx/tensor.js';
import { buildGradientGraph } from '../onnx/autodiff/backward.js';
import { probeFacts } from '../runtime/probe.js';
import { createSession, type ProviderChoice, type SessionLike } from '../runtime/session.js';
import { weightsAsInputs } from '../train/trainingGraph.js';
import { Adam } from '../train/adam.js';
import { prepareLoaded } from '../services/prepareModel.js';
import { prepareVitModel } from '../services/vitModel.js';
import type { ViTLayout } from '../vit/types.js';
import type { DataItem } from '../data/sources.js';
import { loadBatch } from '../data/dataset.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { mulberry32 } from '../random.js';
import { runtimeError } from '../errors.js';

export const KD_TARGET = 'kd_teacher_probs';
export const KD_LOSS = 'kd_loss';

export interface FinetuneOptions {
  /** The original model as analysed (float32, prepared). */
  teacher: ModelProto;
  /** The pruned model as stored (what is written). */
  student: ModelProto;
  /** The teacher's analysed layout (input and logits names). */
  layout: ViTLayout;
  items: readonly DataItem[];
  spec: PreprocessSpec;
  steps: number;
  temperature: number;
  lr: number;
  batch: number;
  seed: number;
  provider: ProviderChoice;
  threads?: number;
  label: string;
  onStep?: (done: number) => void;
}

export interface FinetuneResult {
  model: ModelProto;
  /** KL(teacher || student) of the softened logits times T², per step (before that step's update). */
  loss: { step: number; kl: number }[];
  ms: number;
}

/**
 * `model` plus input `kd_teacher_probs` [batch, classes] (softmax of the teacher's logits / T) and
 * scalar output `kd_loss` = -T² · mean_b Σ_c p_c log softmax(z/T)_c (the KL up to the teacher's entropy,
 * which has no gradient).
 */
export function withDistillation(model: ModelProto, logits: string, classes: number, temperature: number): ModelProto {
  const ed = new GraphEditor(model);
  const b = ed.builder('kd');
  b.reserve(KD_TARGET);
  b.reserve(KD_LOSS);
  const scaled = b.op('Mul', [logits, b.constF32([1 / temperature], [])]);
  const logp = b.op('LogSoftmax', [scaled], { axis: -1 });
  const perSample = b.reduceSum(b.op('Mul', [logp, KD_TARGET]), [1], false);
  const mean = b.reduce18('ReduceMean', perSample, [0], false);
  b.op('Mul', [mean, b.constF32([-(temperature * temperature)], [])], {}, KD_LOSS);
  ed.append(b.nodes);
  ed.addInputs([tensorValueInfo(KD_TARGET, DataType.FLOAT, ['batch', classes])]);
  ed.setOutputs([tensorValueInfo(KD_LOSS, DataType.FLOAT, []), ...model.graph!.output]);
  return ed.model();
}

function softened(logits: Float32Array, n: number, C: number, T: number): Float32Array {
  const p = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, logits[i * C + c]! / T);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[i * C + c]! / T - mx);
    for (let c = 0; c < C; c++) p[i * C + c] = Math.exp(logits[i * C + c]! / T - mx) / s;
  }
  return p;
}

/** T² · mean entropy of the softened teacher rows (added to the cross-entropy loss it gives the KL). */
function entropy(p: Float32Array, n: number, C: number, T: number): number {
  let h = 0;
  for (let j = 0; j < n * C; j++) if (p[j]! > 0) h -= p[j]! * Math.log(p[j]!);
  return (T * T * h) / n;
}

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const t0 = performance.now();
  const C = o.layout.facts.numClasses;
  const rt = { provider: o.provider, threads: o.threads ?? 0 };
  // Student as vitpath analyses it: batch generalised, shapes folded, float32.
  const { loaded: prepped } = await prepareLoaded({ proto: o.student, path: o.label, sha256: '', sizeBytes: 0, externalFiles: [] }, { label: `${o.label} (pruned)` });
  const { loaded: student, layout } = prepareVitModel(prepped);
  const stored = new Map(o.student.graph!.initializer.map((t) => [t.name, t]));
  const params = student.proto.graph!.initializer.filter((t) => {
    const s = stored.get(t.name);
    const n = t.dims.reduce((a, d) => a * Number(d), 1);
    return t.dataType === DataType.FLOAT && n > 1 && s && (s.dataType === DataType.FLOAT || s.dataType === DataType.FLOAT16) && s.dims.join() === t.dims.join();
  });
  const names = params.map((t) => t.name);
  const lossModel = withDistillation(student.proto, layout.logits, C, o.temperature);
  const facts = await probeFacts(lossModel, { provider: 'cpu', threads: 1 });
  const grad = buildGradientGraph(lossModel, { loss: KD_LOSS, wrt: names, facts });
  const trainModel = weightsAsInputs(grad.model, names);
  const weights: Record<string, Float32Array> = {};
  const dims: Record<string, number[]> = {};
  for (const t of params) {
    weights[t.name] = Float32Array.from(toNumbers(tensorToHost(t)));
    dims[t.name] = t.dims.map(Number);
  }
  let teacherSession: SessionLike | undefined;
  let session: SessionLike | undefined;
  const loss: { step: number; kl: number }[] = [];
  try {
    // Teacher logits once for every image.
    teacherSession = await createSession(encodeModel(o.teacher), rt);
    const n = o.items.length;
    const per = o.spec.channels * o.spec.height * o.spec.width;
    const inputs = new Float32Array(n * per);
    const teacherLogits = new Float32Array(n * C);
    for (let s = 0; s < n; s += o.batch) {
      const part = o.items.slice(s, s + o.batch);
      const x = await loadBatch(part, o.spec);
      inputs.set(x, s * per);
      const y = await teacherSession.run({ [o.layout.input]: { data: x, dims: [part.length, o.spec.channels, o.spec.height, o.spec.width] } }, [o.layout.logits]);
      teacherLogits.set(y[o.layout.logits]!.data as Float32Array, s * C);
    }
    await teacherSession.release();
    teacherSession = undefined;
    session = await createSession(encodeModel(trainModel), rt);
    const adam = new Adam({ lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    const rnd = mulberry32(o.seed ^ 0xf1e7);
    let order: number[] = [];
    const B = Math.min(o.batch, n);
    const fetch = [KD_LOSS, ...names.map((nm) => grad.gradOutputs[nm]!)];
    for (let step = 0; step < o.steps; step++) {
      if (order.length < B) {
        const perm = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [perm[i], perm[j]] = [perm[j]!, perm[i]!];
        }
        order = perm;
      }
      const pick = order.splice(0, B);
      const x = new Float32Array(B * per);
      const zt = new Float32Array(B * C);
      pick.forEach((r, i) => {
        x.set(inputs.subarray(r * per, (r + 1) * per), i * per);
        zt.set(teacherLogits.subarray(r * C, (r + 1) * C), i * C);
      });
      const p = softened(zt, B, C, o.temperature);
      const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {
        [layout.input]: { data: x, dims: [B, o.spec.channels, o.spec.height, o.spec.width] },
        [KD_TARGET]: { data: p, dims: [B, C] },
      };
      for (const nm of names) feeds[nm] = { data: weights[nm]!, dims: dims[nm]! };
      let out;
      try {
        out = await session.run(feeds, fetch);
      } catch (e) {
        throw runtimeError(`${o.label}: fine-tuning step ${step} failed in ONNX Runtime: ${(e as Error).message}`, e);
      }
      const ce = (out[KD_LOSS]!.data as Float32Array)[0]!;
      loss.push({ step, kl: ce - entropy(p, B, C, o.temperature) });
      const grads: Record<string, Float32Array> = {};
      for (const nm of names) grads[nm] = out[grad.gradOutputs[nm]!]!.data as Float32Array;
      adam.step(weights, grads);
      o.onStep?.(step + 1);
    }
  } finally {
    await teacherSession?.release();
    await session?.release();
  }
  // Trained weights back into the stored model (float16 weights stay float16).
  const ed = new GraphEditor(o.student);
  for (const nm of names) {
    const s = stored.get(nm)!;
    const w = weights[nm]!;
    const d = s.dims.map(Number);
    ed.replaceInitializer(s.dataType === DataType.FLOAT16 ? hostToTensor(nm, Uint16Array.from(w, f32ToF16), d, DataType.FLOAT16) : hostToTensor(nm, Float32Array.from(w), d, DataType.FLOAT));
  }
  return { model: ed.model(), loss, ms: performance.now() - t0 };
}
