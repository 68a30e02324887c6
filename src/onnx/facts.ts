// Facts about any ONNX model, from the graph as data: parameter count and weight element types,
// numeric precision (float32 / float16 / int8 QDQ / int8 integer ops), an operator histogram, and
// the bytes on disk including external data files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, type GraphProto, type ModelProto, type NodeProto } from './proto.js';
import { dtypeName } from './tensor.js';

/** Element types that hold weights (int32/int64 initializers are shape constants and indices). */
const WEIGHT_TYPES = new Set<DataType>([
  DataType.FLOAT,
  DataType.FLOAT16,
  DataType.BFLOAT16,
  DataType.DOUBLE,
  DataType.INT8,
  DataType.UINT8,
  DataType.INT16,
  DataType.UINT16,
  DataType.INT4,
  DataType.UINT4,
]);

const FLOAT_WEIGHT_TYPES = new Set<DataType>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Inputs that hold quantization scales and zero points, not weights, per op (0-based positions). */
const QUANT_PARAM_INPUTS: Record<string, readonly number[]> = {
  QuantizeLinear: [1, 2],
  DequantizeLinear: [1, 2],
  QLinearMatMul: [1, 2, 4, 5, 6, 7],
  QLinearConv: [1, 2, 4, 5, 6, 7],
  MatMulInteger: [2, 3],
  ConvInteger: [2, 3],
};

/** Ops of the QDQ format (fake-quantized float graph). */
const QDQ_OPS = new Set(['QuantizeLinear', 'DequantizeLinear']);
/** Ops of the QOperator format (integer kernels). */
const INTEGER_OPS = new Set(['QLinearMatMul', 'QLinearConv', 'MatMulInteger', 'ConvInteger', 'DynamicQuantizeLinear', 'QGemm', 'QAttention', 'DynamicQuantizeMatMul', 'QLinearAdd', 'QLinearMul']);

/**
 * 'float32' | 'float16' | 'bfloat16' | 'float64': the float type of the weights (the one holding
 * most elements); '<int type>-qdq' when QuantizeLinear/DequantizeLinear nodes dequantize integer
 * weights (e.g. 'int8-qdq'); 'int8-qoperator' for integer kernels (QLinearMatMul, MatMulInteger, ...).
 */
export type Precision = string;

export interface ModelFacts {
  /**
   * Elements of the weight initializers: float and 4/8/16-bit integer types with at least 2 elements
   * (scalars are folded constants), and int32 biases a DequantizeLinear reads; quantization scales and
   * zero points, other int32/int64 tensors (shapes, indices) and Constant nodes are not counted.
   */
  parameters: number;
  /** Weight elements per element type name, e.g. { float32: 139018 }. */
  parametersByType: Record<string, number>;
  precision: Precision;
  /** Node count per op type, sorted by name; ops of other domains as 'domain.Op'; subgraphs included. */
  ops: Record<string, number>;
  nodes: number;
  opset: number;
  irVersion: number;
  /** producer_name and producer_version as the file records them. */
  producer: string;
}

function* allNodes(g: GraphProto): Generator<NodeProto> {
  for (const n of g.node) {
    yield n;
    for (const a of n.attribute) {
      if (a.g) yield* allNodes(a.g);
      for (const sub of a.graphs) yield* allNodes(sub);
    }
  }
}

function numelOf(dims: readonly bigint[]): number {
  let n = 1;
  for (const d of dims) n *= Number(d);
  return n;
}

