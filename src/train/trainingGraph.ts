// Training graphs for a synthetic ViT: the model plus softmax cross-entropy as a scalar loss, and
// the loss's gradient with respect to every weight from vitpath's own autodiff. The weights become
// graph inputs, so one ONNX Runtime session runs forward + backward for whatever weights are fed.
import { DataType, type ModelProto } from '../onnx/proto.js';
import { tensorValueInfo } from '../onnx/builder.js';
import { Graph } from '../onnx/graph.js';
import { GraphEditor } from '../onnx/edit.js';
import { tensorToHost } from '../onnx/tensor.js';
import { buildGradientGraph } from '../onnx/autodiff/backward.js';
import { probeFacts } from '../runtime/probe.js';
import type { SynthVit } from '../vit/synth.js';

/** One trainable weight: its logical (torch-style) name, the tensor name in the graph and its stored dims. */
export interface TrainParam {
  logical: string;
  name: string;
  dims: number[];
}

export interface TrainingGraph {
  /**
   * Inputs: the image input, `target` [batch, classes] (one-hot or soft labels, float32) and every
   * weight by its tensor name. Outputs: `loss` (scalar mean cross-entropy), `logits`, then one
   * gradient output per weight (see `gradOutputs`).
   */
  model: ModelProto;
  params: TrainParam[];
  /** Weight tensor name -> gradient output name. */
  gradOutputs: Record<string, string>;
  inputName: string;
  targetName: string;
  lossName: string;
  logitsName: string;
  /** Nodes the backward pass added. */
  backwardNodes: number;
}

export const TARGET_INPUT = 'target';
export const LOSS_OUTPUT = 'loss';

/** The trainable weights of a synthetic ViT in logical order (names as stored in its model). */
export function trainParams(vit: SynthVit): TrainParam[] {
  const graph = new Graph(vit.model);
  return Object.entries(vit.names).map(([logical, name]) => ({ logical, name, dims: graph.initializers.get(name)!.dims.map(Number) }));
}

/** The current values of the weights as stored in `model` (initializers), by tensor name. */
export function initialValues(model: ModelProto, params: readonly TrainParam[]): Record<string, Float32Array> {
  const graph = new Graph(model);
  const out: Record<string, Float32Array> = {};
  for (const p of params) out[p.name] = Float32Array.from(tensorToHost(graph.initializers.get(p.name)!).data as Float32Array);
  return out;
}

/**
 * `model` with the named initializers turned into graph inputs of the same name, type and shape,
 * so a session takes the weights as feeds. Other initializers (shape constants) stay.
 */
export function weightsAsInputs(model: ModelProto, names: readonly string[]): ModelProto {
  const set = new Set(names);
  const g = model.graph!;
  const moved = g.initializer.filter((t) => set.has(t.name));
  if (moved.length !== set.size) {
    const have = new Set(moved.map((t) => t.name));
    throw new Error(`weightsAsInputs: no initializer named ${[...set].filter((n) => !have.has(n)).join(', ')}`);
  }
  const ed = new GraphEditor(model);
  ed.setInputs([...g.input.filter((v) => !set.has(v.name)), ...moved.map((t) => tensorValueInfo(t.name, t.dataType as DataType, t.dims.map(Number)))]);
  ed.removeInitializers(set);
  return ed.model();
}

/**
 * `model` (output `logits` [batch, classes]) extended with a `target` input [batch, classes] and a
 * scalar `loss` output = mean over the batch of -sum_c target_c * log_softmax(logits)_c.
 */
export function withCrossEntropy(model: ModelProto, logits: string, classes: number): ModelProto {
  const ed = new GraphEditor(model);
  const b = ed.builder('xent');
  b.reserve(TARGET_INPUT);
  const logp = b.op('LogSoftmax', [logits], { axis: -1 });
  const perSample = b.reduceSum(b.op('Mul', [logp, TARGET_INPUT]), [1], false); // [batch]
  const mean = b.reduce18('ReduceMean', perSample, [0], false); // []
  b.op('Neg', [mean], {}, LOSS_OUTPUT);
  ed.append(b.nodes);
  ed.addInputs([tensorValueInfo(TARGET_INPUT, DataType.FLOAT, ['batch', classes])]);
  ed.setOutputs([tensorValueInfo(LOSS_OUTPUT, DataType.FLOAT, []), ...model.graph!.output]);
  return ed.model();
}

/**
 * Build the training graph of `vit` once: cross-entropy appended, shapes probed in ONNX Runtime
 * (CPU), reverse-mode gradient w.r.t. every weight, weights moved to inputs.
 */
export async function buildTrainingGraph(vit: SynthVit, opts: { threads?: number } = {}): Promise<TrainingGraph> {
  const params = trainParams(vit);
  const logitsName = vit.tensors.logits!;
  const lossModel = withCrossEntropy(vit.model, logitsName, vit.config.classes);
  const facts = await probeFacts(lossModel, { provider: 'cpu', threads: opts.threads ?? 1 });
  const grad = buildGradientGraph(lossModel, { loss: LOSS_OUTPUT, wrt: params.map((p) => p.name), facts });
  const model = weightsAsInputs(grad.model, params.map((p) => p.name));
  return {
    model,
    params,
    gradOutputs: grad.gradOutputs,
    inputName: vit.config.inputName,
    targetName: TARGET_INPUT,
    lossName: LOSS_OUTPUT,
    logitsName,
    backwardNodes: grad.addedNodes,
  };
}
