// The conformance harness itself, on hand-made test folders laid out like ONNX's (model.onnx +
// test_data_set_0/*.pb), so it runs without libonnx-testdata: correct rules pass, a deliberately
// wrong rule fails, kinks and shape jumps are handled, refusals are named, I/O catches a bad digest.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AttrType, DataType, toBinary, TensorProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { encodeModel } from '../../src/onnx/model.js';
import { hostToTensor, tensorToHost, type HostTensor } from '../../src/onnx/tensor.js';
import { registerRule, ruleFor, supportedOps } from '../../src/onnx/autodiff/registry.js';
import '../../src/onnx/autodiff/backward.js';
import { createSession } from '../../src/runtime/session.js';
import { checkAutodiff } from '../../scripts/conformance/autodiff.js';
import { checkIo, decodedDigest } from '../../scripts/conformance/io.js';
import { checkFolding } from '../../scripts/conformance/fold.js';
import { foldShapes } from '../../src/onnx/rewrite/foldShapes.js';
import { retypeFloats } from '../../scripts/conformance/precision.js';
import { RULE_FAMILIES, parseOpCounts, renderResults } from '../../scripts/conformance/results.js';
import { opLabel, snakeOp, type TestCase } from '../../scripts/conformance/suite.js';
import type { GradRule } from '../../src/onnx/autodiff/types.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-conf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const f32 = (dims: number[], values: number[]): HostTensor => ({ dataType: DataType.FLOAT, dims, data: Float32Array.from(values) });

/** Write a test folder like ONNX's: the model, its inputs, and the outputs ONNX Runtime computes. */
async function writeCase(name: string, model: ModelProto, inputs: HostTensor[]): Promise<TestCase> {
  const dir = path.join(tmp, name);
  const set = path.join(dir, 'test_data_set_0');
  fs.mkdirSync(set, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), encodeModel(model));
  const names = model.graph!.input.map((v) => v.name);
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  const out = await s.run(Object.fromEntries(inputs.map((t, i) => [names[i]!, { data: t.data as Float32Array, dims: t.dims }])));
  await s.release();
  const write = (file: string, t: HostTensor, n: string) => fs.writeFileSync(path.join(set, file), toBinary(TensorProtoSchema, hostToTensor(n, t.data, t.dims, t.dataType)));
  inputs.forEach((t, i) => write(`input_${i}.pb`, t, names[i]!));
  model.graph!.output.forEach((o, i) => {
    const y = out[o.name]!;
    write(`output_${i}.pb`, { dataType: y.type === 'int64' ? DataType.INT64 : DataType.FLOAT, dims: y.dims, data: y.data as Float32Array }, o.name);
  });
  return {
    suite: 'node',
    name,
    dir,
    model: path.join(dir, 'model.onnx'),
    inputs: inputs.map((_, i) => path.join(set, `input_${i}.pb`)),
    outputs: model.graph!.output.map((_, i) => path.join(set, `output_${i}.pb`)),
  };
}

/** A one-node float32 model: op(inputs) -> y, with the given attributes. */
function oneNode(op: string, inputs: [string, number[]][], outDims: number[], attrs: Record<string, number> = {}, opset = 17, outputs: [string, number[]][] = [['y', outDims]]): ModelProto {
  const b = new GraphBuilder(opset, 't');
  b.node(op, inputs.map(([n]) => n), attrs, outputs.map(([o]) => o));
  return makeModel({
    opset,
    graph: makeGraph(
      'g',
      b.nodes,
      inputs.map(([n, d]) => tensorValueInfo(n, DataType.FLOAT, d)),
      outputs.map(([o, d]) => tensorValueInfo(o, DataType.FLOAT, d)),
    ),
  });
}

/** Run `f` with the rule for `op` replaced, then restore it. */
async function withRule<T>(op: string, rule: GradRule, f: () => Promise<T>): Promise<T> {
  const original = ruleFor(op)!;
  registerRule(op, rule);
  try {
    return await f();
  } finally {
    registerRule(op, original);
  }
}