/** Facts of `model` (external data need not be loaded: only dims and types are read). */
export function modelFacts(model: ModelProto): ModelFacts {
  const g = model.graph!;
  const ops: Record<string, number> = {};
  const quantParams = new Set<string>();
  const dequantized = new Set<string>();
  const dynamicScales = new Set<string>();
  let nodes = 0;
  let qdq = false;
  let integerOps = false;
  for (const n of allNodes(g)) {
    nodes++;
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    ops[key] = (ops[key] ?? 0) + 1;
    if (QDQ_OPS.has(n.opType)) qdq = true;
    if (INTEGER_OPS.has(n.opType)) integerOps = true;
    for (const i of QUANT_PARAM_INPUTS[n.opType] ?? []) if (n.input[i]) quantParams.add(n.input[i]!);
    if (n.opType === 'DequantizeLinear' && n.input[0]) dequantized.add(n.input[0]);
    if (n.opType === 'DynamicQuantizeLinear' && n.output[1]) dynamicScales.add(n.output[1]);
  }
  // Dynamic quantization (MatMulInteger form): the weight scales multiply DynamicQuantizeLinear's scale.
  for (const n of allNodes(g)) {
    if (n.opType !== 'Mul' || n.input.length !== 2) continue;
    const [a, b] = n.input as [string, string];
    if (dynamicScales.has(a)) quantParams.add(b);
    else if (dynamicScales.has(b)) quantParams.add(a);
  }
  const byType = new Map<DataType, number>();
  let parameters = 0;
  let quantizedType: DataType | undefined;
  let quantizedCount = 0;
  for (const t of g.initializer) {
    const dt = t.dataType as DataType;
    const n = numelOf(t.dims);
    // Scalars are folded constants (1/sqrt(d), GELU's 0.5, ...), not weights.
    // int32 tensors a DequantizeLinear reads are quantized biases: weights too.
    const weight = WEIGHT_TYPES.has(dt) || (dt === DataType.INT32 && dequantized.has(t.name));
    if (!weight || quantParams.has(t.name) || n < 2) continue;
    parameters += n;
    byType.set(dt, (byType.get(dt) ?? 0) + n);
    if (dequantized.has(t.name) && n > quantizedCount) {
      quantizedType = dt;
      quantizedCount = n;
    }
  }
  let precision: Precision;
  if (qdq && quantizedType !== undefined) precision = `${typeName(quantizedType)}-qdq`;
  else if (integerOps) precision = 'int8-qoperator';
  else if (qdq) precision = 'int8-qdq';
  else {
    let best: DataType | undefined;
    for (const [dt, n] of byType) if (FLOAT_WEIGHT_TYPES.has(dt) && (best === undefined || n > byType.get(best)!)) best = dt;
    precision = best === undefined ? 'float32' : typeName(best);
  }
  const parametersByType: Record<string, number> = {};
  for (const [dt, n] of [...byType].sort((a, b) => a[0] - b[0])) parametersByType[typeName(dt)] = n;
  const opset = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return {
    parameters,
    parametersByType,
    precision,
    ops: Object.fromEntries(Object.entries(ops).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    nodes,
    opset: opset ? Number(opset.version) : 0,
    irVersion: Number(model.irVersion),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
  };
}

function typeName(dt: DataType): string {
  switch (dt) {
    case DataType.BFLOAT16:
      return 'bfloat16';
    case DataType.INT16:
      return 'int16';
    case DataType.UINT16:
      return 'uint16';
    case DataType.INT4:
      return 'int4';
    case DataType.UINT4:
      return 'uint4';
    default:
      return dtypeName(dt);
  }
}

export interface FileSizes {
  /** The .onnx file. */
  modelBytes: number;
  /** External data files the model reads (each counted once). */
  externalBytes: number;
  totalBytes: number;
  /** External data files, relative to the model's folder. */
  externalFiles: string[];
}

/** Bytes on disk of a model file and the external data files it names (relative to its folder). */
export function fileSizes(modelPath: string, externalFiles: readonly string[]): FileSizes {
  const modelBytes = fs.statSync(modelPath).size;
  let externalBytes = 0;
  for (const f of externalFiles) externalBytes += fs.statSync(path.resolve(path.dirname(modelPath), f)).size;
  return { modelBytes, externalBytes, totalBytes: modelBytes + externalBytes, externalFiles: [...externalFiles] };
}
