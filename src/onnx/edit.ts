// The one graph editor every rewrite uses: the names a graph holds (so new tensors and nodes get
// fresh ones), nodes placed before or after others, consumers rewired, initializers and constants
// replaced or sliced, inputs and outputs added, dead nodes and initializers removed, and the
// result assembled as a new model (the input model is never changed).
//
// `graph` answers queries about the model as given; edits are recorded and applied together by
// `model()`, so a rewrite can query freely while it edits. Node placement is by the original
// nodes (before one, after the producer of a tensor, first, last); nodes of an original node keep
// their file order. Messages are copied with `copyMessage`, which keeps proto2 defaults: spreading
// a message into create() hands back the plain object, on which an unset field reads undefined
// (node.domain, model.producerName) instead of its default.
import { create, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { Graph } from './graph.js';
import { GraphBuilder, namedValueInfo, UsedNames } from './builder.js';
import { hostToTensor, numel, tensorToHost, type HostTensor, type TypedArray } from './tensor.js';
import { makeAttr } from './attributes.js';

/** A shallow copy of a protobuf message with some fields changed; proto2 defaults stay readable. */
export function copyMessage<D extends DescMessage>(schema: D, message: MessageShape<D>, change: Partial<MessageShape<D>> = {}): MessageShape<D> {
  const { $typeName: _type, ...fields } = message as MessageShape<D> & { $typeName: string };
  return create(schema, { ...fields, ...change } as unknown as MessageInitShape<D>);
}

export interface NodeChange {
  input?: readonly string[];
  output?: readonly string[];
  attribute?: readonly AttributeProto[];
  name?: string;
}

/** A changed copy of a node (its other fields, domain included, as they were). */
export function edited(node: NodeProto, change: NodeChange): NodeProto {
  return copyMessage(NodeProtoSchema, node, {
    input: [...(change.input ?? node.input)],
    output: [...(change.output ?? node.output)],
    attribute: [...(change.attribute ?? node.attribute)],
    ...(change.name !== undefined ? { name: change.name } : {}),
  });
}

/** Every name a graph holds: tensors (node inputs/outputs, initializers, inputs, outputs, value_info) and node names, subgraphs included. */
export function usedNames(graph: GraphProto, into: UsedNames = new UsedNames()): UsedNames {
  for (const n of graph.node) {
    for (const x of [...n.input, ...n.output]) if (x) into.add(x);
    if (n.name) into.add(n.name);
    for (const a of n.attribute) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) usedNames(sub, into);
  }
  for (const t of graph.initializer) into.add(t.name);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) into.add(v.name);
  return into;
}

/** Tensors that nodes of `graph` read, subgraphs included (a subgraph may read outer tensors). */
function readTensors(nodes: readonly NodeProto[], into: Set<string>): Set<string> {
  for (const n of nodes) {
    for (const i of n.input) if (i) into.add(i);
    for (const a of n.attribute) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) readTensors(sub.node, into);
  }
  return into;
}

/** Values along `axis` at `indices` (in that order) of a row-major tensor. */
export function sliceAlong(t: HostTensor, axis: number, indices: readonly number[]): HostTensor {
  const rank = t.dims.length;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank) throw new Error(`sliceAlong: axis ${axis} of a rank-${rank} tensor`);
  const size = t.dims[ax]!;
  for (const i of indices) if (!Number.isInteger(i) || i < 0 || i >= size) throw new Error(`sliceAlong: index ${i} outside 0..${size - 1} on axis ${ax}`);
  const outer = numel(t.dims.slice(0, ax));
  const inner = numel(t.dims.slice(ax + 1));
  const dims = [...t.dims];
  dims[ax] = indices.length;
  const data = new (t.data.constructor as new (n: number) => TypedArray)(outer * indices.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < indices.length; k++) {
      const from = (o * size + indices[k]!) * inner;
      data.set(t.data.subarray(from, from + inner) as never, (o * indices.length + k) * inner);
    }
  }
  return { dataType: t.dataType, dims, data };
}

