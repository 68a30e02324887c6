// The layout locator on every fixture, on a matrix of synthetic export styles (opsets 9..21), on the
// trained vit-mnist export, on renamed graphs (no dependence on names), and on non-transformers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { DataType, type ModelProto } from '../../src/onnx/proto.js';
import { clone, ModelProtoSchema } from '../../src/onnx/proto.js';
import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '../../src/onnx/builder.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { locateVit } from '../../src/vit/locate.js';
import { buildSyntheticVit, type SynthVitConfig } from '../../src/vit/synth.js';
import { expectLayoutMatches, type GroundTruth } from './expect-layout.js';

const FIXTURES = path.resolve(__dirname, '../../fixtures/models');
const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, GroundTruth>;
const VIT_MNIST = path.resolve(__dirname, '../../../shared/models/vit-mnist.onnx');

function locateError(model: ModelProto, opts: { output?: string } = {}): VitpathError {
  try {
    locateVit(model, { ...opts, label: 'm.onnx' });
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    return e as VitpathError;
  }
  throw new Error('locateVit did not throw');
}

describe('locateVit on the committed fixtures', () => {
  for (const [file, truth] of Object.entries(manifest)) {
    it(file, () => {
      const { proto } = loadModel(path.join(FIXTURES, file));
      expectLayoutMatches(locateVit(proto), truth);
    });
  }
});

describe('locateVit across export styles and opsets', () => {
  const small: Partial<SynthVitConfig> = { imageSize: 8, channels: 2, patch: 4, width: 12, depth: 3, heads: 3, ffn: 20, classes: 5 };
  const cases: Partial<SynthVitConfig>[] = [];
  for (let opset = 9; opset <= 21; opset++) {
    cases.push({ opset, gelu: opset >= 20 ? 'gelu-op' : opset % 2 ? 'erf' : 'tanh', norm: opset >= 17 ? 'layernorm' : 'decomposed', linear: opset % 3 ? 'matmul' : 'gemm', head: opset % 4 ? 'cls' : 'mean' });
  }
  for (const gelu of ['erf', 'tanh', 'relu'] as const)
    for (const norm of ['decomposed', 'batchnorm'] as const)
      for (const linear of ['matmul', 'gemm'] as const) cases.push({ opset: 13, gelu, norm, linear, batch: 1, extraOutputs: ['attention'] });
  cases.push({ opset: 18, heads: 1, width: 8, ffn: 8 }); // ffn == width; a single head is known only from the 1/sqrt(dh) scale
  cases.push({ opset: 17, imageSize: [8, 12], heads: 4, linear: 'gemm', head: 'mean', batch: 2 });
  for (const cfg of cases) {
    it(JSON.stringify(cfg), () => {
      const s = buildSyntheticVit({ ...small, ...cfg });
      const layout = locateVit(s.model);
      expectLayoutMatches(layout, s);
    });
  }
});

/** Rename every internal tensor and initializer to a shuffled meaningless name, clear node names. */
function scramble(model: ModelProto, seed: number): { model: ModelProto; map: Map<string, string> } {
  const m = clone(ModelProtoSchema, model);
  const g = m.graph!;
  const keep = new Set([...g.input.map((v) => v.name), ...g.output.map((v) => v.name)]);
  const names = new Set<string>();
  for (const t of g.initializer) names.add(t.name);
  for (const n of g.node) for (const x of [...n.input, ...n.output]) if (x) names.add(x);
  const list = [...names].filter((x) => !keep.has(x));
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const perm = list.map((_, i) => i).sort(() => rand() - 0.5);
  const map = new Map(list.map((x, i) => [x, `block.${perm[i]! % 7}.fc1.${perm[i]}`]));
  const r = (x: string) => map.get(x) ?? x;
  for (const t of g.initializer) t.name = r(t.name);
  for (const v of g.valueInfo) v.name = r(v.name);
  for (const n of g.node) {
    n.name = '';
    n.input = n.input.map(r);
    n.output = n.output.map(r);
  }
  return { model: m, map };
}

describe('locateVit does not read names', () => {
  for (const file of ['erf-ln-matmul.onnx', 'decomposed-gemm-tanh.onnx', 'fixed-batch1-attn.onnx']) {
    it(`${file} with misleading shuffled names`, () => {
      const { proto } = loadModel(path.join(FIXTURES, file));
      const truth = manifest[file]!;
      const { model, map } = scramble(proto, 7);
      const rename = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, map.get(v) ?? v]));
      expectLayoutMatches(locateVit(model), { ...truth, names: rename(truth.names), tensors: rename(truth.tensors) });
    });
  }
});

