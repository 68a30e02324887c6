// Head importance by the Taylor score of a per-head gate (Michel et al., 2019): every block's
// output projection reads its input times a gate vector (ones); vitpath's gradient graph gives
// dL/dgate for L = cross-entropy of the target class (the label, else the prediction), one image
// per run, and head h of block l scores mean_i |Σ_{j in h} dL_i/dgate_l[j]| (= |dL/dξ_h| at ξ = 1).
import type { ModelProto } from '../onnx/proto.js';
import { DataType } from '../onnx/proto.js';
import { GraphEditor } from '../onnx/edit.js';
import { encodeModel } from '../onnx/model.js';
import { hostToTensor } from '../onnx/tensor.js';
import { buildGradientGraph } from '../onnx/autodiff/backward.js';
import { probeFacts } from '../runtime/probe.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { withCrossEntropy, weightsAsInputs, LOSS_OUTPUT, TARGET_INPUT } from '../train/trainingGraph.js';
import type { ViTLayout } from '../vit/types.js';
import { linearNode } from '../prune/slice.js';
import { headScores } from '../analysis/importance.js';
import { argmax } from '../analysis/stats.js';
import type { PreprocessSpec } from '../data/preprocess.js';

/** `model` with an initializer `head_gate_<l>` (ones, [dim]) multiplying block l's projection input, for every block in `blocks`. */
export function gateHeads(model: ModelProto, layout: ViTLayout, blocks: readonly number[]): { model: ModelProto; gates: Map<number, string> } {
  const ed = new GraphEditor(model);
  const b = ed.builder('head_gate');
  const gates = new Map<number, string>();
  for (const l of blocks) {
    const a = layout.blocks[l]!.attention!;
    const name = ed.freshName(`head_gate_${l}`);
    ed.addInitializers([hostToTensor(name, new Float32Array(a.dim).fill(1), [a.dim], DataType.FLOAT)]);
    const start = b.nodes.length;
    const out = b.op('Mul', [a.proj.input, name]);
    ed.insertOnEdge(a.proj.input, b.nodes.slice(start), out, [linearNode(ed, a.proj)]);
    gates.set(l, name);
  }
  return { model: ed.model(), gates };
}

export interface HeadScoreInput {
  /** The analysed (prepared, float32) model and its layout. */
  model: ModelProto;
  layout: ViTLayout;
  blocks: number[];
  /** Scoring images [n, C, H, W] and labels (-1 = none: the prediction is the target). */
  images: Float32Array;
  labels: ArrayLike<number>;
  spec: PreprocessSpec;
  runtime: RuntimeOptions;
  onProgress?: (done: number, total: number) => void;
}

/** Block -> Taylor score of each head (in `blocks` order). */
export async function headTaylorScores(o: HeadScoreInput): Promise<Map<number, Float64Array>> {
  const { layout } = o;
  const C = layout.facts.numClasses;
  const { model: gated, gates } = gateHeads(o.model, layout, o.blocks);
  const loss = withCrossEntropy(gated, layout.logits, C);
  const facts = await probeFacts(loss, { provider: 'cpu', threads: 1 });
  const names = o.blocks.map((l) => gates.get(l)!);
  const grad = buildGradientGraph(loss, { loss: LOSS_OUTPUT, wrt: names, facts });
  const m = weightsAsInputs(grad.model, names);
  const session = await createSession(encodeModel(m), o.runtime);
  const per = o.spec.channels * o.spec.height * o.spec.width;
  const n = o.images.length / per;
  const grads = new Map(o.blocks.map((l) => [l, [] as Float32Array[]]));
  try {
    for (let i = 0; i < n; i++) {
      const x = o.images.subarray(i * per, (i + 1) * per);
      const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = { [layout.input]: { data: x, dims: [1, o.spec.channels, o.spec.height, o.spec.width] } };
      for (const l of o.blocks) feeds[gates.get(l)!] = { data: new Float32Array(layout.blocks[l]!.attention!.dim).fill(1), dims: [layout.blocks[l]!.attention!.dim] };
      let target = o.labels[i]!;
      if (target < 0) {
        feeds[TARGET_INPUT] = { data: new Float32Array(C), dims: [1, C] };
        const y = await session.run(feeds, [layout.logits]);
        target = argmax(y[layout.logits]!.data as Float32Array);
      }
      const t = new Float32Array(C);
      t[target] = 1;
      feeds[TARGET_INPUT] = { data: t, dims: [1, C] };
      const out = await session.run(feeds, names.map((nm) => grad.gradOutputs[nm]!));
      for (const l of o.blocks) grads.get(l)!.push(Float32Array.from(out[grad.gradOutputs[gates.get(l)!]!]!.data as Float32Array));
      o.onProgress?.(i + 1, n);
    }
  } finally {
    await session.release();
  }
  return new Map(o.blocks.map((l) => {
    const a = layout.blocks[l]!.attention!;
    return [l, headScores(grads.get(l)!, a.heads!, a.headDim!)] as const;
  }));
}
