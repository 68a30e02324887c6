// Structural pattern matchers for the parts of a ViT block: the FFN activation region between fc1
// and fc2, and the normalisations (LayerNormalization, its decomposed form, BatchNormalization).
import type { NodeProto } from '../onnx/proto.js';
import type { Graph } from '../onnx/graph.js';
import type { ActivationKind, LinearRef, NormRef } from './types.js';

/** Ops that only move or relabel data (no arithmetic across elements that matters to us). */
export const LAYOUT_OPS = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity', 'Cast', 'Dropout']);

/** Elementwise ops an exported activation (GELU in any spelling, ReLU) is built from. */
const ACTIVATION_REGION_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Pow', 'Erf', 'Tanh', 'Relu', 'Gelu', 'Sigmoid', 'Sqrt', 'Identity', 'Cast', 'Reshape', 'Dropout', 'FastGelu', 'BiasGelu']);
const ACTIVATION_MARKERS: [string, ActivationKind][] = [
  ['Gelu', 'gelu-op'],
  ['Erf', 'gelu-erf'],
  ['Tanh', 'gelu-tanh'],
  ['Relu', 'relu'],
];

export interface FfnMatch {
  fc1: LinearRef;
  fc2: LinearRef;
  activation: { kind: ActivationKind; input: string; output: string };
}

/**
 * From fc1's output, walk forward through elementwise ops until a linear F->D reads the result.
 * Every op in the region may read only region tensors and constants (so the residual Add or an
 * attention MatMul ends the match), and the region must hold an activation op.
 */
export function matchFfn(g: Graph, fc1: LinearRef, linearByNode: Map<NodeProto, LinearRef>): FfnMatch | undefined {
  const region = new Set<string>([fc1.output]);
  const regionNodes: NodeProto[] = [];
  const queue = [fc1.output];
  let fc2: LinearRef | undefined;
  while (queue.length) {
    const t = queue.shift()!;
    for (const c of g.consumersOf(t)) {
      const lin = linearByNode.get(c);
      if (lin && lin.input === t) {
        if (lin.inFeatures !== fc1.outFeatures || lin.outFeatures !== fc1.inFeatures) return undefined;
        if (fc2 && fc2 !== lin) return undefined;
        fc2 = lin;
        continue;
      }
      if (regionNodes.includes(c)) continue;
      if (!ACTIVATION_REGION_OPS.has(c.opType)) return undefined;
      regionNodes.push(c);
      if (regionNodes.length > 24) return undefined;
      for (const o of c.output) if (o && !region.has(o)) {
        region.add(o);
        queue.push(o);
      }
    }
  }
  if (!fc2) return undefined;
  // Inputs of region nodes: region tensors or constants only.
  for (const n of regionNodes) {
    for (const i of n.input) if (i && !region.has(i) && !g.isConstant(i)) return undefined;
  }
  // Dropout's mask output and other dead ends are fine; the region's live exit must be fc2's input.
  const ops = new Set(regionNodes.map((n) => n.opType));
  const kind = ACTIVATION_MARKERS.find(([op]) => ops.has(op))?.[1];
  if (!kind) return undefined;
  // Activation output: fc2's input, or the last arithmetic op before layout-only ops leading to it.
  let actOut = fc2.input;
  for (;;) {
    const p = g.producerOf(actOut);
    if (!p || !regionNodes.includes(p) || !LAYOUT_OPS.has(p.opType) || !p.input[0] || !region.has(p.input[0])) break;
    if (p.input[0] === fc1.output) break;
    actOut = p.input[0];
  }
  return { fc1, fc2, activation: { kind, input: fc1.output, output: actOut } };
}

function constantInput(g: Graph, n: NodeProto, skip: string): string | undefined {
  const other = n.input.find((i) => i && i !== skip);
  return other && g.isConstant(other) ? other : undefined;
}

/** LayerNormalization node reading x. */
function layerNormAfter(g: Graph, x: string): NormRef[] {
  return g
    .consumersOf(x)
    .filter((c) => c.opType === 'LayerNormalization' && c.input[0] === x)
    .map((c) => ({ kind: 'layernorm' as const, input: x, output: c.output[0]!, scale: c.input[1] || undefined, bias: c.input[2] || undefined }));
}

/**
 * The decomposed form: m = ReduceMean(x); d = Sub(x, m); ... ; n = Div(d, s) or Mul(d, r) with r
 * not d; then optional Mul(n, gamma) and Add(., beta) with constant gamma/beta.
 */
function decomposedNormAfter(g: Graph, x: string): NormRef[] {
  const found: NormRef[] = [];
  for (const m of g.consumersOf(x)) {
    if (m.opType !== 'ReduceMean') continue;
    for (const s of g.consumersOf(x)) {
      if (s.opType !== 'Sub' || s.input[0] !== x || s.input[1] !== m.output[0]) continue;
      const d = s.output[0]!;
      const norm = g.consumersOf(d).find(
        (c) => (c.opType === 'Div' && c.input[0] === d && c.input[1] !== d) || (c.opType === 'Mul' && c.input.includes(d) && c.input.some((i) => i !== d && !g.isConstant(i))),
      );
      if (!norm) continue;
      let out = norm.output[0]!;
      const ref: NormRef = { kind: 'layernorm-decomposed', input: x, output: out };
      const mul = g.consumersOf(out);
      if (mul.length === 1 && mul[0]!.opType === 'Mul') {
        const gamma = constantInput(g, mul[0]!, out);
        if (gamma) {
          ref.scale = gamma;
          out = mul[0]!.output[0]!;
        }
      }
      const add = g.consumersOf(out);
      if (add.length === 1 && add[0]!.opType === 'Add') {
        const beta = constantInput(g, add[0]!, out);
        if (beta) {
          ref.bias = beta;
          out = add[0]!.output[0]!;
        }
      }
      ref.output = out;
      found.push(ref);
    }
  }
  return found;
}

/** BatchNormalization reading x directly or through up to two layout ops, undone by as many after. */
function batchNormAfter(g: Graph, x: string): NormRef[] {
  const found: NormRef[] = [];
  const visit = (t: string, depth: number) => {
    for (const c of g.consumersOf(t)) {
      if (c.opType === 'BatchNormalization' && c.input[0] === t) {
        let out = c.output[0]!;
        for (let k = 0; k < depth; k++) {
          const next = g.consumersOf(out);
          if (next.length !== 1 || !LAYOUT_OPS.has(next[0]!.opType)) break;
          out = next[0]!.output[0]!;
        }
        found.push({ kind: 'batchnorm', input: x, output: out, scale: c.input[1] || undefined, bias: c.input[2] || undefined });
      } else if (depth < 2 && LAYOUT_OPS.has(c.opType) && c.input[0] === t && c.output[0]) {
        visit(c.output[0], depth + 1);
      }
    }
  };
  visit(x, 0);
  return found;
}

/** All normalisations that read `x`, in any of the supported spellings. */
export function normsAfter(g: Graph, x: string): NormRef[] {
  return [...layerNormAfter(g, x), ...decomposedNormAfter(g, x), ...batchNormAfter(g, x)];
}

/** The normalisation reading `x` whose output satisfies `accept` (e.g. lies on the branch). */
export function normAfter(g: Graph, x: string, accept: (output: string) => boolean): NormRef | undefined {
  return normsAfter(g, x).find((n) => accept(n.output));
}
