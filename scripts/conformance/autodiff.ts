// Autodiff conformance of one operator test: vitpath's gradient graph of a random projection of the
// test's float outputs, w.r.t. every float input, against central finite differences of the forward
// model, at the test's own input values. Integer/bool inputs (indices, axes, shapes, conditions) are
// frozen as initializers, as an exporter writes them. Runs in float64 where ONNX Runtime has the
// kernels, float32 otherwise.
import { create, DataType, GraphProtoSchema, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { hostToTensor, type HostTensor } from '../../src/onnx/tensor.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { ruleFor } from '../../src/onnx/autodiff/registry.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession, firstLine, type Feed } from '../../src/runtime/session.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { mulberry32 } from '../../src/random.js';
import type { TestCase } from './suite.js';
import { outcomeOfError, type CaseResult } from './outcome.js';
import { loadCase, RANDOM_OPS, readInputs, readOutputs } from './io.js';
import { feedOf } from './tensors.js';
import { castHost, retypeFloats, widens, type FloatTarget } from './precision.js';


const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

export interface AutodiffOptions {
  /** Checked elements per input, evenly spread (default 64). */
  maxElems?: number;
  /** The suite's test_<name>_expanded twin of a test (ONNX's function body for the op), if any. */
  expandedTwin?: (c: TestCase) => TestCase | undefined;
}

/**
 * Tolerances of the existing rule tests (test/autodiff/math-model.ts and RESULTS-math.md):
 * float64 central step 1e-6, max relative error 1e-6; float32 step 1e-2 (F32_STEP), 1e-3.
 * Steps are relative to max(1, |x|).
 */
export const FD = {
  float64: { step: 1e-6, tol: 1e-6 },
  float32: { step: 1e-2, tol: 1e-3 },
} as const;

/**
 * Whether a test is an autodiff case: every node is a Constant or an ai.onnx op with a gradient rule
 * in the registry, none is random, and some graph input and some graph output are floating point.
 */
export function isAutodiffCandidate(model: ModelProto): boolean {
  const g = model.graph!;
  const nodes = g.node;
  if (!nodes.length) return false;
  for (const n of nodes) {
    if (n.domain && n.domain !== 'ai.onnx') return false;
    if (RANDOM_OPS.has(n.opType)) return false;
    if (n.opType !== 'Constant' && !ruleFor(n.opType)) return false;
  }
  const floatType = (v: (typeof g.input)[number]) => v.type?.value.case === 'tensorType' && FLOATS.has(v.type.value.value.elemType);
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input.some((v) => !inits.has(v.name) && floatType(v)) && g.output.some(floatType);
}

interface Prepared {
  model: ModelProto;
  feeds: Record<string, Feed>;
  wrt: string[];
  outputs: string[];
}

/** Freeze non-float inputs as initializers and re-type floats to `to`. */
function prepare(proto: ModelProto, inputs: Map<string, HostTensor>, floatOutputs: string[], to: FloatTarget): Prepared {
  const g = proto.graph!;
  const frozen = new Map<string, HostTensor>();
  const feeds: Record<string, Feed> = {};
  const wrt: string[] = [];
  for (const [name, t] of inputs) {
    if (FLOATS.has(t.dataType)) {
      feeds[name] = feedOf(widens(t.dataType, to) ? castHost(t, to) : t);
      wrt.push(name);
    } else frozen.set(name, t);
  }
  const ir4 = proto.irVersion >= 4n;
  const graph = create(GraphProtoSchema, {
    ...g,
    // From IR 4 an initializer need not be a graph input; before, it must stay listed as one.
    input: ir4 ? g.input.filter((v) => !frozen.has(v.name)) : g.input,
    initializer: [...g.initializer, ...[...frozen].map(([name, t]) => hostToTensor(name, t.data, t.dims, t.dataType))],
  });
  const model = retypeFloats(create(ModelProtoSchema, { ...proto, graph }), to);
  return { model, feeds, wrt, outputs: floatOutputs };
}

/** The projection weights W_k, fixed random in [-1, 1), as the loss model stores them (rounded for float32). */
export function projectionWeights(outputs: { name: string; dims: number[] }[], to: FloatTarget, seed: number): Float64Array[] {
  const rnd = mulberry32(seed);
  return outputs.map((o) => {
    const w = new Float64Array(o.dims.reduce((a, c) => a * c, 1));
    for (let i = 0; i < w.length; i++) w[i] = to === DataType.FLOAT ? Math.fround(rnd() * 2 - 1) : rnd() * 2 - 1;
    return w;
  });
}

