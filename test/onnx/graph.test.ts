// The Graph view: producers/consumers, constants, topological order of a shuffled node list,
// ancestors/descendants, and value-info lookup.
import { describe, expect, it } from 'vitest';
import { create, DataType, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, makeNode, tensorValueInfo } from '../../src/onnx/builder.js';
import { Graph } from '../../src/onnx/graph.js';
import { toNumbers } from '../../src/onnx/tensor.js';

function diamond() {
  // x -> a = Relu(x); b = Neg(x); c = Add(a, b); y = Mul(c, w) with w an initializer; k a Constant
  const b = new GraphBuilder(17, 't');
  const w = b.constF32([2], [1], 'w');
  const nodes = [
    makeNode('Relu', ['x'], ['a'], {}, 'relu'),
    makeNode('Neg', ['x'], ['b'], {}, 'neg'),
    makeNode('Add', ['a', 'b'], ['c'], {}, 'add'),
    makeNode('Constant', [], ['k'], { value_ints: [3, 4] }, 'const'),
    makeNode('Mul', ['c', w], ['y'], {}, 'mul'),
  ];
  const f = DataType.FLOAT;
  return makeModel({ opset: 17, graph: makeGraph('g', nodes, [tensorValueInfo('x', f, ['batch', 4])], [tensorValueInfo('y', f, ['batch', 4])], b.initializers) });
}

describe('Graph', () => {
  it('producers, consumers, initializers, constants and value info', () => {
    const g = new Graph(diamond());
    expect(g.opset).toBe(17);
    expect(g.inputNames).toEqual(['x']);
    expect(g.producerOf('c')!.name).toBe('add');
    expect(g.consumersOf('x').map((n) => n.name).sort()).toEqual(['neg', 'relu']);
    expect(g.isConstant('t/w')).toBe(true);
    expect(toNumbers(g.constantValue('k')!)).toEqual([3, 4]);
    expect(g.constantValue('a')).toBeUndefined();
    expect(g.shapeOf('x')).toEqual({ dataType: DataType.FLOAT, dims: ['batch', 4] });
    expect(g.shapeOf('t/w')).toEqual({ dataType: DataType.FLOAT, dims: [1] });
  });

  it('topological order of a reversed node list puts every producer before its consumers', () => {
    const m = diamond();
    const reversed = create(ModelProtoSchema, { ...m, graph: create(GraphProtoSchema, { ...m.graph!, node: [...m.graph!.node].reverse() }) });
    const order = new Graph(reversed).topologicalOrder();
    const pos = new Map(order.map((n, i) => [n.name, i]));
    expect(order).toHaveLength(5);
    expect(pos.get('relu')!).toBeLessThan(pos.get('add')!);
    expect(pos.get('neg')!).toBeLessThan(pos.get('add')!);
    expect(pos.get('add')!).toBeLessThan(pos.get('mul')!);
  });

  it('ancestors and descendants', () => {
    const g = new Graph(diamond());
    expect([...g.ancestors(['c'])].sort()).toEqual(['a', 'b', 'c', 'x']);
    expect([...g.ancestors(['c'], new Set(['a']))].sort()).toEqual(['a', 'b', 'c', 'x']);
    expect([...g.descendants(['b'])].sort()).toEqual(['b', 'c', 'y']);
  });

  it('a cycle is reported, not looped on', () => {
    const nodes = [makeNode('Relu', ['q'], ['p']), makeNode('Relu', ['p'], ['q'])];
    const m = makeModel({ opset: 17, graph: makeGraph('g', nodes, [], [tensorValueInfo('p', DataType.FLOAT)]) });
    expect(() => new Graph(m).topologicalOrder()).toThrow(/cycle/);
  });
});