describe('locateVit on export variants made by graph surgery', () => {
  const base = { imageSize: 8, channels: 3, patch: 4, width: 12, depth: 2, heads: 3, ffn: 20, classes: 5, opset: 17 } as const;

  it('HF-style class-token pooling: Slice [:, 0:1] then Squeeze', () => {
    const s = buildSyntheticVit(base);
    const g = s.model.graph!;
    const gather = g.node.find((n) => n.opType === 'Gather' && n.output[0] === s.tensors.pooled)!;
    const b = new GraphBuilder(17, 'surgery');
    const sliced = b.slice(gather.input[0]!, [0], [1], [1]);
    b.node('Squeeze', [sliced, b.constI64([1])], {}, [s.tensors.pooled!]);
    g.node.splice(g.node.indexOf(gather), 1, ...b.nodes);
    g.initializer.push(...b.initializers);
    expectLayoutMatches(locateVit(s.model), s);
  });

  it('NHWC image input transposed before the patch Conv (Keras-style)', () => {
    const s = buildSyntheticVit({ ...base, imageSize: [8, 12] });
    const g = s.model.graph!;
    g.input[0] = tensorValueInfo('input', DataType.FLOAT, ['batch', 8, 12, 3]);
    const conv = g.node.find((n) => n.opType === 'Conv')!;
    conv.input[0] = 'input_nchw';
    const b = new GraphBuilder(17, 'surgery');
    b.node('Transpose', ['input'], { perm: [0, 3, 1, 2] }, ['input_nchw']);
    g.node.unshift(...b.nodes);
    const l = locateVit(s.model);
    expect(l.inputDims).toEqual(['batch', 8, 12, 3]);
    expect(l.facts).toMatchObject({ imageSize: [8, 12], channels: 3, numPatches: 6, tokens: 7 });
  });

  it("position embedding added before the class token is joined (timm's no_embed_class)", () => {
    for (const symbolic of [false, true]) {
      const s = buildSyntheticVit(base);
      const g = s.model.graph!;
      const cat = g.node.find((n) => n.opType === 'Concat' && n.attribute.some((a) => a.name === 'axis' && a.i === 1n))!;
      const add = g.node.find((n) => n.opType === 'Add' && n.input[0] === cat.output[0])!;
      const b = new GraphBuilder(17, 'surgery');
      const posP = b.constF32(new Array(4 * 12).fill(0.01), [1, 4, 12]);
      g.initializer.push(...b.initializers);
      const tokens = add.output[0]!;
      add.input = [cat.input[1]!, posP];
      add.output = ['patches_pos'];
      cat.input[1] = 'patches_pos';
      cat.output = [tokens];
      if (symbolic) g.input[0] = tensorValueInfo('input', DataType.FLOAT, ['batch', 3, 'h', 'w']);
      expect(locateVit(s.model).facts).toMatchObject({ imageSize: [8, 8], numPatches: 4, tokens: 5, pooling: 'cls' });
    }
  });

  it('a model that outputs probabilities (Softmax after the head) is refused with the reason', () => {
    const s = buildSyntheticVit(base);
    const g = s.model.graph!;
    g.node.find((n) => n.output[0] === 'logits')!.output[0] = 'raw';
    const b = new GraphBuilder(17, 'surgery');
    b.node('Softmax', ['raw'], { axis: -1 }, ['logits']);
    g.node.push(...b.nodes);
    const e = locateError(s.model);
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toContain('output logits holds class probabilities');
  });

  it('symbolic image size: taken from the position embedding and the patch stride', () => {
    const s = buildSyntheticVit(base);
    s.model.graph!.input[0] = tensorValueInfo('input', DataType.FLOAT, ['batch', 3, 'height', 'width']);
    const l = locateVit(s.model);
    expect(l.facts).toMatchObject({ imageSize: [8, 8], numPatches: 4, tokens: 5 });
  });
});

describe.skipIf(!fs.existsSync(VIT_MNIST))('locateVit on the trained vit-mnist export', () => {
  it('reports the documented architecture', () => {
    const { proto } = loadModel(VIT_MNIST);
    const l = locateVit(proto);
    expect(l.facts).toMatchObject({
      numBlocks: 4,
      width: 64,
      ffnWidth: 128,
      heads: 4,
      tokens: 17,
      numPatches: 16,
      patchSize: 7,
      imageSize: [28, 28],
      channels: 1,
      numClasses: 10,
      batch: 'dynamic',
      opset: 18,
      producer: 'pytorch',
      pooling: 'cls',
    });
    expect(l.input).toBe('input');
    expect(l.logits).toBe('logits');
    expect(l.classToken?.row).toBe(0);
    expect(l.finalNorm?.kind).toBe('layernorm');
    // The final norm sits after pooling in this export: the head reads the norm's output.
    expect(l.pooled).toBe(l.finalNorm?.output);
    expect(l.head).toMatchObject({ kind: 'gemm', transB: true, inFeatures: 64, outFeatures: 10 });
    const g = proto.graph!;
    const producer = (t: string) => g.node.find((n) => n.output.includes(t))!;
    for (const [i, b] of l.blocks.entries()) {
      expect(b.activation.kind).toBe('gelu-erf');
      expect(b.neuronLayout).toBe('btf');
      expect(b.attnNorm?.kind).toBe('layernorm');
      expect(b.mlpNorm?.kind).toBe('layernorm');
      expect([b.fc1.inFeatures, b.fc1.outFeatures, b.fc2.inFeatures, b.fc2.outFeatures]).toEqual([64, 128, 128, 64]);
      expect(producer(b.attnSoftmax).opType).toBe('Softmax');
      expect(producer(b.output).opType).toBe('Add');
      expect(producer(b.attnResidual).opType).toBe('Add');
      expect(producer(b.fc2.input)).toBe(producer(b.neuron));
      if (i > 0) expect(b.input).toBe(l.blocks[i - 1]!.output);
    }
    // The activation output feeds fc2's MatMul directly.
    expect(g.node.find((n) => n.opType === 'MatMul' && n.input[0] === l.blocks[0]!.neuron)).toBeDefined();
  });
});

