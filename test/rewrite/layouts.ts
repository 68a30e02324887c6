// Hand-made ViTLayouts for tests of the rewrites and gradient engine: from the fixtures' ground-
// truth manifest, and for ../shared/models/vit-mnist.onnx by its tensor names. Only the fields the
// rewrites read are filled with care; the rest are placeholders.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BlockLayout, ViTLayout } from '../../src/vit/types.js';

export const FIXTURE_DIR = path.resolve(__dirname, '../../fixtures/models');
export const VIT_MNIST = path.resolve(__dirname, '../../../shared/models/vit-mnist.onnx');

interface ManifestEntry {
  config: { imageSize: number | [number, number]; channels: number; width: number; depth: number; heads: number; ffn: number; classes: number; opset: number; linear: 'matmul' | 'gemm'; batch: 'dynamic' | number; head: 'cls' | 'mean'; inputName: string };
  tokens: number;
  numPatches: number;
  tensors: Record<string, string>;
}

export function fixtureManifest(): Record<string, ManifestEntry> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'manifest.json'), 'utf8'));
}

function block(i: number, neuron: string, neuronLayout: 'btf' | 'flat', width: number, ffn: number): BlockLayout {
  const lin = (x: string) => ({ kind: 'matmul' as const, node: '', input: x, output: x, weight: '', inFeatures: width, outFeatures: ffn });
  return {
    index: i,
    input: '',
    attnResidual: '',
    output: '',
    attnBranch: '',
    attnSoftmax: '',
    mlpBranch: '',
    fc1: lin(''),
    activation: { kind: 'gelu-erf', input: '', output: neuron },
    neuron,
    neuronLayout,
    fc2: { ...lin(neuron), inFeatures: ffn, outFeatures: width },
  };
}

export function fixtureLayout(file: string): ViTLayout {
  const e = fixtureManifest()[file];
  if (!e) throw new Error(`no manifest entry for ${file}`);
  const c = e.config;
  const size = typeof c.imageSize === 'number' ? [c.imageSize, c.imageSize] : c.imageSize;
  const blocks = Array.from({ length: c.depth }, (_, i) => block(i, e.tensors[`block.${i}.neuron`]!, c.linear === 'gemm' ? 'flat' : 'btf', c.width, c.ffn));
  return {
    facts: {
      numBlocks: c.depth,
      width: c.width,
      ffnWidth: c.ffn,
      heads: c.heads,
      tokens: e.tokens,
      numPatches: e.numPatches,
      patchSize: null,
      imageSize: [size[0]!, size[1]!],
      channels: c.channels,
      numClasses: c.classes,
      batch: c.batch,
      opset: c.opset,
      irVersion: 0,
      producer: 'vitpath',
      pooling: c.head,
    },
    input: c.inputName,
    inputDims: [c.batch === 'dynamic' ? 'batch' : c.batch, c.channels, size[0]!, size[1]!],
    logits: 'logits',
    extraOutputs: [],
    patchEmbed: { node: '', weight: '', output: '' },
    classToken: c.head === 'cls' ? { initializer: '', row: 0 } : undefined,
    blocks,
    pooled: e.tensors.pooled!,
    head: { kind: 'matmul', node: '', input: '', output: 'logits', weight: '', inFeatures: c.width, outFeatures: c.classes },
    linears: [],
  };
}

/** vit-mnist: 4 blocks, width 64, FFN 128, 17 tokens (class token first), 10 classes. */
export function vitMnistLayout(): ViTLayout {
  const blocks = Array.from({ length: 4 }, (_, i) => block(i, `/transformer_blocks/transformer_blocks.${i}/mlp/mlp.1/Mul_1_output_0`, 'btf', 64, 128));
  for (const [i, b] of blocks.entries()) b.fc2.weight = ['onnx::MatMul_624', 'onnx::MatMul_631', 'onnx::MatMul_638', 'onnx::MatMul_645'][i]!;
  return {
    facts: {
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
      irVersion: 8,
      producer: 'pytorch',
      pooling: 'cls',
    },
    input: 'input',
    inputDims: ['batch', 1, 28, 28],
    logits: 'logits',
    extraOutputs: [],
    patchEmbed: { node: '', weight: '', output: '' },
    classToken: { initializer: 'cls_token', row: 0 },
    blocks,
    pooled: '/mlp_head/layer_norm/LayerNormalization_output_0',
    head: { kind: 'gemm', node: '', input: '', output: 'logits', weight: '', inFeatures: 64, outFeatures: 10, transB: true },
    linears: [],
  };
}
