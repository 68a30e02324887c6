// Model facts: parameter counts against the known sizes of the models (a hand-built linear
// classifier, the synthetic ViT's weight list, vit-mnist's 139,018 = the sum of its torch
// parameters), ops histograms, precision of float16 / int8 QDQ / integer-kernel models, bytes with
// external data; and the classifier interface read from any graph.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSizes, modelFacts } from '../../src/onnx/facts.js';
import { describeClassifier } from '../../src/onnx/classifier.js';
import { loadModel } from '../../src/onnx/model.js';
import { DataType } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { buildSyntheticVit, synthWeightSpecs } from '../../src/vit/synth.js';
import { linearClassifier } from '../helpers/classifiers.js';
import { withFloat16Weights, withInt8QdqWeights } from '../helpers/precision.js';

const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(ROOT, 'fixtures/models');
const VIT_MNIST = path.resolve(ROOT, '../shared/models/vit-mnist.onnx');
const LIN = { W: [[1, 0], [0, 1], [1, 1], [0, 0]], b: [0, 1] };

describe('modelFacts', () => {
  it('a linear classifier: 4x2 weights + 2 biases, its four ops, float32', () => {
    const f = modelFacts(linearClassifier(LIN));
    expect(f.parameters).toBe(10);
    expect(f.parametersByType).toEqual({ float32: 10 });
    expect(f.precision).toBe('float32');
    expect(f.ops).toEqual({ Add: 1, Flatten: 1, Identity: 1, MatMul: 1 });
    expect(f.nodes).toBe(4);
    expect(f.opset).toBe(17);
    expect(f.producer).toBe('vitpath');
  });

  it('float16 weights and I/O are float16', () => {
    const f = modelFacts(linearClassifier({ ...LIN, type: 'float16' }));
    expect(f.parametersByType).toEqual({ float16: 10 });
    expect(f.precision).toBe('float16');
  });

  it('a synthetic ViT counts every weight of its weight list; float16 and int8 QDQ copies count the same', () => {
    const sv = buildSyntheticVit({ depth: 2, width: 32, ffn: 64 });
    const want = synthWeightSpecs(sv.config).reduce((s, w) => s + w.dims.reduce((a, b) => a * b, 1), 0);
    const f32 = modelFacts(sv.model);
    expect(f32.parameters).toBe(want);
    expect(f32.precision).toBe('float32');
    const f16 = modelFacts(withFloat16Weights(sv.model));
    expect(f16.parameters).toBe(want);
    expect(f16.parametersByType).toEqual({ float16: want });
    expect(f16.precision).toBe('float16');
    expect(f16.ops.Cast).toBe((f32.ops.Cast ?? 0) + sv.model.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT).length);
    const q = modelFacts(withInt8QdqWeights(sv.model));
    expect(q.parameters).toBe(want); // scales and zero points are not parameters
    const rank2 = sv.model.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT && t.dims.length === 2);
    const int8 = rank2.reduce((s, t) => s + Number(t.dims[0]) * Number(t.dims[1]), 0);
    expect(q.parametersByType).toEqual({ float32: want - int8, int8 });
    expect(q.precision).toBe('int8-qdq');
    expect(q.ops.DequantizeLinear).toBe(rank2.length);
  });

  it('integer-kernel (QOperator) models are int8-qoperator', () => {
    const g = new GraphBuilder(13, 'q');
    const w = g.initializer('w', Int8Array.from([1, 2, 3, 4]), [2, 2], DataType.INT8);
    const zp = g.initializer('zp', Int8Array.of(0), [], DataType.INT8);
    g.op('MatMulInteger', ['x', w, zp, zp], {}, 'y');
    const m = makeModel({ graph: makeGraph('g', g.nodes, [tensorValueInfo('x', DataType.INT8, [1, 2])], [tensorValueInfo('y', DataType.INT32, [1, 2])], g.initializers), opset: 13 });
    const f = modelFacts(m);
    expect(f.precision).toBe('int8-qoperator');
    expect(f.parameters).toBe(4); // the zero point is not a parameter
  });

  it('counts the nodes of subgraphs', () => {
    const then = makeGraph('then', [new GraphBuilder(13, 't').nodes].flat(), [], [tensorValueInfo('a', DataType.FLOAT, [1])]);
    const tb = new GraphBuilder(13, 't');
    tb.op('Identity', ['x'], {}, 'a');
    then.node.push(...tb.nodes);
    const g = new GraphBuilder(13, 'm');
    g.node('If', ['c'], { then_branch: then, else_branch: then }, ['y']);
    const m = makeModel({ graph: makeGraph('g', g.nodes, [tensorValueInfo('c', DataType.BOOL, []), tensorValueInfo('x', DataType.FLOAT, [1])], [tensorValueInfo('y', DataType.FLOAT, [1])]), opset: 13 });
    expect(modelFacts(m).ops).toEqual({ Identity: 2, If: 1 });
  });

  it.skipIf(!fs.existsSync(VIT_MNIST))('vit-mnist: 139,018 parameters (the torch count: conv 3,200 + class token 64 + positions 1,088 + 4 blocks x 33,472 + norm 128 + head 650)', () => {
    const f = modelFacts(loadModel(VIT_MNIST).proto);
    expect(f.parameters).toBe(3200 + 64 + 1088 + 4 * 33472 + 128 + 650);
    expect(f.precision).toBe('float32');
    expect(f.opset).toBe(18);
    expect(f.producer).toMatch(/^pytorch /);
    expect(f.ops.LayerNormalization).toBe(9);
  });
});

