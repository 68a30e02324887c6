// The graph editor: names, node placement, rewiring, initializer and constant edits, dead-code
// removal and proto2 defaults; the numeric cases run the edited model in ONNX Runtime and compare
// with the same computation done by hand in TypeScript.
import { describe, expect, it } from 'vitest';
import { DataType, ModelProtoSchema, NodeProtoSchema, create, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, makeNode, tensorValueInfo } from '../../src/onnx/builder.js';
import { copyMessage, edited, GraphEditor, sliceAlong } from '../../src/onnx/edit.js';
import { encodeModel } from '../../src/onnx/model.js';
import { hostToTensor, tensorToHost } from '../../src/onnx/tensor.js';
import { createSession } from '../../src/runtime/session.js';

const F = DataType.FLOAT;
const X = Float32Array.from([1, -2, 3, 0.5, -1.5, 2]); // [2,3]
const W = Float32Array.from([0.5, -1, 2, 0.25, -0.75, 1.5, 3, -2, 0.125, 1, -0.5, 4]); // [3,4]

/** y = (x @ w) * k with k a Constant [4]; z = Relu(x); 'dead' = Neg(x) read by nobody. */
function tiny(): ModelProto {
  const nodes = [
    makeNode('MatMul', ['x', 'w'], ['xw'], {}, 'mm'),
    makeNode('Constant', [], ['k'], { value: hostToTensor('', Float32Array.from([1, 2, 3, 4]), [4]) }, 'kconst'),
    makeNode('Mul', ['xw', 'k'], ['y'], {}, 'mul'),
    makeNode('Relu', ['x'], ['z'], {}, 'relu'),
    makeNode('Neg', ['x'], ['dead'], {}, 'neg'),
  ];
  const graph = makeGraph('g', nodes, [tensorValueInfo('x', F, ['n', 3])], [tensorValueInfo('y', F, ['n', 4]), tensorValueInfo('z', F, ['n', 3])], [hostToTensor('w', W, [3, 4])]);
  graph.valueInfo.push(tensorValueInfo('vp/taken', F, [1]));
  return makeModel({ opset: 17, graph });
}

async function run(m: ModelProto, x = X, dims = [2, 3]): Promise<Record<string, Float32Array>> {
  const s = await createSession(encodeModel(m), { provider: 'cpu', threads: 1 });
  const out = await s.run({ x: { data: x, dims } });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

/** x [n,k] @ w [k,m] in float64, rounded to float32 at the end (what a float32 MatMul gives to ~1e-6). */
function matmul(x: Float32Array, w: Float32Array, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let t = 0; t < k; t++) out[i * m + j]! += x[i * k + t]! * w[t * m + j]!;
  return out;
}

describe('copyMessage and edited', () => {
  it('keep proto2 defaults readable, unlike create() of a spread message', () => {
    const n = create(NodeProtoSchema, { opType: 'Relu', input: ['a'], output: ['b'] });
    expect(n.domain).toBe('');
    const spread = create(NodeProtoSchema, { ...n, input: ['c'] });
    expect(spread.domain).toBeUndefined(); // the pitfall
    const e = edited(n, { input: ['c'] });
    expect(e.domain).toBe('');
    expect(e.input).toEqual(['c']);
    expect(n.input).toEqual(['a']);
    const m = makeModel({ opset: 17, graph: makeGraph('g', [], [], []) });
    const c = copyMessage(ModelProtoSchema, m, {});
    expect(c.domain).toBe('');
    expect(c.modelVersion).toBe(0n);
  });
});