/** Append loss = sum_k ReduceSum(y_k * W_k) (the random projection of the outputs) as output conf/loss. */
export function withProjectionLoss(model: ModelProto, outputs: { name: string; dims: number[] }[], weights: Float64Array[], to: FloatTarget): ModelProto {
  const g = model.graph!;
  const taken = new Set<string>([...g.node.flatMap((n) => [...n.input, ...n.output]), ...g.initializer.map((t) => t.name), ...g.input.map((v) => v.name)]);
  const opset = Number(model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1);
  const b = new GraphBuilder(opset, 'conf', taken);
  const terms = outputs.map((o, k) => {
    const w = b.constFloat(to, Array.from(weights[k]!), o.dims, 'proj');
    return b.op('ReduceSum', [b.op('Mul', [o.name, w])], { keepdims: 0 });
  });
  b.op(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, b.reserve('conf/loss'));
  return create(ModelProtoSchema, {
    ...model,
    graph: create(GraphProtoSchema, {
      ...g,
      node: [...g.node, ...b.nodes],
      initializer: [...g.initializer, ...b.initializers],
      output: [tensorValueInfo('conf/loss', to, [])],
    }),
  });
}

/** A stable 32-bit seed from a test name (FNV-1a). */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const isKernelGap = (e: unknown) => e instanceof VitpathError && e.exitCode === ExitCode.RUNTIME && /implementation|not implemented|NOT_IMPLEMENTED|type.*not supported/i.test(`${e.message} ${String((e.cause as Error)?.message ?? '')}`);

interface Check {
  maxRelErr: number;
  /** Elements where the one-sided slopes differ (a kink) and the gradient lies between them. */
  kinks: number;
  /** Elements where the output's shape changes on both sides (Range at a size boundary): no derivative. */
  jumps: number;
  /** Elements compared with finite differences. */
  compared: number;
  worst?: string;
}

/** Autodiff check of one test. Returns undefined when the test is not an autodiff case. */
export async function checkAutodiff(c: TestCase, op: string, opts: AutodiffOptions = {}): Promise<CaseResult | undefined> {
  const base = { suite: c.suite, name: c.name, op };
  const { proto } = loadCase(c);
  if (!isAutodiffCandidate(proto)) return undefined;
  let inputs: Map<string, HostTensor>;
  let floatOutputs: string[];
  try {
    inputs = new Map([...readInputs(c, proto)].map(([k, v]) => [k, v.host]));
    floatOutputs = readOutputs(c, proto).filter((o) => FLOATS.has(o.t.host.dataType)).map((o) => o.name);
  } catch (e) {
    return { ...base, ...outcomeOfError(e) };
  }
  if (![...inputs.values()].some((t) => FLOATS.has(t.dataType)) || floatOutputs.length === 0) return undefined;
  // float64; where ONNX Runtime lacks a float64 kernel, float64 with the forward taken from ONNX's
  // own function body for the op (the suite's test_*_expanded twin, same inputs and outputs); else float32.
  const expanded = opts.expandedTwin?.(c);
  const attempts: { to: FloatTarget; twin?: ModelProto }[] = [{ to: DataType.DOUBLE }];
  if (expanded) attempts.push({ to: DataType.DOUBLE, twin: loadCase(expanded).proto });
  attempts.push({ to: DataType.FLOAT });
  let why = '';
  for (const { to, twin } of attempts) {
    const precision = to === DataType.DOUBLE ? 'float64' : 'float32';
    try {
      const p = prepare(proto, inputs, floatOutputs, to);
      const impl = twin ? prepare(twin, inputs, floatOutputs, to).model : undefined;
      const r = await gradientVsDifferences(p, to, seedOf(c.name), opts.maxElems ?? 64, impl);
      if (r === 'independent') return undefined;
      const tol = FD[precision].tol;
      const note =
        (r.kinks ? `; ${r.kinks} element(s) at a kink, between the one-sided slopes` : '') +
        (r.jumps ? `; ${r.jumps} element(s) where the output's shape jumps, not compared` : '') +
        (twin ? `; float64 forward from ${expanded!.name}` : '') +
        why;
      const over = r.compared ? ` over ${r.compared} elements` : ' (empty inputs: no element to compare; the gradient graph runs and gives empty gradients)';
      if (r.maxRelErr <= tol) return { ...base, outcome: 'pass', precision, maxRelErr: r.maxRelErr, kinks: r.kinks, detail: `max rel. error ${r.maxRelErr.toExponential(1)}${over}${note}` };
      return { ...base, outcome: 'fail', precision, maxRelErr: r.maxRelErr, kinks: r.kinks, detail: `gradient differs from finite differences: ${r.worst} (tolerance ${tol})${note}` };
    } catch (e) {
      if (to === DataType.DOUBLE && isKernelGap(e)) {
        // No float64 kernel in ONNX Runtime for some op: try the next form, saying why.
        if (!why) why = ` (ONNX Runtime: ${firstLine((e as Error).cause ?? e)})`;
        continue;
      }
      return { ...base, precision, ...outcomeOfError(e) };
    }
  }
  return { ...base, outcome: 'fail', detail: 'no precision to check in' };
}