describe('conformance harness', () => {
  it('RULE_FAMILIES lists every op the gradient registry has, once', () => {
    const listed = Object.values(RULE_FAMILIES).flat();
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual(supportedOps());
  });

  it('names the op a test exercises', () => {
    expect(snakeOp('LayerNormalization')).toBe('layer_normalization');
    expect(snakeOp('ReduceLogSumExp')).toBe('reduce_log_sum_exp');
    const c = (name: string): TestCase => ({ suite: 'node', name, dir: '', model: '', inputs: [], outputs: [] });
    const single = new Set(['Softmax', 'LogSoftmax', 'LayerNormalization', 'Celu']);
    expect(opLabel(c('test_softmax_axis_0'), ['Softmax'], single)).toBe('Softmax');
    expect(opLabel(c('test_logsoftmax_axis_0_expanded'), ['Exp', 'Sub'], single)).toBe('LogSoftmax (expanded)');
    expect(opLabel(c('test_layer_normalization_4d_axis0_expanded'), ['Mul', 'Sub'], single)).toBe('LayerNormalization (expanded)');
    expect(opLabel(c('test_mvn_expanded'), ['Mul', 'Sub'], single)).toBe('MeanVarianceNormalization (expanded)');
    expect(opLabel(c('test_sce_mean_3d_expanded'), ['LogSoftmax', 'Reshape'], single)).toBe('SoftmaxCrossEntropyLoss (expanded)');
    expect(opLabel(c('test_windowless_thing_expanded'), ['Mul', 'Cos'], single)).toBe('windowless_thing (expanded)');
    expect(opLabel({ ...c('test_GLU'), suite: 'pytorch-converted' }, ['Mul'], single)).toBe('pytorch-converted');
    expect(opLabel({ ...c('test_single_relu_model'), suite: 'simple' }, ['Relu'], single)).toBe('Relu');
  });

  it('re-types float tensors to float64: value infos, initializers, Constant value_float, Cast targets, LayerNorm stash type', () => {
    const b = new GraphBuilder(17, 't');
    const k = b.op('Constant', [], { value_float: { float: 0.5 } });
    const c = b.op('Cast', ['x'], { to: DataType.FLOAT });
    const w = b.constF32([1, 2], [2]);
    const y = b.op('Mul', [b.op('Mul', [c, k]), w]);
    b.op('LayerNormalization', [y, w], {}, 'ln');
    const m = makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [2])], [tensorValueInfo('ln', DataType.FLOAT, [2])], b.initializers) });
    const r = retypeFloats(m, DataType.DOUBLE);
    const g = r.graph!;
    const elem = (v: (typeof g.input)[number]) => (v.type!.value.value as { elemType: number }).elemType;
    expect(elem(g.input[0]!)).toBe(DataType.DOUBLE);
    expect(elem(g.output[0]!)).toBe(DataType.DOUBLE);
    expect(tensorToHost(g.initializer[0]!).data).toEqual(Float64Array.of(1, 2));
    const constant = g.node.find((n) => n.opType === 'Constant')!;
    expect(constant.attribute[0]!.name).toBe('value');
    expect(tensorToHost(constant.attribute[0]!.t!).data).toEqual(Float64Array.of(0.5));
    expect(Number(g.node.find((n) => n.opType === 'Cast')!.attribute[0]!.i)).toBe(DataType.DOUBLE);
    const stash = g.node.find((n) => n.opType === 'LayerNormalization')!.attribute.find((a) => a.name === 'stash_type')!;
    expect([stash.type, Number(stash.i)]).toEqual([AttrType.INT, DataType.DOUBLE]);
    // The input model is untouched.
    expect(m.graph!.initializer[0]!.dataType).toBe(DataType.FLOAT);
  });

  it('autodiff: a correct rule passes in float64; a wrong one fails', async () => {
    const c = await writeCase('test_neg_h', oneNode('Neg', [['x', [2, 3]]], [2, 3]), [f32([2, 3], [0.5, -1.25, 2, 3.5, -0.75, 1])]);
    const ok = await checkAutodiff(c, 'Neg');
    expect(ok).toMatchObject({ outcome: 'pass', precision: 'float64' });
    expect(ok!.maxRelErr!).toBeLessThan(1e-6);
    const bad = await withRule('Neg', (ctx) => [ctx.gy[0]], () => checkAutodiff(c, 'Neg'));
    expect(bad).toMatchObject({ outcome: 'fail', precision: 'float64' });
    expect(bad!.detail).toMatch(/gradient differs from finite differences/);
  });

  it('autodiff: at a kink the gradient must lie between the one-sided slopes', async () => {
    const c = await writeCase('test_relu_h', oneNode('Relu', [['x', [4]]], [4]), [f32([4], [-1, 0, 0.5, 2])]);
    const ok = await checkAutodiff(c, 'Relu');
    expect(ok).toMatchObject({ outcome: 'pass', kinks: 1 });
    // Slope 2 where x > 0 is simply wrong; slope 0.5 at every x <= 0 is wrong at x = -1 (not a kink).
    const scaled = (k: number): GradRule => (ctx) => {
      const b = ctx.b;
      const x = ctx.node.input[0]!;
      const pos = b.op('Cast', [b.op('Greater', [x, b.constFloat(ctx.facts(x).dataType, [0], [])])], { to: ctx.facts(x).dataType });
      const slope = b.op('Add', [b.op('Mul', [pos, b.constFloat(ctx.facts(x).dataType, [k - 0.5], [])]), b.constFloat(ctx.facts(x).dataType, [0.5], [])]);
      return [b.op('Mul', [ctx.gy[0]!, slope])];
    };
    expect(await withRule('Relu', scaled(2), () => checkAutodiff(c, 'Relu'))).toMatchObject({ outcome: 'fail' });
  });

  it('autodiff: Range with float inputs, at a size boundary (one-sided differences); the old zero rule fails', async () => {
    const b = new GraphBuilder(11, 't');
    b.op('Range', ['start', 'limit', 'delta'], {}, 'y');
    const m = makeModel({ opset: 11, graph: makeGraph('g', b.nodes, ['start', 'limit', 'delta'].map((n) => tensorValueInfo(n, DataType.FLOAT, [])), [tensorValueInfo('y', DataType.FLOAT, [2])]) });
    // (5 - 1) / 2 = 2 exactly: lowering start or delta, or raising limit, makes the output longer.
    const c = await writeCase('test_range_h', m, [f32([], [1]), f32([], [5]), f32([], [2])]);
    expect(await checkAutodiff(c, 'Range')).toMatchObject({ outcome: 'pass', precision: 'float64' });
    const zero = await withRule('Range', (ctx) => ctx.node.input.map(() => undefined), () => checkAutodiff(c, 'Range'));
    expect(zero).toMatchObject({ outcome: 'fail' });
  });

  it('autodiff: a rule that refuses (exit 3) is a named refusal', async () => {
    const c = await writeCase(
      'test_bn_training_h',
      oneNode('BatchNormalization', [['x', [2, 2]], ['s', [2]], ['b', [2]], ['m', [2]], ['v', [2]]], [2, 2], { training_mode: 1 }, 15, [
        ['y', [2, 2]],
        ['rm', [2]],
        ['rv', [2]],
      ]),
      [f32([2, 2], [1, 2, 3, 5]), f32([2], [1, 1]), f32([2], [0, 0]), f32([2], [0, 0]), f32([2], [1, 1])],
    );
    const r = await checkAutodiff(c, 'BatchNormalization');
    expect(r).toMatchObject({ outcome: 'refused' });
    expect(r!.detail).toMatch(/training mode/);
  });

  it('I/O: passes on a faithful test, fails when the reference digest disagrees', async () => {
    const c = await writeCase('test_neg_io_h', oneNode('Neg', [['x', [3]]], [3]), [f32([3], [1, 2, 3])]);
    const good = decodedDigest([f32([3], [1, 2, 3]), f32([3], [-1, -2, -3])]);
    expect(await checkIo(c, 'Neg', { source: 't', cases: new Map([['node/test_neg_io_h', good]]) })).toMatchObject({ outcome: 'pass' });
    const r = await checkIo(c, 'Neg', { source: 't', cases: new Map([['node/test_neg_io_h', '0000000000000000']]) });
    expect(r).toMatchObject({ outcome: 'fail' });
    expect(r.detail).toMatch(/differs from onnx.numpy_helper/);
  });

  it('folding: the identity folder passes; folders that bake a wrong shape fail, with declared and with symbolic dims', async () => {
    const b = new GraphBuilder(17, 't');
    b.op('Shape', ['x'], {}, 's');
    const m = makeModel({ opset: 17, graph: makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, [2, 3])], [tensorValueInfo('s', DataType.INT64, [2])]) });
    const c = await writeCase('test_shape_h', m, [f32([2, 3], [1, 2, 3, 4, 5, 6])]);
    expect(await checkFolding(c, 'Shape', (model) => ({ model }))).toMatchObject({ outcome: 'pass', nodes: [2, 2] });
    // A "folder" that replaces Shape(x) by the wrong constant.
    const wrong = (model: ModelProto) => {
      const g = model.graph!;
      const shapeNode = g.node.find((n) => n.opType === 'Shape')!;
      const cb = new GraphBuilder(17, 'w');
      cb.initializer(shapeNode.output[0]!, BigInt64Array.of(3n, 2n), [2]);
      return { model: { ...model, graph: { ...g, node: g.node.filter((n) => n !== shapeNode), initializer: [...g.initializer, ...cb.initializers] } } as ModelProto, removed: 1 };
    };
    expect(await checkFolding(c, 'Shape', wrong)).toMatchObject({ outcome: 'fail', nodes: [2, 1] });
    // With the leading dim declared symbolic, vitpath's folder keeps N computed (from the input) and is right at N = 2;
    // a folder that bakes N = 1 is caught.
    expect(await checkFolding(c, 'Shape', (model) => foldShapes(model), 'symbolic')).toMatchObject({ outcome: 'pass', name: 'test_shape_h [symbolic N]' });
    const bakesOne = (model: ModelProto) => {
      const g = model.graph!;
      const shapeNode = g.node.find((n) => n.opType === 'Shape')!;
      const cb = new GraphBuilder(17, 'w');
      cb.initializer(shapeNode.output[0]!, BigInt64Array.of(1n, 3n), [2]);
      return { model: { ...model, graph: { ...g, node: g.node.filter((n) => n !== shapeNode), initializer: [...g.initializer, ...cb.initializers] } } as ModelProto };
    };
    expect(await checkFolding(c, 'Shape', bakesOne, 'symbolic')).toMatchObject({ outcome: 'fail' });
  });

  it('renders RESULTS.md tables that parse back to the same counts', () => {
    const r = (op: string, outcome: 'pass' | 'refused' | 'fail' | 'oracle') => ({ suite: 'node', name: `t_${op}_${outcome}`, op, outcome, detail: 'x | y', precision: 'float64' as const, maxRelErr: 1e-9 });
    const autodiff = [r('Add', 'pass'), r('Add', 'pass'), r('Add', 'refused'), r('Softmax (expanded)', 'fail')];
    const md = renderResults({ about: [], autodiff, meta: { data: 'd', ort: 'o', maxElems: 3 } });
    expect(Object.fromEntries(parseOpCounts(md, 'Autodiff by op'))).toEqual({
      Add: { cases: 3, pass: 2, refused: 1, fail: 0, oracle: 0 },
      'Softmax (expanded)': { cases: 1, pass: 0, refused: 0, fail: 1, oracle: 0 },
    });
    expect(md).toContain('| autodiff | node/t_Softmax (expanded)_fail | x \\| y |');
  });
});