describe('GraphEditor', () => {
  it('hands out names used nowhere in the graph (node names, value_info, outputs) and shares them between builders', () => {
    const ed = new GraphEditor(tiny());
    for (const used of ['x', 'w', 'xw', 'y', 'z', 'dead', 'mm', 'kconst', 'vp/taken']) expect(ed.names.has(used)).toBe(true);
    const a = ed.builder('vp');
    const b = ed.builder('vp');
    expect(a.fresh('taken')).toBe('vp/taken_1');
    expect(b.fresh('taken')).toBe('vp/taken_2');
    expect(ed.freshName('mm')).toBe('mm_1');
    expect(ed.freshName('mm')).toBe('mm_2');
  });

  it('builders drawing from one editor never repeat a name', () => {
    const ed = new GraphEditor(tiny());
    const a = ed.builder('p');
    const b = ed.builder('p');
    const names = [a.fresh('t'), b.fresh('t'), a.fresh('t'), b.fresh('t')];
    expect(new Set(names).size).toBe(4);
  });

  it('places nodes first, before a node, after a producer (by output order, then call order), after inserted producers, and last', () => {
    const m = tiny();
    const ed = new GraphEditor(m);
    const g = ed.graph;
    const mk = (name: string, input: string, output: string) => makeNode('Identity', [input], [output], {}, name);
    ed.append([mk('last', 'y', 'y_last')]);
    ed.insertAfter('xw', [mk('after_xw_1', 'xw', 'a1')]);
    ed.insertAfter('a1', [mk('after_a1', 'a1', 'a2')]); // produced by an inserted node
    ed.insertAfter('xw', [mk('after_xw_2', 'xw', 'a3')]);
    ed.insertAfter('x', [mk('after_input', 'x', 'x1')]); // a graph input: first
    ed.insertAfter('w', [mk('after_init', 'w', 'w1')]); // an initializer: first
    ed.insertBefore(g.producerOf('z')!, [mk('before_relu', 'x', 'b1')]);
    ed.prepend([mk('first', 'x', 'f1')]);
    expect(ed.nodes().map((n) => n.name)).toEqual([
      'after_input', 'after_init', 'first', 'mm', 'after_xw_1', 'after_a1', 'after_xw_2', 'kconst', 'mul', 'before_relu', 'relu', 'neg', 'last',
    ]);
    expect(m.graph!.node.map((n) => n.name)).toEqual(['mm', 'kconst', 'mul', 'relu', 'neg']); // the input model is unchanged
  });

  it('renames consumers of original nodes only; an edge insertion changes the result as computed by hand', async () => {
    const m = tiny();
    const ed = new GraphEditor(m);
    const b = ed.builder('edge');
    const doubled = b.op('Mul', ['xw', b.constF32([2], [])]);
    ed.insertOnEdge('xw', b.nodes, doubled);
    const nodes = ed.nodes();
    expect(nodes.find((n) => n.name === 'mul')!.input).toEqual([doubled, 'k']);
    expect(nodes.find((n) => n.opType === 'Mul' && n.name !== 'mul')!.input[0]).toBe('xw');
    const before = await run(m);
    const after = await run(ed.model());
    expect(Array.from(after.y!)).toEqual(Array.from(before.y!, (v) => v * 2));
    expect(Array.from(after.z!)).toEqual(Array.from(before.z!));
  });

  it('a QuantizeLinear/DequantizeLinear pair on a weight gives the dequantized weight product', async () => {
    const ed = new GraphEditor(tiny());
    const b = ed.builder('qdq');
    const scale = Math.fround(0.3);
    const sc = b.constF32([scale], []);
    const zp = b.initializer(b.fresh('zp'), Int8Array.of(0), [], DataType.INT8);
    const q = b.op('QuantizeLinear', ['w', sc, zp]);
    const dq = b.op('DequantizeLinear', [q, sc, zp]);
    ed.insertOnEdge('w', b.nodes, dq);
    ed.addOutputs([tensorValueInfo(dq, F, [3, 4])]);
    const edited = ed.model();
    const out = await run(edited);
    // float32 division, round half to even, saturate to int8, as QuantizeLinear does.
    const wq = Float32Array.from(W, (v) => {
      const r = Math.fround(v / scale);
      const f = Math.floor(r);
      const rounded = r - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(r);
      return Math.max(-128, Math.min(127, rounded)) * scale;
    });
    expect(Array.from(out[dq]!)).toEqual(Array.from(wq));
    const want = matmul(X, wq, 2, 3, 4).map((v, i) => v * [1, 2, 3, 4][i % 4]!);
    for (let i = 0; i < want.length; i++) expect(out.y![i]).toBeCloseTo(want[i]!, 4);
  });

  it('slices an initializer along an axis (a pruned MatMul equals the kept columns of the full one)', async () => {
    const m = tiny();
    const ed = new GraphEditor(m);
    const keep = [3, 0];
    expect(ed.sliceInitializer('w', 1, keep)).toEqual([3, 2]);
    ed.setConstant('k', { dataType: F, dims: [2], data: Float32Array.from([1, 1]) });
    const full = await run(m);
    const pruned = await run(ed.model());
    const ref = matmul(X, W, 2, 3, 4);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) expect(pruned.y![i * 2 + j]).toBeCloseTo(ref[i * 4 + keep[j]!]!, 5);
    expect(full.y!.length).toBe(8);
    const rows = sliceAlong({ dataType: F, dims: [3, 4], data: W }, 0, [2]);
    expect(Array.from(rows.data as Float32Array)).toEqual(Array.from(W.subarray(8, 12)));
  });

  it('sets a constant for every reader (initializer or Constant node) or forks it for one reader', async () => {
    const two: { dataType: DataType; dims: number[]; data: Float32Array } = { dataType: F, dims: [4], data: Float32Array.from([2, 2, 2, 2]) };
    // Constant node
    const a = new GraphEditor(tiny());
    a.setConstant('k', two);
    expect(Array.from(a.constantValue('k')!.data as Float32Array)).toEqual([2, 2, 2, 2]);
    const ya = (await run(a.model())).y!;
    const ref = matmul(X, W, 2, 3, 4);
    for (let i = 0; i < 8; i++) expect(ya[i]).toBeCloseTo(ref[i]! * 2, 5);
    // Fork: the initializer w read by a second MatMul keeps its value there.
    const m = tiny();
    m.graph!.node.push(makeNode('MatMul', ['x', 'w'], ['y2'], {}, 'mm2'));
    m.graph!.output.push(tensorValueInfo('y2', F, ['n', 4]));
    const b = new GraphEditor(m);
    const name = b.forkConstant(b.graph.producerOf('xw')!, 1, { dataType: F, dims: [3, 4], data: new Float32Array(12) });
    expect(name).toBe('w_1');
    const out = await run(b.model());
    expect(Array.from(out.y!)).toEqual(new Array(8).fill(0));
    for (let i = 0; i < 8; i++) expect(out.y2![i]).toBeCloseTo(ref[i]!, 5);
  });

  it('replaces and removes initializers; removes dead nodes (as far as allowed) and unused initializers', () => {
    const ed = new GraphEditor(tiny());
    ed.replaceInitializer(hostToTensor('w', new Float32Array(12).fill(1), [3, 4]));
    expect(Array.from(tensorToHost(ed.initializer('w')!).data as Float32Array)).toEqual(new Array(12).fill(1));
    expect(() => ed.replaceInitializer(hostToTensor('nope', new Float32Array(1), [1]))).toThrow(/no initializer "nope"/);
    expect(ed.removeDeadNodes((n) => n.opType !== 'Neg')).toBe(0);
    expect(ed.removeDeadNodes()).toBe(1);
    expect(ed.nodes().map((n) => n.name)).toEqual(['mm', 'kconst', 'mul', 'relu']);
    ed.addInitializers([hostToTensor('spare', new Float32Array(1), [1])]);
    ed.setOutputs([tensorValueInfo('z', F, ['n', 3])]);
    expect(ed.removeDeadNodes()).toBe(3); // mul, then mm and kconst
    expect(ed.removeUnusedInitializers().sort()).toEqual(['spare', 'w']);
    const out = ed.model();
    expect(out.graph!.node.map((n) => n.name)).toEqual(['relu']);
    expect(out.graph!.initializer).toEqual([]);
  });

  it('keeps what it does not change: graph fields, value_info, model fields and opsets', () => {
    const m = tiny();
    m.graph!.docString = 'doc';
    m.producerName = 'p';
    const ed = new GraphEditor(m);
    ed.addInputs([tensorValueInfo('extra', F, [1])]);
    ed.filterValueInfo((v) => v.name !== 'vp/taken');
    const out = ed.model({ graph: { name: 'renamed' } });
    expect(out.graph!.docString).toBe('doc');
    expect(out.graph!.name).toBe('renamed');
    expect(out.producerName).toBe('p');
    expect(out.opsetImport).toEqual(m.opsetImport);
    expect(out.graph!.input.map((v) => v.name)).toEqual(['x', 'extra']);
    expect(out.graph!.valueInfo).toEqual([]);
    expect(m.graph!.valueInfo.length).toBe(1);
    expect(out.graph!.node[0]!.domain).toBe('');
  });

  it('builders work at the model opset and their initializers join the model after explicit ones', () => {
    const ed = new GraphEditor(tiny());
    const b = ed.builder('b');
    expect(b).toBeInstanceOf(GraphBuilder);
    expect(b.opset).toBe(17);
    const c = b.constF32([1], [1], 'c');
    ed.addInitializers([hostToTensor('explicit', new Float32Array(1), [1])]);
    expect(ed.model().graph!.initializer.map((t) => t.name)).toEqual(['w', 'explicit', c]);
  });
});
