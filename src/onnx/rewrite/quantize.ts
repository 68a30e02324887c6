// int8 QDQ rewrite of chosen linear layers, in the patterns ONNX Runtime's CPU provider fuses into
// integer kernels: the activation goes through QuantizeLinear (uint8, per tensor) -> DequantizeLinear,
// the weight is stored int8 (symmetric, per output channel) behind a DequantizeLinear, and the bias
// int32 at scale s_x·s_w behind a DequantizeLinear. Measured with onnxruntime-node 1.30: a 3-D MatMul
// then becomes MatMulIntegerToFloat (+ the bias Add), a 2-D MatMul + Add and a Gemm become QGemm;
// a float bias on a 2-D MatMul would instead fuse into an fp32 Gemm over dequantized weights (slower
// than float), which the int32 bias avoids. No Q/DQ goes on the linear's output, so the output keeps
// full float precision. One QuantizeLinear per activation tensor is shared by the linears reading it
// (q/k/v); each linear gets its own DequantizeLinear nodes.
import type { ModelProto, NodeProto } from '../proto.js';
import { DataType } from '../proto.js';
import { GraphEditor } from '../edit.js';
import { makeNode } from '../builder.js';
import type { LinearRef } from '../../vit/types.js';
import { quantizeBias, quantizeWeightPerChannel, type ActivationQuant } from '../quantScheme.js';
import { unsupported } from '../../errors.js';

/** Per-channel DequantizeLinear (the axis attribute) needs opset 13. */
export const MIN_QDQ_OPSET = 13;

export interface LinearQuantPlan {
  linear: LinearRef;
  /** uint8 parameters of the linear's input activation. */
  input: Pick<ActivationQuant, 'scale' | 'zeroPoint'>;
}

export interface LinearQuantResult {
  linear: LinearRef;
  /** Output channels, and those whose weights are all zero. */
  channels: number;
  zeroChannels: number;
  /** Largest |dequantized - float| weight error divided by its channel's step (at most 0.5). */
  maxWeightStepError: number;
  /** Whether the bias went int32 (false: no bias, or a value out of int32 range kept it float). */
  biasInt32: boolean;
  /** The float weight's bytes replaced by int8 (+ scales). */
  weightBytes: { float: number; int8: number };
}

export interface QdqResult {
  model: ModelProto;
  layers: LinearQuantResult[];
}

/** The MatMul/Gemm node of a linear and, for MatMul + Add, the Add. */
export function linearNodes(ed: GraphEditor, l: LinearRef): { op: NodeProto; add?: NodeProto } {
  const g = ed.graph;
  const last = g.producerOf(l.output);
  if (!last) throw new Error(`linear ${l.output}: no node produces it`);
  if (l.kind === 'gemm' || !l.bias) return { op: last };
  const mm = last.input.map((i) => g.producerOf(i)).find((p) => p?.opType === 'MatMul' && p.input[1] === l.weight);
  if (!mm) throw new Error(`linear ${l.output}: no MatMul before its bias Add`);
  return { op: mm, add: last };
}

function f32(x: number): Float32Array {
  return Float32Array.of(x);
}