describe('--output selection', () => {
  const { proto } = loadModel(path.join(FIXTURES, 'fixed-batch1-attn.onnx'));
  it('picks the [batch, classes] output even when listed second', () => {
    const l = locateVit(proto);
    expect(proto.graph!.output.map((o) => o.name)).toEqual(['attention', 'logits']);
    expect(l.logits).toBe('logits');
    expect(l.extraOutputs).toEqual(['attention']);
  });
  it('accepts --output logits and refuses an output that no head writes', () => {
    expect(locateVit(proto, { output: 'logits' }).logits).toBe('logits');
    const e = locateError(proto, { output: 'attention' });
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toMatch(/m\.onnx.*attention.*not written by a linear classifier head/);
  });
  it('refuses an output name the model does not have, listing the outputs', () => {
    const e = locateError(proto, { output: 'nope' });
    expect(e.exitCode).toBe(ExitCode.USAGE);
    expect(e.message).toContain('attention, logits');
  });
});

describe('malformed graphs exit 2', () => {
  it('a cycle', () => {
    const m = clone(ModelProtoSchema, loadModel(path.join(FIXTURES, 'erf-ln-matmul.onnx')).proto);
    const nodes = m.graph!.node;
    nodes[5]!.input[0] = nodes[nodes.length - 1]!.output[0]!;
    const e = locateError(m);
    expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
    expect(e.message).toMatch(/^m\.onnx: the graph is malformed/);
  });
});

describe('non-transformers exit 3 naming what was looked for and found', () => {
  const f32 = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.1);
  it('a plain MLP', () => {
    const b = new GraphBuilder(17);
    const w1 = b.initializer('w1', f32(784 * 32), [784, 32]);
    const w2 = b.initializer('w2', f32(32 * 10), [32, 10]);
    const h = b.op('Relu', [b.op('Add', [b.op('MatMul', ['x', w1]), b.constF32(Array.from(f32(32)), [32])])]);
    b.op('Add', [b.op('MatMul', [h, w2]), b.constF32(Array.from(f32(10)), [10])], {}, 'y');
    const m = makeModel({ graph: makeGraph('mlp', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['N', 784])], [tensorValueInfo('y', DataType.FLOAT, ['N', 10])], b.initializers), opset: 17 });
    const e = locateError(m);
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toMatch(/^m\.onnx: no Vision Transformer found: no feed-forward pair/);
    expect(e.message).toContain('Looked for transformer blocks');
    expect(e.message).toContain('2 linear layer(s) (784->32, 32->10)');
    expect(e.message).toContain('0 Softmax');
  });
  it('a small CNN', () => {
    const b = new GraphBuilder(13);
    const c = b.op('Relu', [b.op('Conv', ['img', b.initializer('k', f32(8 * 3 * 9), [8, 3, 3, 3])], { kernel_shape: [3, 3] })]);
    const p = b.op('Flatten', [b.op('GlobalAveragePool', [c])]);
    b.op('Gemm', [p, b.initializer('fc', f32(10 * 8), [10, 8])], { transB: 1 }, 'y');
    const m = makeModel({ graph: makeGraph('cnn', b.nodes, [tensorValueInfo('img', DataType.FLOAT, ['N', 3, 32, 32])], [tensorValueInfo('y', DataType.FLOAT, ['N', 10])], b.initializers), opset: 13 });
    const e = locateError(m);
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toContain('1 linear layer(s) (8->10)');
    expect(e.message).toContain('1 Conv');
    expect(e.message).toContain('1 Relu');
  });
  it('a residual MLP stack without attention', () => {
    const b = new GraphBuilder(17);
    let x = 'x';
    for (let i = 0; i < 2; i++) {
      const h = b.op('Relu', [b.op('MatMul', [x, b.initializer(`a${i}`, f32(16 * 32, i), [16, 32])])]);
      const y = b.op('MatMul', [h, b.initializer(`b${i}`, f32(32 * 16, i + 5), [32, 16])]);
      const z = b.op('Add', [x, b.op('Mul', [x, b.constF32([0.5], [])])]);
      x = b.op('Add', [z, y]);
    }
    b.op('MatMul', [x, b.initializer('head', f32(16 * 3), [16, 3])], {}, 'y');
    const m = makeModel({ graph: makeGraph('res', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['N', 16])], [tensorValueInfo('y', DataType.FLOAT, ['N', 3])], b.initializers), opset: 17 });
    const e = locateError(m);
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toContain('residual feed-forward block(s), but 2 of them has no Softmax');
  });
});