describe('fileSizes', () => {
  it('adds the external data file of a model that has one', () => {
    const file = path.join(FIXTURES, 'gelu20-external.onnx');
    const loaded = loadModel(file);
    const s = fileSizes(loaded.path, loaded.externalFiles);
    expect(s.externalFiles).toEqual(['gelu20-external.data']);
    expect(s.modelBytes).toBe(fs.statSync(file).size);
    expect(s.externalBytes).toBe(fs.statSync(path.join(FIXTURES, 'gelu20-external.data')).size);
    expect(s.totalBytes).toBe(s.modelBytes + s.externalBytes);
  });
});

describe('describeClassifier', () => {
  it('reads a ViT fixture: input [batch, 1, 28, 28] float32, logits output', () => {
    const io = describeClassifier(loadModel(path.join(FIXTURES, 'erf-ln-matmul.onnx')).proto, { label: 'm' });
    expect(io).toEqual({ input: 'input', inputDims: ['batch', 1, 28, 28], inputType: 'float32', batch: 'dynamic', output: 'logits', outputType: 'float32', scores: 'logits' });
  });
  it('reads a fixed batch size', () => {
    expect(describeClassifier(loadModel(path.join(FIXTURES, 'fixed-batch1-attn.onnx')).proto, { label: 'm' }).batch).toBe(1);
  });
  it('needs --output when several outputs could hold the scores, and checks the name', () => {
    const m = loadModel(path.join(FIXTURES, 'fixed-batch1-attn.onnx')).proto;
    const outs = m.graph!.output.map((o) => o.name);
    expect(outs.length).toBeGreaterThan(1);
    const io = describeClassifier(m, { label: 'm' });
    expect(outs).toContain(io.output); // the only rank-2 output
    expect(() => describeClassifier(m, { label: 'm', output: 'nope' })).toThrow(/--output nope is not an output/);
  });
  it('refuses a model with two inputs or a non-image input (exit 3)', () => {
    const g = new GraphBuilder(13, 'x');
    g.op('Add', ['a', 'b'], {}, 'y');
    const two = makeModel({ graph: makeGraph('g', g.nodes, [tensorValueInfo('a', DataType.FLOAT, [1, 2]), tensorValueInfo('b', DataType.FLOAT, [1, 2])], [tensorValueInfo('y', DataType.FLOAT, [1, 2])]), opset: 13 });
    expect(() => describeClassifier(two, { label: 'two.onnx' })).toThrow(/two\.onnx: the model has 2 inputs/);
    const h = new GraphBuilder(13, 'x');
    h.op('Identity', ['a'], {}, 'y');
    const flat = makeModel({ graph: makeGraph('g', h.nodes, [tensorValueInfo('a', DataType.FLOAT, ['N', 784])], [tensorValueInfo('y', DataType.FLOAT, ['N', 784])]), opset: 13 });
    try {
      describeClassifier(flat, { label: 'flat.onnx' });
      expect.unreachable();
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(3);
      expect(String(e)).toMatch(/input a has 2 dimensions/);
    }
  });
});
