// Head-count and rank inference on hand-built attention graphs whose head count is known by construction.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/proto.js';
import { Graph } from '../../src/onnx/graph.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { inferHeads, rankOf } from '../../src/vit/shapes.js';

const D = 48;

/** x [B,T,D] -> q,k projections -> `shapeQK` hook -> scores -> Softmax; returns the graph and softmax. */
function attention(opset: number, hook: (b: GraphBuilder, q: string, k: string) => { q: string; k: string; scores?: (s: string) => string }) {
  const b = new GraphBuilder(opset);
  const w = () => b.constF32(Array.from({ length: D * D }, (_, i) => ((i * 7) % 11) / 100), [D, D]);
  const q0 = b.op('MatMul', ['x', w()]);
  const k0 = b.op('MatMul', ['x', w()]);
  const { q, k, scores } = hook(b, q0, k0);
  let s = b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 2, 1] })]);
  if (scores) s = scores(s);
  b.op('Softmax', [s], { axis: -1 }, 'p');
  const model = makeModel({ graph: makeGraph('a', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['B', 'T', D])], [tensorValueInfo('p', DataType.FLOAT)], b.initializers), opset });
  const g = new Graph(model);
  const softmax = g.producerOf('p')!;
  return { g, softmax, nodes: g.nodes };
}

describe('inferHeads', () => {
  it('reads (heads, head_dim) from a Concat-built reshape target [?, ?, H, dh]', () => {
    const { g, softmax, nodes } = attention(17, (b, q, k) => {
      const shape = b.op('Concat', [b.unsqueeze(b.op('Gather', [b.op('Shape', [q]), b.constI64([0], [])], { axis: 0 }), [0]), b.constI64([-1, 6, 8])], { axis: 0 });
      return { q: b.op('Reshape', [q, shape]), k };
    });
    expect(inferHeads(g, nodes, softmax, D)).toBe(6);
  });
  it('reads torch MultiheadAttention shape arithmetic (bsz * heads, embed // heads)', () => {
    const { g, softmax, nodes } = attention(17, (b, q, k) => {
      const sh = b.op('Shape', [q]);
      const bh = b.op('Mul', [b.op('Gather', [sh, b.constI64([1], [])], { axis: 0 }), b.constI64([12], [])]);
      const dh = b.op('Div', [b.op('Gather', [sh, b.constI64([2], [])], { axis: 0 }), b.constI64([12], [])]);
      const shape = b.op('Concat', [b.constI64([-1]), b.unsqueeze(bh, [0]), b.unsqueeze(dh, [0])], { axis: 0 });
      return { q: b.op('Reshape', [q, shape]), k };
    });
    expect(inferHeads(g, nodes, softmax, D)).toBe(12);
  });
  it('reads the score scale: Div by sqrt(dh)', () => {
    const { g, softmax, nodes } = attention(13, (_b, q, k) => ({ q, k, scores: (s) => _b.op('Div', [s, _b.constF32([Math.sqrt(16)], [])]) }));
    expect(inferHeads(g, nodes, softmax, D)).toBe(3);
  });
  it('reads the score scale split over q and k as dh^-1/4 each (SDPA exports)', () => {
    const { g, softmax, nodes } = attention(18, (b, q, k) => {
      const s = b.constF32([Math.pow(8, -0.25)], []);
      return { q: b.op('Mul', [q, s]), k: b.op('Mul', [k, s]) };
    });
    expect(inferHeads(g, nodes, softmax, D)).toBe(6);
  });
  it('returns null when nothing tells', () => {
    const { g, softmax, nodes } = attention(17, (_b, q, k) => ({ q, k }));
    expect(inferHeads(g, nodes, softmax, D)).toBeNull();
  });
});

describe('rankOf', () => {
  it('follows Reshape targets, Gemm, Transpose, Gather and reductions', () => {
    const b = new GraphBuilder(17);
    const flat = b.op('Reshape', ['x', b.constI64([-1, D])]);
    const y = b.op('Gemm', [flat, b.constF32(new Array(D * 4).fill(0.1), [D, 4])]);
    const t = b.op('Transpose', ['x'], { perm: [1, 0, 2] });
    const first = b.op('Gather', [t, b.constI64([0], [])], { axis: 0 });
    const m = b.reduce18('ReduceMean', 'x', [1], false);
    const model = makeModel({ graph: makeGraph('r', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['B', 'T', D])], [], b.initializers), opset: 17 });
    const g = new Graph(model);
    expect([flat, y, t, first, m].map((n) => rankOf(g, n))).toEqual([2, 2, 3, 2, 2]);
  });
});
