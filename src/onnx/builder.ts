// Emit ONNX nodes and models: unique names, constants, and opset-aware forms of ops whose
// signature changed across opsets (axes as attribute or input, Slice/Pad/Split inputs).
import {
  create,
  DataType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { makeAttr, type AttrValue } from './attributes.js';
import { hostToTensor } from './tensor.js';

export type Dim = number | string | undefined;

export function tensorValueInfo(name: string, dataType: DataType, dims?: readonly Dim[]): ValueInfoProto {
  const shape = dims
    ? create(TensorShapeProtoSchema, {
        dim: dims.map((d) =>
          create(TensorShapeProto_DimensionSchema, {
            value:
              typeof d === 'number'
                ? { case: 'dimValue', value: BigInt(d) }
                : typeof d === 'string'
                  ? { case: 'dimParam', value: d }
                  : { case: undefined },
          }),
        ),
      })
    : undefined;
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: dataType, shape }) } }),
  });
}

/** A value info that carries only a name (ONNX Runtime accepts such extra outputs). */
export function namedValueInfo(name: string): ValueInfoProto {
  return create(ValueInfoProtoSchema, { name });
}

export function makeNode(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name = '', domain = ''): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input: inputs,
    output: outputs,
    name,
    domain,
    attribute: Object.entries(attrs)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => makeAttr(k, v)),
  });
}

export interface ModelSpec {
  graph: GraphProto;
  opset: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  metadata?: Record<string, string>;
  extraOpsets?: { domain: string; version: number }[];
}

/** The IR version ONNX pairs with each opset (first opset of each IR version). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 21) return 10;
  return 10;
}

export function makeModel(spec: ModelSpec): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: BigInt(spec.irVersion ?? irVersionForOpset(spec.opset)),
    opsetImport: [
      create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(spec.opset) }),
      ...(spec.extraOpsets ?? []).map((o) => create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(o.version) })),
    ],
    producerName: spec.producerName ?? 'vitpath',
    producerVersion: spec.producerVersion ?? '',
    graph: spec.graph,
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

export function makeGraph(name: string, nodes: NodeProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], initializers: TensorProto[] = []): GraphProto {
  return create(GraphProtoSchema, { name, node: nodes, input: inputs, output: outputs, initializer: initializers });
}

/**
 * The names in use in one graph under construction. Builders given the same UsedNames never hand
 * out a name twice between them; a builder given a plain list of names keeps a private copy.
 */
export class UsedNames {
  private readonly set: Set<string>;
  constructor(names: Iterable<string> = []) {
    this.set = new Set(names);
  }
  has(name: string): boolean {
    return this.set.has(name);
  }
  add(name: string): void {
    this.set.add(name);
  }
}