/**
 * The gradient of the projection built from `p.model` (the op under test) vs finite differences.
 * With `impl` (the same function as a graph ONNX Runtime can run in float64), the forward nodes of
 * the gradient model and the finite differences use `impl` instead of `p.model`'s own nodes.
 */
async function gradientVsDifferences(p: Prepared, to: FloatTarget, seed: number, maxElems: number, impl?: ModelProto): Promise<Check | 'independent'> {
  const precision = to === DataType.DOUBLE ? 'float64' : 'float32';
  const forward = impl ?? p.model;
  const fwd = await createSession(encodeModel(forward), { provider: 'cpu', threads: 1 });
  try {
    // Forward once for the outputs' run-time dims; the projection is W_k shaped like them.
    const y0 = await fwd.run(p.feeds, p.outputs);
    const dims = p.outputs.map((o) => ({ name: o, dims: y0[o]!.dims }));
    const weights = projectionWeights(dims, to, seed);
    const lossModel = withProjectionLoss(p.model, dims, weights, to);
    const lossImpl = impl ? withProjectionLoss(impl, dims, weights, to) : lossModel;
    const facts = await probeFacts(lossImpl, { feeds: () => p.feeds, threads: 1 });
    let built;
    try {
      built = buildGradientGraph(lossModel, { loss: 'conf/loss', wrt: p.wrt, facts });
    } catch (e) {
      if (!(e instanceof VitpathError) && /does not depend on/.test(String((e as Error).message))) return 'independent';
      throw e;
    }
    const gradModel = impl ? substituteForward(built.model, p.model.graph!.node.length, impl) : built.model;
    const gs = await createSession(encodeModel(gradModel), { provider: 'cpu', threads: 1 });
    let grads: Record<string, HostTensor['data']>;
    try {
      const out = await gs.run(p.feeds, Object.values(built.gradOutputs));
      grads = Object.fromEntries(p.wrt.map((w) => [w, out[built.gradOutputs[w]!]!.data as HostTensor['data']]));
    } finally {
      await gs.release();
    }
    // The oracle: the forward model's outputs projected in float64 here, so that only the outputs
    // a perturbation changes contribute rounding (a float32 ReduceSum would add the whole sum's).
    const project = async (feeds: Record<string, Feed>): Promise<number | undefined> => {
      const y = await fwd.run(feeds, p.outputs);
      let l = 0;
      for (let k = 0; k < dims.length; k++) {
        const t = y[dims[k]!.name]!;
        if (t.dims.length !== dims[k]!.dims.length || t.dims.some((d, i) => d !== dims[k]!.dims[i])) return undefined; // shape changed
        const w = weights[k]!;
        for (let i = 0; i < w.length; i++) l += w[i]! * Number(t.data[i]);
      }
      return Number.isNaN(l) ? undefined : l; // NaN: the forward is not defined there (Pow of a negative base)
    };
    return await compareWithDifferences(project, p, grads, FD[precision], to === DataType.FLOAT, maxElems);
  } finally {
    await fwd.release();
  }
}

/** `model` with its first `n` nodes (the forward of the op under test) replaced by `impl`'s nodes. */
function substituteForward(model: ModelProto, n: number, impl: ModelProto): ModelProto {
  const g = model.graph!;
  const inits = new Map(impl.graph!.initializer.map((t) => [t.name, t]));
  for (const t of g.initializer) if (!inits.has(t.name)) inits.set(t.name, t);
  return create(ModelProtoSchema, {
    ...model,
    graph: create(GraphProtoSchema, { ...g, node: [...impl.graph!.node, ...g.node.slice(n)], initializer: [...inits.values()] }),
  });
}

interface Diffs {
  central?: number;
  forward?: number;
  backward?: number;
  /** A one-sided estimate with O(h^2) error (Richardson) when only one side keeps the output shape. */
  oneSided?: number;
}