/** Rewrite `model` so each planned linear runs in int8 (see the file comment). The input model is unchanged. */
export function quantizeLinearsQdq(model: ModelProto, plans: readonly LinearQuantPlan[], label = 'model'): QdqResult {
  const ed = new GraphEditor(model);
  if (ed.opset < MIN_QDQ_OPSET) {
    throw unsupported(`${label}: opset ${ed.opset}; int8 per-channel quantization needs opset ${MIN_QDQ_OPSET} or newer (DequantizeLinear's axis). Re-export the model with opset_version=${MIN_QDQ_OPSET} or later.`);
  }
  const quantizedInputs = new Map<string, string>();
  const layers: LinearQuantResult[] = [];
  for (const plan of plans) {
    const l = plan.linear;
    const { op, add } = linearNodes(ed, l);
    const b = ed.builder('quant');
    // Activation: one QuantizeLinear per (tensor, parameters), right after the tensor's producer.
    const xs = plan.input.scale;
    const xz = plan.input.zeroPoint;
    const key = `${l.input}\u0000${xs}\u0000${xz}`;
    let xq = quantizedInputs.get(key);
    const sName = b.initializer(b.fresh(`${l.input}_scale`), f32(xs), []);
    const zName = b.initializer(b.fresh(`${l.input}_zero_point`), Uint8Array.of(xz), [], DataType.UINT8);
    if (!xq) {
      xq = b.fresh(`${l.input}_quantized`);
      ed.insertAfter(l.input, [makeNode('QuantizeLinear', [l.input, sName, zName], [xq], {}, b.fresh('QuantizeLinear'))]);
      quantizedInputs.set(key, xq);
    }
    const xd = b.fresh(`${l.input}_dequantized`);
    const before: NodeProto[] = [makeNode('DequantizeLinear', [xq, sName, zName], [xd], {}, b.fresh('DequantizeLinear'))];

    // Weight: int8 per output channel.
    const w = ed.constantValue(l.weight);
    if (!w || w.dims.length !== 2 || w.dataType !== DataType.FLOAT) throw unsupported(`${label}: the weight ${l.weight} of ${l.output} is not a constant float32 matrix; quantize works on float32 models (convert float16 ones first).`);
    const [rows, cols] = w.dims as [number, number];
    const axis: 0 | 1 = l.kind === 'gemm' && l.transB ? 0 : 1;
    const wf = w.data as Float32Array;
    const wq = quantizeWeightPerChannel(wf, rows, cols, axis);
    let maxStepError = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const s = wq.scale[axis === 1 ? c : r]!;
        const e = Math.abs(Math.fround(wq.q[i]! * s) - wf[i]!) / s;
        if (e > maxStepError) maxStepError = e;
      }
    }
    const channels = wq.scale.length;
    const wqName = b.initializer(b.fresh(`${l.weight}_quantized`), wq.q, [rows, cols], DataType.INT8);
    const wsName = b.initializer(b.fresh(`${l.weight}_scale`), wq.scale, [channels]);
    const wzName = b.initializer(b.fresh(`${l.weight}_zero_point`), new Int8Array(channels), [channels], DataType.INT8);
    const wd = b.fresh(`${l.weight}_dequantized`);
    before.push(makeNode('DequantizeLinear', [wqName, wsName, wzName], [wd], { axis }, b.fresh('DequantizeLinear')));

    // Bias: int32 at s_x * s_w[c] where it fits.
    let biasInt32 = false;
    let bd: string | undefined;
    if (l.bias) {
      const bv = ed.constantValue(l.bias);
      if (bv && bv.dataType === DataType.FLOAT && bv.data.length === channels) {
        const bq = quantizeBias(bv.data as Float32Array, xs, wq.scale);
        if (bq) {
          const bqName = b.initializer(b.fresh(`${l.bias}_quantized`), bq.q, [channels], DataType.INT32);
          const bsName = b.initializer(b.fresh(`${l.bias}_scale`), bq.scale, [channels]);
          const bzName = b.initializer(b.fresh(`${l.bias}_zero_point`), new Int32Array(channels), [channels], DataType.INT32);
          bd = b.fresh(`${l.bias}_dequantized`);
          const node = makeNode('DequantizeLinear', [bqName, bsName, bzName], [bd], { axis: 0 }, b.fresh('DequantizeLinear'));
          // A bias DQ of shape [C] broadcasts like the float bias it replaces (dims [C] or [1, C] alike).
          if (bv.dims.length !== 1) bd = undefined;
          else {
            biasInt32 = true;
            if (add) ed.insertBefore(add, [node]);
            else before.push(node);
          }
        }
      }
    }
    ed.insertBefore(op, before);
    ed.editNode(op, (cur) => ({ input: cur.input.map((x, k) => (k === 0 ? xd : k === 1 ? wd : k === 2 && l.kind === 'gemm' && bd ? bd : x)) }));
    if (add && bd) ed.replaceInputs(add, new Map([[l.bias!, bd]]));
    layers.push({ linear: l, channels, zeroChannels: wq.zeroChannels, maxWeightStepError: maxStepError, biasInt32, weightBytes: { float: wf.length * 4, int8: wf.length + channels * 5 } });
  }
  ed.removeDeadNodes((n) => n.opType === 'Constant' || n.opType === 'Identity');
  ed.removeUnusedInitializers();
  return { model: ed.model(), layers };
}
