// Shape-folding conformance (hook): on the operator tests of shape ops, a folder (a function from a
// model to a folded model) must give a graph that ONNX Runtime runs to the test's expected outputs.
// Integer inputs (shapes, indices, axes) are frozen as initializers, as exporters write them, and
// every graph output is routed through an Identity so the op under test is an interior node the
// folder may replace by a constant (folders leave graph outputs computed).
import { clone, create, DataType, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { makeNode } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { hostToTensor } from '../../src/onnx/tensor.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { createSession, firstLine, type Feed } from '../../src/runtime/session.js';
import type { TestCase } from './suite.js';
import { oneLine, outcomeOfError, type CaseResult } from './outcome.js';
import { loadCase, readInputs, readOutputs } from './io.js';
import { compareTensor, feedOf } from './tensors.js';

/** What a folder returns: the folded model and, if it says, the nodes it removed and the shape computations it left (why). */
export interface FoldOutcome {
  model: ModelProto;
  removed?: number;
  left?: { node: string; op: string; reason: string }[];
}
export type Folder = (model: ModelProto) => FoldOutcome;

/** The shape-manipulation ops the folding conformance covers (a test qualifies if its graph has one). */
export const SHAPE_OPS = new Set(['Shape', 'Size', 'Gather', 'Slice', 'Concat', 'Unsqueeze', 'Squeeze', 'Reshape', 'Expand', 'Range', 'ConstantOfShape', 'Flatten']);

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

export function isFoldCandidate(model: ModelProto): boolean {
  const g = model.graph!;
  return g.node.some((n) => (!n.domain || n.domain === 'ai.onnx') && SHAPE_OPS.has(n.opType));
}

/** The test model with integer/bool inputs frozen and each output behind an Identity. */
export function foldInput(proto: ModelProto, frozen: Map<string, { data: Feed['data']; dims: readonly number[]; dataType: number }>): ModelProto {
  const g = proto.graph!;
  const produced = new Set(g.node.flatMap((n) => n.output));
  const renamed = new Map(g.output.filter((o) => produced.has(o.name)).map((o) => [o.name, `conf/pre_${o.name}`]));
  const rename = (t: string) => renamed.get(t) ?? t;
  const nodes = g.node.map((n) => create(NodeProtoSchema, { ...n, input: n.input.map(rename), output: n.output.map(rename) }));
  const ident = [...renamed].map(([out, pre]) => makeNode('Identity', [pre], [out]));
  const ir4 = proto.irVersion >= 4n;
  return create(ModelProtoSchema, {
    ...proto,
    graph: create(GraphProtoSchema, {
      ...g,
      node: [...nodes, ...ident],
      input: ir4 ? g.input.filter((v) => !frozen.has(v.name)) : g.input,
      initializer: [...g.initializer, ...[...frozen].map(([name, t]) => hostToTensor(name, t.data as never, t.dims, t.dataType))],
    }),
  });
}

/**
 * How the folder sees the inputs: `declared` as the test declares them (every shape is known, so
 * shape computations can become constants), or `symbolic` with the leading dim of the float inputs
 * that share the first one's leading size renamed N, as a dynamic-batch export declares it (so the
 * folder must keep what depends on N computed, or rebuild it from N, and be right at the test's N).
 */
export type FoldMode = 'declared' | 'symbolic';

/** `model` with the leading dim of the float inputs in `feeds` that share the first one's made symbolic ("N"). */
export function symbolicLeadingDim(model: ModelProto, feeds: Record<string, Feed>): { model: ModelProto; inputs: string[] } {
  const m = clone(ModelProtoSchema, model);
  const first = Object.values(feeds).find((f) => f.dims.length > 0);
  const inputs: string[] = [];
  for (const v of m.graph!.input) {
    const f = feeds[v.name];
    const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
    if (!f || !first || f.dims.length === 0 || f.dims[0] !== first.dims[0] || !tt?.shape?.dim.length) continue;
    tt.shape.dim[0]!.value = { case: 'dimParam', value: 'N' };
    inputs.push(v.name);
  }
  return { model: m, inputs };
}

/** Folding check of one test; undefined when the test has no shape op. */
export async function checkFolding(c: TestCase, op: string, fold: Folder, mode: FoldMode = 'declared'): Promise<CaseResult | undefined> {
  const base = { suite: c.suite, name: mode === 'declared' ? c.name : `${c.name} [symbolic N]`, op };
  const { proto } = loadCase(c);
  if (!isFoldCandidate(proto)) return undefined;
  let model: ModelProto;
  let feeds: Record<string, Feed>;
  let expected;
  try {
    const inputs = readInputs(c, proto);
    expected = readOutputs(c, proto);
    const frozen = new Map<string, { data: Feed['data']; dims: readonly number[]; dataType: number }>();
    feeds = {};
    for (const [name, t] of inputs) {
      if (FLOATS.has(t.host.dataType)) feeds[name] = feedOf(t.host);
      else frozen.set(name, { data: t.host.data as Feed['data'], dims: t.host.dims, dataType: t.host.dataType });
    }
    model = foldInput(proto, frozen);
    if (mode === 'symbolic') {
      const sym = symbolicLeadingDim(model, feeds);
      if (!sym.inputs.length) return undefined; // no float input with a leading dim: same as declared
      model = sym.model;
    }
  } catch (e) {
    return { ...base, ...outcomeOfError(e) };
  }
  let folded: FoldOutcome;
  try {
    folded = fold(model);
  } catch (e) {
    return { ...base, ...outcomeOfError(e) };
  }
  const nodes: [number, number] = [model.graph!.node.length, folded.model.graph!.node.length];
  let res;
  try {
    const s = await createSession(encodeModel(folded.model), { provider: 'cpu', threads: 1 });
    try {
      res = await s.run(feeds, expected.map((o) => o.name));
    } finally {
      await s.release();
    }
  } catch (e) {
    if (e instanceof VitpathError && e.exitCode === ExitCode.RUNTIME) {
      // Nothing to compare when ONNX Runtime cannot run the unfolded test either.
      const original = await runs(model, feeds);
      if (!original) return { ...base, outcome: 'oracle', nodes, detail: `ONNX Runtime cannot run the test model: ${oneLine(firstLine(e.cause ?? e))}` };
      return { ...base, outcome: 'fail', nodes, detail: `ONNX Runtime cannot run the folded model: ${oneLine(firstLine(e.cause ?? e))}` };
    }
    return { ...base, nodes, ...outcomeOfError(e) };
  }
  for (const o of expected) {
    const bad = compareTensor(res[o.name]!, o.t.host, `output "${o.name}"`);
    if (bad) return { ...base, outcome: 'fail', nodes, detail: `the folded graph gives ${bad}` };
  }
  const left = folded.left?.length ? `; left computed: ${folded.left.map((l) => `${l.op} (${l.reason})`).join('; ')}` : '';
  return { ...base, outcome: 'pass', nodes, folded: folded.removed, detail: `${nodes[0]} -> ${nodes[1]} nodes${folded.removed !== undefined ? `, ${folded.removed} folded` : ''}${left}` };
}

async function runs(model: ModelProto, feeds: Record<string, Feed>): Promise<boolean> {
  try {
    const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
    try {
      await s.run(feeds);
    } finally {
      await s.release();
    }
    return true;
  } catch {
    return false;
  }
}