async function compareWithDifferences(
  loss: (feeds: Record<string, Feed>) => Promise<number | undefined>,
  p: Prepared,
  grads: Record<string, HostTensor['data']>,
  fd: { step: number; tol: number },
  float32: boolean,
  maxElems: number,
): Promise<Check> {
  const l0 = await loss(p.feeds);
  if (l0 === undefined) throw new Error('the projected outputs are NaN at the test point; there is no derivative to compare with');
  let maxRelErr = 0;
  let kinks = 0;
  let jumps = 0;
  let compared = 0;
  let worst: string | undefined;
  for (const w of p.wrt) {
    const feed = p.feeds[w]!;
    const x = feed.data as Float32Array | Float64Array;
    const g = grads[w]!;
    if (g.length !== x.length) throw new Error(`gradient of "${w}" has ${g.length} values, the input has ${x.length}`);
    const count = Math.min(maxElems, x.length);
    const idx = Array.from({ length: count }, (_, k) => Math.floor((k * x.length) / count));
    const at = async (i: number, delta: number): Promise<{ l: number | undefined; h: number }> => {
      const v = x.slice();
      v[i] = x[i]! + delta;
      return { l: await loss({ ...p.feeds, [w]: { ...feed, data: v } }), h: Number(v[i]) - Number(x[i]) };
    };
    const diffs = async (i: number, scale: number): Promise<Diffs> => {
      const h = fd.step * scale * Math.max(1, Math.abs(x[i]!));
      const [pl, mi] = [await at(i, h), await at(i, -h)];
      const d: Diffs = {};
      if (pl.l !== undefined) d.forward = (pl.l - l0) / pl.h;
      if (mi.l !== undefined) d.backward = (l0 - mi.l) / -mi.h;
      if (pl.l !== undefined && mi.l !== undefined) d.central = (pl.l - mi.l) / (pl.h - mi.h);
      else if (d.forward !== undefined || d.backward !== undefined) {
        const half = await at(i, pl.l !== undefined ? h / 2 : -h / 2);
        const d1 = d.forward ?? d.backward!;
        if (half.l !== undefined) d.oneSided = 2 * ((half.l - l0) / half.h) - d1;
      }
      return d;
    };
    const an = idx.map((i) => Number(g[i]));
    const first: Diffs[] = [];
    for (const i of idx) first.push(await diffs(i, 1));
    const estimate = (d: Diffs) => d.central ?? d.oneSided;
    const scale = Math.max(1e-12, ...an.map(Math.abs), ...first.map((d) => Math.abs(estimate(d) ?? 0)));
    const rel = (a: number, n: number | undefined) => (n === undefined ? Infinity : a === n ? 0 : Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), 1e-3 * scale));
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k]!;
      const a = an[k]!;
      const d0 = first[k]!;
      if (d0.forward === undefined && d0.backward === undefined) {
        jumps++; // the output's shape changes on both sides: no derivative to compare with
        continue;
      }
      compared++;
      let err = rel(a, estimate(d0));
      if (!(err <= fd.tol)) {
        // A failing element: a smaller step (the difference may straddle a kink or see curvature);
        // in float32 a larger one where the function is linear along this input (rounding of the
        // outputs dominates: Conv on integer-valued data).
        const tries: (number | undefined)[] = [];
        const half = await diffs(i, 1 / 2);
        // Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 term of the central difference.
        if (half.central !== undefined && d0.central !== undefined) tries.push((4 * half.central - d0.central) / 3);
        let d = d0;
        for (const s of [1 / 8, 1 / 64]) {
          d = await diffs(i, s);
          tries.push(estimate(d));
        }
        if (float32) {
          const [d8, d64] = [estimate(await diffs(i, 8)), estimate(await diffs(i, 64))];
          if (d8 !== undefined && d64 !== undefined && Math.abs(d8 - d64) <= fd.tol * Math.max(Math.abs(d64), 1e-3 * scale)) tries.push(d64);
        }
        for (const t of tries) err = Math.min(err, rel(a, t));
        // Still failing: if the one-sided slopes disagree as much at the smallest step as at the
        // first (a kink: Relu/Abs at 0, Max ties, Clip at a bound), accept a gradient between them.
        if (!(err <= fd.tol) && d.forward !== undefined && d.backward !== undefined && d0.forward !== undefined && d0.backward !== undefined) {
          const jump = Math.abs(d.forward - d.backward);
          const lo = Math.min(d.forward, d.backward) - fd.tol * scale;
          const hi = Math.max(d.forward, d.backward) + fd.tol * scale;
          // A real kink's jump is |W_j| times a slope difference, comparable to the gradients; 100 x
          // the tolerance keeps finite-difference noise (float32) from passing for one.
          if (jump > 100 * fd.tol * scale && jump >= 0.5 * Math.abs(d0.forward - d0.backward) && a >= lo && a <= hi) {
            kinks++;
            err = 0;
          }
        }
      }
      if (Number.isNaN(err)) err = Infinity;
      if (worst === undefined || err > maxRelErr) {
        worst = `input "${w}"[${i}] = ${x[i]}: gradient ${a}, finite difference ${estimate(d0)}`;
        maxRelErr = err;
      }
    }
  }
  return { maxRelErr, kinks, jumps, compared, worst };
}