export class GraphEditor {
  /** Queries about the model as given (edits do not show here). */
  readonly graph: Graph;
  readonly opset: number;
  /** Every name in use, including those handed out by this editor's builders. */
  readonly names: UsedNames;
  private readonly source: ModelProto;
  private readonly edits = new Map<NodeProto, NodeProto>();
  private readonly removed = new Set<NodeProto>();
  private readonly before = new Map<NodeProto, NodeProto[]>();
  private readonly after = new Map<string, NodeProto[]>();
  private readonly head: NodeProto[] = [];
  private readonly tail: NodeProto[] = [];
  private readonly builders: GraphBuilder[] = [];
  private initializers: TensorProto[];
  private readonly added: TensorProto[] = [];
  private inputs: ValueInfoProto[];
  private outputs: ValueInfoProto[];
  private valueInfo: ValueInfoProto[];

  constructor(model: ModelProto) {
    this.graph = new Graph(model);
    this.opset = this.graph.opset;
    this.source = model;
    const g = model.graph!;
    this.names = usedNames(g);
    this.initializers = [...g.initializer];
    this.inputs = [...g.input];
    this.outputs = [...g.output];
    this.valueInfo = [...g.valueInfo];
  }

  /**
   * A builder whose names are fresh in this graph (shared with the editor's other builders). Its
   * initializers join the model (after the ones added with addInitializers); its nodes go where
   * the caller places them.
   */
  builder(prefix: string): GraphBuilder {
    const b = new GraphBuilder(this.opset, prefix, this.names);
    this.builders.push(b);
    return b;
  }

