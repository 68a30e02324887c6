// Graph walks the locators share: set intersection, the tensors computed from a tensor's values
// (not merely its shape), and the constant a token tensor is copied from.
import type { NodeProto } from '../../onnx/proto.js';
import type { Graph } from '../../onnx/graph.js';

export function intersect<T>(a: Set<T>, b: Set<T>): Set<T> {
  const out = new Set<T>();
  for (const x of a) if (b.has(x)) out.add(x);
  return out;
}

/** Tensors reachable from `src` forwards, following the outputs `next` gives for each consumer. */
export function forwardFrom(g: Graph, src: string, next: (consumer: NodeProto, from: string) => readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [src];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const c of g.consumersOf(s)) for (const o of next(c, s)) if (o) stack.push(o);
  }
  return seen;
}

/** Tensors computed from `src`'s values (not merely from its shape, so Shape/Size end the walk). */
export function dataDescendants(g: Graph, src: string): Set<string> {
  return forwardFrom(g, src, (c, s) => {
    if (c.opType === 'Shape' || c.opType === 'Size') return [];
    if ((c.opType === 'Expand' || c.opType === 'Reshape' || c.opType === 'Tile') && c.input[0] !== s) return [];
    return c.output;
  });
}

/** The constant a token tensor is copied from: back through Expand/Tile/Reshape/Cast/Identity data inputs. */
export function dataSource(g: Graph, t: string): string | undefined {
  for (let k = 0; k < 8; k++) {
    if (g.isConstant(t)) return t;
    const p = g.producerOf(t);
    if (!p || !['Expand', 'Tile', 'Reshape', 'Cast', 'Identity', 'Unsqueeze'].includes(p.opType) || !p.input[0]) return undefined;
    t = p.input[0];
  }
  return undefined;
}