/**
 * Accumulates nodes and initializers under a name prefix, emitting ops in the form the
 * target opset expects. Used by rewrites, autodiff and fixture generation.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  /** Outputs of padZeros: the padded tensor and its pads (ONNX order: begins, then ends). */
  readonly zeroPads = new Map<string, { x: string; pads: number[] }>();
  private counter = 0;
  private readonly taken: UsedNames;

  constructor(
    readonly opset: number,
    readonly prefix = 'vp',
    taken: Iterable<string> | UsedNames = [],
  ) {
    this.taken = taken instanceof UsedNames ? taken : new UsedNames(taken);
  }

  /** A tensor name not used before in this builder (or in `taken`). */
  fresh(base: string): string {
    let name = `${this.prefix}/${base}`;
    while (this.taken.has(name)) name = `${this.prefix}/${base}_${++this.counter}`;
    this.taken.add(name);
    return name;
  }

  reserve(name: string): string {
    this.taken.add(name);
    return name;
  }

  /** Add a node; returns its output names (fresh unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, outputs: number | string[] = 1, domain = ''): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => this.fresh(`${opType}${outputs > 1 ? `_o${i}` : ''}`)) : outputs.map((o) => this.reserve(o));
    const clean: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) clean[k] = v;
    this.nodes.push(makeNode(opType, inputs, outs, clean, this.fresh(`${opType}_node`), domain));
    return outs;
  }

  /** Single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, output?: string): string {
    return this.node(opType, inputs, attrs, output ? [output] : 1)[0]!;
  }

  initializer(name: string, data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array, dims: readonly number[], dataType?: DataType): string {
    const n = this.reserve(name);
    this.initializers.push(hostToTensor(n, data, dims, dataType));
    return n;
  }

  constF32(values: number[] | Float32Array, dims: readonly number[] = [values.length], base = 'const'): string {
    return this.initializer(this.fresh(base), Float32Array.from(values), dims);
  }
  constF64(values: number[] | Float64Array, dims: readonly number[] = [values.length], base = 'const'): string {
    return this.initializer(this.fresh(base), Float64Array.from(values), dims);
  }
  /** A scalar or tensor of the given float type (FLOAT, DOUBLE or FLOAT16). */
  constFloat(dataType: DataType, values: number[], dims: readonly number[] = [values.length], base = 'const'): string {
    if (dataType === DataType.DOUBLE) return this.constF64(values, dims, base);
    if (dataType === DataType.FLOAT) return this.constF32(values, dims, base);
    const c = this.constF32(values, dims, base);
    return this.op('Cast', [c], { to: dataType });
  }
  constI64(values: (number | bigint)[], dims: readonly number[] = [values.length], base = 'const'): string {
    return this.initializer(this.fresh(base), BigInt64Array.from(values.map((v) => BigInt(v))), dims);
  }

  // ---- opset-aware forms ----

  unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.constI64(axes)]) : this.op('Unsqueeze', [x], { axes });
  }
  squeeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Squeeze', [x, this.constI64(axes)]) : this.op('Squeeze', [x], { axes });
  }
  /** ReduceSum over `axes` (axes input from opset 13). */
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.opset >= 13
      ? this.op('ReduceSum', [x, this.constI64(axes)], { keepdims: keepdims ? 1 : 0 })
      : this.op('ReduceSum', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }
  /** ReduceMean/ReduceMax/... whose axes became an input at opset 18. */
  reduce18(opType: 'ReduceMean' | 'ReduceMax' | 'ReduceMin' | 'ReduceProd' | 'ReduceSumSquare' | 'ReduceL2', x: string, axes: number[], keepdims: boolean): string {
    return this.opset >= 18
      ? this.op(opType, [x, this.constI64(axes)], { keepdims: keepdims ? 1 : 0 })
      : this.op(opType, [x], { axes, keepdims: keepdims ? 1 : 0 });
  }
  /** Slice with constant starts/ends/axes/steps (attribute form before opset 10). */
  slice(x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string {
    if (this.opset < 10) {
      if (steps && steps.some((s) => s !== 1)) throw new Error('Slice with steps needs opset >= 10');
      return this.op('Slice', [x], { starts, ends, axes });
    }
    const ins = [x, this.constI64(starts), this.constI64(ends), this.constI64(axes)];
    if (steps) ins.push(this.constI64(steps));
    return this.op('Slice', ins);
  }
  /** Constant-pad with zeros; `pads` = [begin_0..begin_n, end_0..end_n]. */
  padZeros(x: string, pads: number[]): string {
    const out = this.opset >= 11 ? this.op('Pad', [x, this.constI64(pads)], { mode: 'constant' }) : this.op('Pad', [x], { pads, mode: 'constant', value: { float: 0 } });
    this.zeroPads.set(out, { x, pads: [...pads] });
    return out;
  }
  /** Split into parts of the given sizes along axis. */
  split(x: string, axis: number, sizes: number[]): string[] {
    if (this.opset >= 13) return this.node('Split', [x, this.constI64(sizes)], { axis }, sizes.length);
    return this.node('Split', [x], { axis, split: sizes }, sizes.length);
  }
  /** Softmax over the last axis (same meaning at every opset for the last axis of a 2-D view). */
  softmaxLast(x: string, rank: number): string {
    return this.op('Softmax', [x], { axis: this.opset >= 13 ? -1 : rank - 1 });
  }
}