  /** `base`, or `base_1`, `base_2`, ... : the first name not in use, now reserved. */
  freshName(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  // ---- nodes ----

  /** The node as edited so far (the original when unedited). */
  current(node: NodeProto): NodeProto {
    return this.edits.get(node) ?? node;
  }

  /** Change an original node (applied on top of earlier changes). */
  editNode(node: NodeProto, change: NodeChange | ((cur: NodeProto) => NodeChange)): NodeProto {
    const cur = this.current(node);
    const e = edited(cur, typeof change === 'function' ? change(cur) : change);
    this.edits.set(node, e);
    return e;
  }

  /** Make an original node read `to` wherever it reads a tensor that `rename` maps. */
  replaceInputs(node: NodeProto, rename: ReadonlyMap<string, string>): NodeProto {
    return this.editNode(node, (cur) => ({ input: cur.input.map((i) => rename.get(i) ?? i) }));
  }

  /**
   * Every original node reading `from` (or only those in `only`) reads `to` instead. Nodes this
   * editor inserts keep reading `from`; graph outputs are not renamed.
   */
  renameConsumers(from: string, to: string, only?: readonly NodeProto[]): void {
    const m = new Map([[from, to]]);
    for (const c of only ?? this.graph.consumersOf(from)) this.replaceInputs(c, m);
  }

  /** Drop a node (an original one, or one this editor placed). */
  removeNode(node: NodeProto): void {
    this.removed.add(node);
  }

  /** Nodes first in the graph, before every original node (in call order). */
  prepend(nodes: readonly NodeProto[]): void {
    this.head.push(...nodes);
  }

  /** Nodes last in the graph. */
  append(nodes: readonly NodeProto[]): void {
    this.tail.push(...nodes);
  }

  /** Nodes right before an original node (after nodes placed there before). */
  insertBefore(node: NodeProto, nodes: readonly NodeProto[]): void {
    const l = this.before.get(node);
    if (l) l.push(...nodes);
    else this.before.set(node, [...nodes]);
  }

  /**
   * Nodes right after the node producing `tensor` (groups after one node follow its outputs'
   * order, then call order). A graph input or initializer has no producer: the nodes go first.
   */
  insertAfter(tensor: string, nodes: readonly NodeProto[]): void {
    if (!this.graph.producerOf(tensor) && !this.insertedProducer(tensor)) {
      this.prepend(nodes);
      return;
    }
    const l = this.after.get(tensor);
    if (l) l.push(...nodes);
    else this.after.set(tensor, [...nodes]);
  }

  /**
   * Put `nodes` (which read `tensor` and write `output`) on the edge from `tensor` to its original
   * consumers (or `only` those): e.g. a QuantizeLinear/DequantizeLinear pair on a weight.
   */
  insertOnEdge(tensor: string, nodes: readonly NodeProto[], output: string, only?: readonly NodeProto[]): void {
    this.renameConsumers(tensor, output, only);
    this.insertAfter(tensor, nodes);
  }

  private insertedProducer(tensor: string): boolean {
    const placed = [...this.head, ...this.tail, ...[...this.before.values()].flat(), ...[...this.after.values()].flat()];
    return placed.some((n) => n.output.includes(tensor));
  }

  /** The node list as it will be written: [original or inserted node, its current form], removed ones left out. */
  private assemble(): [NodeProto, NodeProto][] {
    const out: [NodeProto, NodeProto][] = [];
    const emitted = new Set<string>();
    const emit = (key: NodeProto, outputs: readonly string[]) => {
      if (!this.removed.has(key)) out.push([key, this.current(key)]);
      for (const o of outputs) {
        const group = this.after.get(o);
        if (!group || emitted.has(o)) continue;
        emitted.add(o);
        for (const n of group) emit(n, n.output);
      }
    };
    for (const n of this.head) emit(n, n.output);
    for (const n of this.graph.nodes) {
      for (const b of this.before.get(n) ?? []) emit(b, b.output);
      emit(n, n.output);
    }
    for (const n of this.tail) emit(n, n.output);
    return out;
  }

  /** The nodes as they will be written. */
  nodes(): NodeProto[] {
    return this.assemble().map(([, n]) => n);
  }

  /**
   * Remove nodes none of whose outputs is read (by a node, a subgraph or a graph output), again
   * until none is left; `canRemove` limits which may go. Returns how many were removed.
   */
  removeDeadNodes(canRemove: (n: NodeProto) => boolean = () => true): number {
    let count = 0;
    for (;;) {
      const list = this.assemble();
      const used = readTensors(list.map(([, n]) => n), new Set(this.outputs.map((v) => v.name)));
      const dead = list.filter(([, n]) => !n.output.some((o) => o && used.has(o)) && canRemove(n));
      if (dead.length === 0) return count;
      for (const [key] of dead) this.removed.add(key);
      count += dead.length;
    }
  }

  // ---- initializers and constants ----

  /** The initializer named `name` as it stands (replacements and additions included). */
  initializer(name: string): TensorProto | undefined {
    return this.initializers.find((t) => t.name === name) ?? this.added.find((t) => t.name === name) ?? this.builders.flatMap((b) => b.initializers).find((t) => t.name === name);
  }

  addInitializers(tensors: readonly TensorProto[]): void {
    for (const t of tensors) this.names.add(t.name);
    this.added.push(...tensors);
  }

  /** Replace the initializer with `tensor`'s name by `tensor`, in place. */
  replaceInitializer(tensor: TensorProto): void {
    const i = this.initializers.findIndex((t) => t.name === tensor.name);
    if (i >= 0) {
      this.initializers[i] = tensor;
      return;
    }
    const j = this.added.findIndex((t) => t.name === tensor.name);
    if (j < 0) throw new Error(`replaceInitializer: the model has no initializer "${tensor.name}"`);
    this.added[j] = tensor;
  }

  /** Drop the named initializers (e.g. weights that become graph inputs). */
  removeInitializers(names: Iterable<string>): void {
    const drop = new Set(names);
    this.initializers = this.initializers.filter((t) => !drop.has(t.name));
    this.added.splice(0, this.added.length, ...this.added.filter((t) => !drop.has(t.name)));
    for (const b of this.builders) b.initializers.splice(0, b.initializers.length, ...b.initializers.filter((t) => !drop.has(t.name)));
  }

  /** Drop initializers no node reads (graph inputs and outputs kept). Returns their names. */
  removeUnusedInitializers(): string[] {
    const used = readTensors(this.nodes(), new Set([...this.outputs, ...this.inputs].map((v) => v.name)));
    const gone = [...this.initializers, ...this.added, ...this.builders.flatMap((b) => b.initializers)].filter((t) => !used.has(t.name)).map((t) => t.name);
    this.removeInitializers(gone);
    return gone;
  }

  /** The value of a constant tensor as it stands: an initializer, or a Constant node's value (edits included). */
  constantValue(name: string): HostTensor | undefined {
    const init = this.initializer(name);
    if (init) return tensorToHost(init);
    const p = this.graph.producerOf(name);
    if (p?.opType === 'Constant') {
      const a = this.current(p).attribute.find((x) => x.name === 'value');
      if (a?.t) return tensorToHost(a.t);
    }
    return this.graph.constantValue(name);
  }

  /**
   * Give the constant `name` a new value for every reader: its initializer is replaced, or its
   * Constant node rewritten (as a `value` tensor).
   */
  setConstant(name: string, value: HostTensor): void {
    if (this.initializer(name)) {
      this.replaceInitializer(hostToTensor(name, value.data, value.dims, value.dataType));
      return;
    }
    const p = this.graph.producerOf(name);
    if (p?.opType !== 'Constant') throw new Error(`setConstant: "${name}" is neither an initializer nor a Constant node's output`);
    this.editNode(p, { attribute: [makeAttr('value', hostToTensor('', value.data, value.dims, value.dataType))] });
  }

  /**
   * Input `index` of an original node reads a new initializer holding `value` (other readers of
   * the old constant keep it): for per-block changes of a constant blocks share.
   */
  forkConstant(node: NodeProto, index: number, value: HostTensor): string {
    const old = this.current(node).input[index];
    if (!old) throw new Error(`forkConstant: node "${node.name}" has no input ${index}`);
    const name = this.freshName(old);
    this.addInitializers([hostToTensor(name, value.data, value.dims, value.dataType)]);
    this.editNode(node, (cur) => ({ input: cur.input.map((x, k) => (k === index ? name : x)) }));
    return name;
  }

  /** Keep only `indices` (in that order) along `axis` of an initializer (pruning); returns its new dims. */
  sliceInitializer(name: string, axis: number, indices: readonly number[]): number[] {
    const t = this.initializer(name);
    if (!t) throw new Error(`sliceInitializer: the model has no initializer "${name}"`);
    const s = sliceAlong(tensorToHost(t), axis, indices);
    this.replaceInitializer(hostToTensor(name, s.data, s.dims, s.dataType));
    return s.dims;
  }

  // ---- inputs, outputs, value info ----

  addInputs(values: readonly ValueInfoProto[]): void {
    for (const v of values) this.names.add(v.name);
    this.inputs.push(...values);
  }

  setInputs(values: readonly ValueInfoProto[]): void {
    for (const v of values) this.names.add(v.name);
    this.inputs = [...values];
  }

  addOutputs(values: readonly ValueInfoProto[]): void {
    for (const v of values) this.names.add(v.name);
    this.outputs.push(...values);
  }

  setOutputs(values: readonly ValueInfoProto[]): void {
    this.outputs = [...values];
  }

  /** The declared value info of `name` (an output, value_info or input entry), else one that carries only the name. */
  declared(name: string): ValueInfoProto {
    const g = this.source.graph!;
    return g.output.find((v) => v.name === name) ?? g.valueInfo.find((v) => v.name === name) ?? g.input.find((v) => v.name === name) ?? namedValueInfo(name);
  }

  /** Keep the value_info entries `keep` accepts. */
  filterValueInfo(keep: (v: ValueInfoProto) => boolean): void {
    this.valueInfo = this.valueInfo.filter(keep);
  }

  /** Map every declared value (inputs, outputs and value_info). */
  mapValues(f: (v: ValueInfoProto, where: 'input' | 'output' | 'valueInfo') => ValueInfoProto): void {
    this.inputs = this.inputs.map((v) => f(v, 'input'));
    this.outputs = this.outputs.map((v) => f(v, 'output'));
    this.valueInfo = this.valueInfo.map((v) => f(v, 'valueInfo'));
  }

  // ---- result ----

  /** The edited model. `change` sets other graph or model fields (a graph name, metadata). */
  model(change: { graph?: Partial<GraphProto>; model?: Partial<ModelProto> } = {}): ModelProto {
    const graph = copyMessage(GraphProtoSchema, this.source.graph!, {
      node: this.nodes(),
      initializer: [...this.initializers, ...this.added, ...this.builders.flatMap((b) => b.initializers)],
      input: this.inputs,
      output: this.outputs,
      valueInfo: this.valueInfo,
      ...change.graph,
    });
    return copyMessage(ModelProtoSchema, this.source, { ...change.model, graph });
  }
}
