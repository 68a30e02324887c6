// Dynamic-batch gradient check for the shape-op rule tests: probes facts at batch 2 and 3
// (so batch axes are null), builds the gradient graph once, then runs it at other batch
// sizes and compares with central finite differences at each of them.
import { appendFileSync } from 'node:fs';
import { create, DataType, GraphProtoSchema, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, makeNode, tensorValueInfo, type Dim } from '../../src/onnx/builder.js';
import { Graph } from '../../src/onnx/graph.js';
import { encodeModel } from '../../src/onnx/model.js';
import { buildGradientGraph } from '../../src/onnx/autodiff/backward.js';
import { probeFacts } from '../../src/runtime/probe.js';
import { createSession, type Feed } from '../../src/runtime/session.js';
import { withWeightedLoss } from '../helpers/gradcheck.js';

export interface DynCheckCase {
  /** Forward model whose inputs declare a symbolic batch dim. */
  model: ModelProto;
  /** Input values for a given batch size. */
  feeds: (batch: number) => Record<string, Feed>;
  wrt: string[];
  output?: string;
  /** Batch sizes to run the gradient graph at (the probe uses 2 and 3). */
  runBatches?: number[];
  eps?: number;
  maxElems?: number;
}

export interface DynCheckResult {
  maxRelErr: number;
  /** Output dims from the probe (null = batch-dependent): proves the probe saw a dynamic axis. */
  outDims: (number | null)[];
  perBatch: Record<number, number>;
}

export async function dynGradCheck(c: DynCheckCase): Promise<DynCheckResult> {
  const g = new Graph(c.model);
  const output = c.output ?? g.outputNames[0]!;
  const fwdFacts = await probeFacts(c.model, { feeds: c.feeds, threads: 1 });
  const of = fwdFacts.get(output)!;
  // Loss = sum(W * y * y): W broadcasts over batch-dependent axes (so one loss model serves
  // every batch size) and squaring makes the seed differ between batch rows, so a rule that
  // mixed up rows along the batch axis would be caught.
  const sq = create(ModelProtoSchema, {
    ...c.model,
    graph: create(GraphProtoSchema, {
      ...c.model.graph!,
      node: [...c.model.graph!.node, makeNode('Mul', [output, output], ['dyncheck/sq'])],
      output: [tensorValueInfo('dyncheck/sq', of.dataType)],
    }),
  });
  const lossModel = withWeightedLoss(sq, 'dyncheck/sq', of.dims.map((d) => d ?? 1), of.dataType, 11);
  const facts = await probeFacts(lossModel, { feeds: c.feeds, threads: 1 });
  const { model: gradModel, gradOutputs } = buildGradientGraph(lossModel, { loss: 'loss', wrt: c.wrt, facts });
  const gs = await createSession(encodeModel(gradModel), { provider: 'cpu', threads: 1 });
  const ls = await createSession(encodeModel(lossModel), { provider: 'cpu', threads: 1 });
  const perBatch: Record<number, number> = {};
  let maxRelErr = 0;
  try {
    for (const batch of c.runBatches ?? [1, 4]) {
      const inputs = c.feeds(batch);
      const res = await gs.run(inputs);
      let worst = 0;
      for (const w of c.wrt) {
        const feed = inputs[w]!;
        const base = feed.data as Float32Array | Float64Array;
        const grad = res[gradOutputs[w]!]!;
        if (grad.data.length !== base.length) throw new Error(`batch ${batch}: gradient of ${w} has ${grad.data.length} values, input has ${base.length}`);
        const eps = c.eps ?? (base instanceof Float64Array ? 1e-6 : 3e-3);
        const count = Math.min(c.maxElems ?? 48, base.length);
        const an: number[] = [];
        const nu: number[] = [];
        for (let k = 0; k < count; k++) {
          const i = Math.floor((k * base.length) / count);
          const plus = base.slice();
          const minus = base.slice();
          plus[i] = base[i]! + eps;
          minus[i] = base[i]! - eps;
          const lp = Number((await ls.run({ ...inputs, [w]: { ...feed, data: plus } }, ['loss'])).loss!.data[0]);
          const lm = Number((await ls.run({ ...inputs, [w]: { ...feed, data: minus } }, ['loss'])).loss!.data[0]);
          nu.push((lp - lm) / (Number(plus[i]) - Number(minus[i])));
          an.push(Number(grad.data[i]));
        }
        const scale = Math.max(1e-12, ...nu.map(Math.abs), ...an.map(Math.abs));
        for (let k = 0; k < an.length; k++) {
          const denom = Math.max(Math.abs(an[k]!), Math.abs(nu[k]!), 1e-3 * scale);
          worst = Math.max(worst, Math.abs(an[k]! - nu[k]!) / denom);
        }
      }
      perBatch[batch] = worst;
      maxRelErr = Math.max(maxRelErr, worst);
    }
  } finally {
    await gs.release();
    await ls.release();
  }
  return { maxRelErr, outDims: of.dims, perBatch };
}

/** A graph input: name, element type, dims (a string = symbolic batch dim). */
export type InputSpec = [string, DataType, Dim[]];

/**
 * A small forward model: `build` adds nodes (and constant initializers) to the builder and
 * returns the name of the tensor that becomes the single graph output.
 */
export function smallModel(opset: number, inputs: InputSpec[], build: (b: GraphBuilder) => string): ModelProto {
  const b = new GraphBuilder(opset, 'fwd', inputs.map((i) => i[0]));
  const out = build(b);
  return makeModel({
    opset,
    graph: makeGraph('g', b.nodes, inputs.map(([n, dt, d]) => tensorValueInfo(n, dt, d)), [tensorValueInfo(out, inputs[0]![1])], b.initializers),
  });
}

/** Append `rule<TAB>case<TAB>maxRelErr` to $VITPATH_GRAD_RESULTS when set (feeds RESULTS-shape.md). */
export function recordErr(rule: string, label: string, err: number): void {
  const f = process.env.VITPATH_GRAD_RESULTS;
  if (f) appendFileSync(f, `${rule}\t${label}\t${err}\n`);
}

export const F64 = DataType.DOUBLE;
export const F32 = DataType.FLOAT;
