// A read-only query view over a GraphProto: producers, consumers, initializers, constants, order.
import { DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { attrTensor } from './attributes.js';
import { tensorToHost, type HostTensor } from './tensor.js';

export interface ValueShape {
  /** Element type, if known. */
  dataType?: DataType;
  /** Dims: a number, a symbolic name, or undefined (unknown). */
  dims?: (number | string | undefined)[];
}

export function valueInfoShape(v: ValueInfoProto): ValueShape {
  if (v.type?.value.case !== 'tensorType') return {};
  const tt = v.type.value.value;
  const dims = tt.shape
    ? tt.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : undefined))
    : undefined;
  return { dataType: tt.elemType as DataType, dims };
}

export class Graph {
  readonly proto: GraphProto;
  readonly opset: number;
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly valueInfo = new Map<string, ValueInfoProto>();
  readonly inputNames: string[];
  readonly outputNames: string[];
  private constCache = new Map<string, HostTensor | null>();

  constructor(model: ModelProto) {
    if (!model.graph) throw new Error('model has no graph');
    this.proto = model.graph;
    const def = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
    this.opset = def ? Number(def.version) : 1;
    for (const t of this.proto.initializer) this.initializers.set(t.name, t);
    for (const v of [...this.proto.input, ...this.proto.output, ...this.proto.valueInfo]) this.valueInfo.set(v.name, v);
    for (const n of this.proto.node) {
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const i of n.input) {
        if (!i) continue;
        let list = this.consumers.get(i);
        if (!list) this.consumers.set(i, (list = []));
        list.push(n);
      }
    }
    // Graph inputs that are also initializers (IR < 4 style) are not real inputs.
    this.inputNames = this.proto.input.map((v) => v.name).filter((n) => !this.initializers.has(n));
    this.outputNames = this.proto.output.map((v) => v.name);
  }

  get nodes(): NodeProto[] {
    return this.proto.node;
  }

  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /** Whether `name` is a tensor of the graph: a node input or output, an initializer, an input or an output. */
  hasTensor(name: string): boolean {
    return this.producer.has(name) || this.consumers.has(name) || this.initializers.has(name) || this.valueInfo.has(name);
  }

  producerOf(name: string): NodeProto | undefined {
    return this.producer.get(name);
  }

  shapeOf(name: string): ValueShape | undefined {
    const t = this.initializers.get(name);
    if (t) return { dataType: t.dataType as DataType, dims: t.dims.map(Number) };
    const v = this.valueInfo.get(name);
    return v ? valueInfoShape(v) : undefined;
  }

  /**
   * The value of `name` if it is a compile-time constant: an initializer, a Constant node,
   * or (recursively) Identity/Cast of one. Returns undefined otherwise.
   */
  constantValue(name: string): HostTensor | undefined {
    if (this.constCache.has(name)) return this.constCache.get(name) ?? undefined;
    let v: HostTensor | undefined;
    const init = this.initializers.get(name);
    if (init) v = tensorToHost(init);
    else {
      const p = this.producer.get(name);
      if (p?.opType === 'Constant') {
        const t = attrTensor(p, 'value');
        if (t) v = tensorToHost(t);
        else {
          const a = p.attribute[0];
          if (a?.name === 'value_float') v = { dataType: DataType.FLOAT, dims: [], data: Float32Array.of(a.f) };
          else if (a?.name === 'value_floats') v = { dataType: DataType.FLOAT, dims: [a.floats.length], data: Float32Array.from(a.floats) };
          else if (a?.name === 'value_int') v = { dataType: DataType.INT64, dims: [], data: BigInt64Array.of(a.i) };
          else if (a?.name === 'value_ints') v = { dataType: DataType.INT64, dims: [a.ints.length], data: BigInt64Array.from(a.ints) };
        }
      } else if (p?.opType === 'Identity' && p.input[0]) {
        v = this.constantValue(p.input[0]);
      }
    }
    this.constCache.set(name, v ?? null);
    return v;
  }

  isConstant(name: string): boolean {
    return this.constantValue(name) !== undefined;
  }

  /** Nodes in topological order (Kahn's algorithm, stable with respect to file order). */
  topologicalOrder(): NodeProto[] {
    const available = new Set<string>([...this.inputNames, ...this.initializers.keys(), '']);
    const pending = new Map<NodeProto, number>();
    const waiting = new Map<string, NodeProto[]>();
    const ready: NodeProto[] = [];
    for (const n of this.proto.node) {
      const missing = new Set(n.input.filter((i) => i && !available.has(i) && this.producer.has(i)));
      pending.set(n, missing.size);
      for (const m of missing) {
        let l = waiting.get(m);
        if (!l) waiting.set(m, (l = []));
        l.push(n);
      }
      if (missing.size === 0) ready.push(n);
    }
    const order: NodeProto[] = [];
    const index = new Map(this.proto.node.map((n, i) => [n, i]));
    while (ready.length) {
      ready.sort((a, b) => index.get(a)! - index.get(b)!);
      const n = ready.shift()!;
      order.push(n);
      for (const o of n.output) {
        for (const w of waiting.get(o) ?? []) {
          const left = pending.get(w)! - 1;
          pending.set(w, left);
          if (left === 0) ready.push(w);
        }
      }
    }
    if (order.length !== this.proto.node.length) throw new Error('graph has a cycle or dangling inputs');
    return order;
  }

  /** All node outputs reachable backwards from `targets` (inclusive), stopping at `stops`. */
  ancestors(targets: string[], stops: Set<string> = new Set()): Set<string> {
    const seen = new Set<string>();
    const stack = [...targets];
    while (stack.length) {
      const t = stack.pop()!;
      if (seen.has(t)) continue;
      seen.add(t);
      if (stops.has(t)) continue;
      const p = this.producer.get(t);
      if (p) for (const i of p.input) if (i) stack.push(i);
    }
    return seen;
  }

  /** All tensors that depend on any of `sources` (inclusive). */
  descendants(sources: string[]): Set<string> {
    const seen = new Set<string>();
    const stack = [...sources];
    while (stack.length) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const c of this.consumersOf(s)) for (const o of c.output) if (o) stack.push(o);
    }
    return seen;
  }
}
