// Finite-difference gradient checking: compares vitpath's gradient graph, run in ONNX Runtime,
// with central differences of the forward model, on a weighted-sum loss of one output.
import { create, GraphProtoSchema, ModelProtoSchema, DataType, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, namedValueInfo, tensorValueInfo } from '../../src/onnx/builder.js';
import { Graph } from '../../src/onnx/graph.js';
import { encodeModel } from '../../src/onnx/model.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession, type Feed, type ModelSession } from '../../src/runtime/session.js';
import { mulberry32 } from '../../src/random.js';

export interface GradCheckCase {
  /** Forward model. */
  model: ModelProto;
  /** A value for every graph input. */
  inputs: Record<string, Feed>;
  /** Graph inputs to check gradients for. */
  wrt: string[];
  /** Output reduced into the loss (default: the first graph output). */
  output?: string;
  /** Central-difference step (default 1e-6 for float64 inputs, 3e-3 for float32). */
  eps?: number;
  /** Check at most this many elements per input (evenly spread); default 64. */
  maxElems?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** Max over checked elements of |analytic - numeric| / max(|analytic|, |numeric|, 1e-3 * scale). */
  maxRelErr: number;
  perInput: Record<string, number>;
  analytic: Record<string, number[]>;
  numeric: Record<string, number[]>;
}


/** Append loss = ReduceSum(output * W) with fixed random W shaped like the output (as run). */
export function withWeightedLoss(model: ModelProto, output: string, outDims: number[], outType: DataType, seed: number): ModelProto {
  const g = new Graph(model);
  const b = new GraphBuilder(g.opset, 'gc');
  const rnd = mulberry32(seed);
  const n = outDims.reduce((a, c) => a * c, 1);
  const w = Array.from({ length: n }, () => rnd() * 2 - 1);
  const wName = outType === DataType.DOUBLE ? b.constF64(w, outDims, 'lossw') : b.constF32(w, outDims, 'lossw');
  const prod = b.op('Mul', [output, wName]);
  const all = Array.from({ length: outDims.length }, (_, i) => i);
  b.reduceSum(prod, all, false);
  const lossTensor = b.nodes[b.nodes.length - 1]!.output[0]!;
  b.op('Identity', [lossTensor], {}, 'loss');
  const graph = create(GraphProtoSchema, {
    ...model.graph!,
    node: [...model.graph!.node, ...b.nodes],
    initializer: [...model.graph!.initializer, ...b.initializers],
    output: [tensorValueInfo('loss', outType, [])],
  });
  return create(ModelProtoSchema, { ...model, graph });
}

async function lossOf(s: ModelSession, feeds: Record<string, Feed>): Promise<number> {
  const out = await s.run(feeds, ['loss']);
  return Number(out.loss!.data[0]);
}

export async function gradCheck(c: GradCheckCase): Promise<GradCheckResult> {
  const g = new Graph(c.model);
  const output = c.output ?? g.outputNames[0]!;
  // Run the forward once to learn the output's concrete shape and type.
  const fwd = await createSession(encodeModel(withOutputs(c.model, [output])), { provider: 'cpu', threads: 1 });
  const y = (await fwd.run(c.inputs, [output]))[output]!;
  await fwd.release();
  const outType = y.type === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
  const lossModel = withWeightedLoss(c.model, output, y.dims, outType, c.seed ?? 7);
  const facts = await probeFacts(lossModel, { feeds: () => c.inputs, threads: 1 });
  const { model: gradModel, gradOutputs } = buildGradientGraph(lossModel, { loss: 'loss', wrt: c.wrt, facts });
  const gs = await createSession(encodeModel(gradModel), { provider: 'cpu', threads: 1 });
  const res = await gs.run(c.inputs);
  await gs.release();
  const ls = await createSession(encodeModel(lossModel), { provider: 'cpu', threads: 1 });
  const perInput: Record<string, number> = {};
  const analytic: Record<string, number[]> = {};
  const numeric: Record<string, number[]> = {};
  let maxRelErr = 0;
  for (const w of c.wrt) {
    const feed = c.inputs[w]!;
    const base = feed.data as Float32Array | Float64Array;
    const grad = res[gradOutputs[w]!]!;
    if (grad.data.length !== base.length) throw new Error(`gradient of ${w} has ${grad.data.length} values, input has ${base.length}`);
    const eps = c.eps ?? (base instanceof Float64Array ? 1e-6 : 3e-3);
    const count = Math.min(c.maxElems ?? 64, base.length);
    const idx = Array.from({ length: count }, (_, k) => Math.floor((k * base.length) / count));
    const an: number[] = [];
    const nu: number[] = [];
    for (const i of idx) {
      const plus = base.slice();
      const minus = base.slice();
      plus[i] = base[i]! + eps;
      minus[i] = base[i]! - eps;
      const lp = await lossOf(ls, { ...c.inputs, [w]: { ...feed, data: plus } });
      const lm = await lossOf(ls, { ...c.inputs, [w]: { ...feed, data: minus } });
      // Use the step actually representable in the array's precision.
      const h = Number(plus[i]) - Number(minus[i]);
      nu.push((lp - lm) / h);
      an.push(Number(grad.data[i]));
    }
    const scale = Math.max(1e-12, ...nu.map(Math.abs), ...an.map(Math.abs));
    let worst = 0;
    for (let k = 0; k < an.length; k++) {
      const denom = Math.max(Math.abs(an[k]!), Math.abs(nu[k]!), 1e-3 * scale);
      worst = Math.max(worst, Math.abs(an[k]! - nu[k]!) / denom);
    }
    perInput[w] = worst;
    analytic[w] = an;
    numeric[w] = nu;
    maxRelErr = Math.max(maxRelErr, worst);
  }
  await ls.release();
  return { maxRelErr, perInput, analytic, numeric };
}

function withOutputs(model: ModelProto, outputs: string[]): ModelProto {
  return create(ModelProtoSchema, {
    ...model,
    graph: create(GraphProtoSchema, { ...model.graph!, output: outputs.map((o) => model.graph!.output.find((v) => v.name === o) ?? namedValueInfo(o)) }),
  });
}

/** Deterministic pseudo-random values in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1, f64 = false): Float32Array | Float64Array {
  const r = mulberry32(seed);
  const a = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}
