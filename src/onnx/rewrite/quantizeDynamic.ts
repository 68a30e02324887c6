// Dynamic int8 rewrite of chosen linear layers (no calibration): the activation is quantized at run
// time by DynamicQuantizeLinear (uint8, per tensor, range of the actual input), the weight is stored
// int8 symmetric per output channel, and MatMulInteger -> Cast -> Mul(s_x · s_w) gives the float
// result before the float bias Add; the ONNX form of ONNX Runtime's quantize_dynamic, which its CPU
// provider fuses into DynamicQuantizeMatMul (checked by the tests on the optimized graph). A Gemm
// (alpha = beta = 1) becomes the same chain with its weight stored [in, out] and its bias added after.
import type { ModelProto, NodeProto } from '../proto.js';
import { DataType } from '../proto.js';
import { GraphEditor } from '../edit.js';
import { makeNode } from '../builder.js';
import { attrFloat } from '../attributes.js';
import type { LinearRef } from '../../vit/types.js';
import { quantizeWeightPerChannel } from '../quantScheme.js';
import { linearNodes, MIN_QDQ_OPSET, type LinearQuantResult } from './quantize.js';
import { unsupported } from '../../errors.js';

export interface DynamicResult {
  model: ModelProto;
  layers: LinearQuantResult[];
  /** Linears left in float, with the reason (e.g. a Gemm with alpha != 1). */
  skipped: { linear: LinearRef; reason: string }[];
}

/** Transpose a row-major [rows, cols] int8 matrix. */
function transposeI8(q: Int8Array, rows: number, cols: number): Int8Array {
  const t = new Int8Array(q.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = q[r * cols + c]!;
  return t;
}

export function quantizeLinearsDynamic(model: ModelProto, linears: readonly LinearRef[], label = 'model'): DynamicResult {
  const ed = new GraphEditor(model);
  if (ed.opset < MIN_QDQ_OPSET) {
    throw unsupported(`${label}: opset ${ed.opset}; dynamic int8 quantization needs opset ${MIN_QDQ_OPSET} or newer. Re-export the model with opset_version=${MIN_QDQ_OPSET} or later.`);
  }
  const dynamicInputs = new Map<string, [string, string, string]>();
  const layers: LinearQuantResult[] = [];
  const skipped: DynamicResult['skipped'] = [];
  for (const l of linears) {
    const { op } = linearNodes(ed, l);
    if (l.kind === 'gemm' && (attrFloat(op, 'alpha', 1) !== 1 || attrFloat(op, 'beta', 1) !== 1)) {
      skipped.push({ linear: l, reason: 'Gemm with alpha or beta other than 1' });
      continue;
    }
    const w = ed.constantValue(l.weight);
    if (!w || w.dims.length !== 2 || w.dataType !== DataType.FLOAT) throw unsupported(`${label}: the weight ${l.weight} of ${l.output} is not a constant float32 matrix; quantize works on float32 models.`);
    const [rows, cols] = w.dims as [number, number];
    const transB = l.kind === 'gemm' && Boolean(l.transB);
    const wq = quantizeWeightPerChannel(w.data as Float32Array, rows, cols, transB ? 0 : 1);
    // MatMulInteger takes B as [in, out].
    const q = transB ? transposeI8(wq.q, rows, cols) : wq.q;
    const [inF, outF] = transB ? [cols, rows] : [rows, cols];
    const b = ed.builder('dynquant');
    let dq = dynamicInputs.get(l.input);
    if (!dq) {
      dq = [b.fresh(`${l.input}_quantized`), b.fresh(`${l.input}_scale`), b.fresh(`${l.input}_zero_point`)];
      ed.insertAfter(l.input, [makeNode('DynamicQuantizeLinear', [l.input], [...dq], {}, b.fresh('DynamicQuantizeLinear'))]);
      dynamicInputs.set(l.input, dq);
    }
    const wqName = b.initializer(b.fresh(`${l.weight}_quantized`), q, [inF, outF], DataType.INT8);
    const wzName = b.initializer(b.fresh(`${l.weight}_zero_point`), new Int8Array(outF), [outF], DataType.INT8);
    const wsName = b.initializer(b.fresh(`${l.weight}_scale`), wq.scale, [outF]);
    const mmi = b.fresh(`${l.output}_int32`);
    const cast = b.fresh(`${l.output}_int32_float`);
    const scale = b.fresh(`${l.output}_scale`);
    // The MatMul's own output name (before the bias Add); a Gemm's output comes after its bias.
    const product = l.kind === 'gemm' && l.bias ? b.fresh(`${l.output}_product`) : op.output[0]!;
    const nodes: NodeProto[] = [
      makeNode('MatMulInteger', [dq[0], wqName, dq[2], wzName], [mmi], {}, b.fresh('MatMulInteger')),
      makeNode('Cast', [mmi], [cast], { to: DataType.FLOAT }, b.fresh('Cast')),
      makeNode('Mul', [dq[1], wsName], [scale], {}, b.fresh('Mul')),
      makeNode('Mul', [cast, scale], [product], {}, b.fresh('Mul')),
    ];
    if (l.kind === 'gemm' && l.bias) nodes.push(makeNode('Add', [product, op.input[2]!], [op.output[0]!], {}, b.fresh('Add')));
    ed.insertBefore(op, nodes);
    ed.removeNode(op);
    let maxStepError = 0;
    const wf = w.data as Float32Array;
    for (let i = 0; i < wf.length; i++) {
      const s = wq.scale[transB ? Math.floor(i / cols) : i % cols]!;
      maxStepError = Math.max(maxStepError, Math.abs(Math.fround(wq.q[i]! * s) - wf[i]!) / s);
    }
    layers.push({ linear: l, channels: outF, zeroChannels: wq.zeroChannels, maxWeightStepError: maxStepError, biasInt32: false, weightBytes: { float: wf.length * 4, int8: wf.length + outF * 5 } });
  }
  ed.removeDeadNodes((n) => n.opType === 'Constant' || n.opType === 'Identity');
  ed.removeUnusedInitializers();
  return { model: ed.model(), layers, skipped };
}
