// Test helpers for the math gradient-rule tests: one-node models, random feeds, and an optional
// JSONL log of each check's worst error (VITPATH_GRADCHECK_LOG=dir) that results-math.ts tabulates.
import fs from 'node:fs';
import path from 'node:path';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import type { AttrValue } from '../../src/onnx/attributes.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import type { Feed } from '../../src/runtime/session.js';
import { gradCheck, randomArray, type GradCheckCase, type GradCheckResult } from '../helpers/gradcheck.js';

export interface OpInput {
  name: string;
  dims: number[];
  /** Graph input (default) or a constant initializer with these values. */
  init?: number[] | Float32Array | Float64Array | BigInt64Array;
  dtype?: DataType;
}

export const numelOf = (d: readonly number[]) => d.reduce((a, c) => a * c, 1);

/** A model with one node `op(inputs) -> outputs` ('' for an absent optional input). */
export function opModel(op: string, inputs: (OpInput | '')[], attrs: Record<string, AttrValue | undefined>, opset: number, dtype = DataType.DOUBLE, outputs: string[] = ['y']): ModelProto {
  const b = new GraphBuilder(opset, 't');
  const graphInputs = [];
  for (const i of inputs) {
    if (i === '') continue;
    const dt = i.dtype ?? dtype;
    if (i.init !== undefined) {
      const v = i.init;
      const data =
        dt === DataType.INT64 ? BigInt64Array.from(Array.from(v as ArrayLike<number | bigint>, (x) => BigInt(x))) : dt === DataType.DOUBLE ? Float64Array.from(v as ArrayLike<number>) : Float32Array.from(v as ArrayLike<number>);
      b.initializer(i.name, data, i.dims, dt);
    } else graphInputs.push(tensorValueInfo(i.name, dt, i.dims));
  }
  b.op(op, inputs.map((i) => (i === '' ? '' : i.name)), attrs, undefined);
  // Rename the generated output(s).
  const node = b.nodes[b.nodes.length - 1]!;
  node.output = outputs;
  return makeModel({ opset, graph: makeGraph('g', b.nodes, graphInputs, outputs.map((o) => tensorValueInfo(o, dtype)), b.initializers) });
}

/** A random feed for a graph input. */
export function feed(dims: number[], seed: number, lo = -1, hi = 1, f64 = true): Feed {
  return { data: randomArray(numelOf(dims), seed, lo, hi, f64), dims };
}

/**
 * Central-difference step for float32 inputs. The error of (L(x+h) - L(x-h)) / 2h is about
 * h^2 |L'''| / 6 + eps_f32 |L| / h; with eps_f32 = 6e-8 and O(1) values the optimum is
 * h ~ (3 eps_f32)^(1/3) ~ 6e-3, so 1e-2 (truncation ~2e-5, rounding ~1e-5 relative) beats the
 * harness default 3e-3, whose rounding term reached 5e-3 relative on small softmax gradients.
 */
export const F32_STEP = 1e-2;

/** Run gradCheck and, when VITPATH_GRADCHECK_LOG names a folder, log the worst error. */
export async function checkAndLog(rule: string, label: string, c: GradCheckCase): Promise<GradCheckResult> {
  const first = c.inputs[c.wrt[0]!]!.data;
  const r = await gradCheck(first instanceof Float32Array && c.eps === undefined ? { ...c, eps: F32_STEP } : c);
  const dir = process.env.VITPATH_GRADCHECK_LOG;
  if (dir) {
    // float64 only when every checked input is float64 (a float32 input sets the FD step/noise).
    const f64 = c.wrt.every((w) => c.inputs[w]!.data instanceof Float64Array);
    fs.mkdirSync(dir, { recursive: true });
    fs.appendFileSync(path.join(dir, `${rule}.jsonl`), JSON.stringify({ rule, label, dtype: f64 ? 'float64' : 'float32', maxRelErr: r.maxRelErr, perInput: r.perInput }) + '\n');
  }
  return r;
}
