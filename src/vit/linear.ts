// Find the linear layers of a graph by structure: MatMul with a constant 2-D weight (+ an Add of a
// constant bias) or Gemm with a constant 2-D weight. Keyed by the tensor they produce.
import type { NodeProto } from '../onnx/proto.js';
import type { Graph } from '../onnx/graph.js';
import { attrInt } from '../onnx/attributes.js';
import type { LinearRef } from './types.js';

/** Dims of a constant tensor (initializer, Constant node, or Identity of one) without decoding twice. */
export function constDims(g: Graph, name: string): number[] | undefined {
  const init = g.initializers.get(name);
  if (init) return init.dims.map(Number);
  const v = g.constantValue(name);
  return v?.dims;
}

/** Number of elements of a constant, or undefined when `name` is not constant. */
export function constSize(g: Graph, name: string): number | undefined {
  const d = constDims(g, name);
  return d ? d.reduce((a, b) => a * b, 1) : undefined;
}

/** The one node consuming `name`, if exactly one does. */
export function soleConsumer(g: Graph, name: string): NodeProto | undefined {
  const c = g.consumersOf(name);
  return c.length === 1 ? c[0] : undefined;
}

/** A MatMul/Gemm with a constant 2-D weight, described as a LinearRef; undefined otherwise. */
export function linearAt(g: Graph, n: NodeProto): LinearRef | undefined {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return undefined;
  if (n.opType === 'MatMul') {
    const [x, w] = n.input;
    if (!x || !w || g.isConstant(x)) return undefined;
    const wd = constDims(g, w);
    if (!wd || wd.length !== 2) return undefined;
    const [inF, outF] = wd as [number, number];
    const ref: LinearRef = { kind: 'matmul', node: n.name, input: x, output: n.output[0]!, weight: w, inFeatures: inF, outFeatures: outF };
    // Bias: the only consumer is an Add of a constant with outF elements (either operand order).
    const add = soleConsumer(g, n.output[0]!);
    if (add && add.opType === 'Add' && add.input.length === 2) {
      const other = add.input[0] === n.output[0] ? add.input[1]! : add.input[0]!;
      if (other !== n.output[0] && g.isConstant(other) && constSize(g, other) === outF) {
        ref.bias = other;
        ref.output = add.output[0]!;
      }
    }
    return ref;
  }
  if (n.opType === 'Gemm') {
    const [x, w, c] = n.input;
    if (!x || !w || g.isConstant(x)) return undefined;
    if (attrInt(n, 'transA', 0) !== 0) return undefined;
    const wd = constDims(g, w);
    if (!wd || wd.length !== 2) return undefined;
    const transB = attrInt(n, 'transB', 0) !== 0;
    const [inF, outF] = (transB ? [wd[1], wd[0]] : [wd[0], wd[1]]) as [number, number];
    const ref: LinearRef = { kind: 'gemm', node: n.name, input: x, output: n.output[0]!, weight: w, transB, inFeatures: inF, outFeatures: outF };
    if (c && g.isConstant(c)) ref.bias = c;
    return ref;
  }
  return undefined;
}

/** Every linear layer in the graph, by output tensor (after the bias), in file order. */
export function findLinears(g: Graph): Map<string, LinearRef> {
  const out = new Map<string, LinearRef>();
  for (const n of g.nodes) {
    const l = linearAt(g, n);
    if (l) out.set(l.output, l);
  }
  return out;
}
