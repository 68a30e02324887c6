// Shared assertions: a located ViTLayout against the ground truth a synthetic model was built with.
import { expect } from 'vitest';
import type { ViTLayout } from '../../src/vit/types.js';
import type { SynthVitConfig } from '../../src/vit/synth.js';

export interface GroundTruth {
  config: Omit<SynthVitConfig, 'weights'>;
  names: Record<string, string>;
  tensors: Record<string, string>;
  tokens: number;
  numPatches: number;
}

const ACT = { erf: 'gelu-erf', tanh: 'gelu-tanh', 'gelu-op': 'gelu-op', relu: 'relu' } as const;
const NORM = { layernorm: 'layernorm', decomposed: 'layernorm-decomposed', batchnorm: 'batchnorm' } as const;

export function expectLayoutMatches(layout: ViTLayout, truth: GroundTruth): void {
  const c = truth.config;
  const t = truth.tensors;
  const n = truth.names;
  const [h, w] = typeof c.imageSize === 'number' ? [c.imageSize, c.imageSize] : c.imageSize;
  expect(layout.facts).toEqual({
    numBlocks: c.depth,
    width: c.width,
    ffnWidth: c.ffn,
    heads: c.heads,
    tokens: truth.tokens,
    numPatches: truth.numPatches,
    patchSize: c.patch,
    imageSize: [h, w],
    channels: c.channels,
    numClasses: c.classes,
    batch: c.batch,
    opset: c.opset,
    irVersion: layout.facts.irVersion,
    producer: 'vitpath-synth',
    pooling: c.head,
  });
  expect(layout.input).toBe(t.input);
  expect(layout.inputDims).toEqual([c.batch === 'dynamic' ? 'batch' : c.batch, c.channels, h, w]);
  expect(layout.logits).toBe('logits');
  expect(layout.extraOutputs).toEqual(c.extraOutputs.includes('attention') ? ['attention'] : []);
  expect(layout.patchEmbed.weight).toBe(n['patch.weight']);
  expect(layout.patchEmbed.bias).toBe(n['patch.bias']);
  if (c.head === 'cls') expect(layout.classToken).toEqual({ initializer: n.cls_token, row: 0 });
  else expect(layout.classToken).toBeUndefined();
  expect(layout.finalNorm?.kind).toBe(NORM[c.norm]);
  expect(layout.finalNorm?.output).toBe(t.finalNorm);
  expect(layout.finalNorm?.scale).toBe(n['norm.weight']);
  expect(layout.finalNorm?.bias).toBe(n['norm.bias']);
  expect(layout.pooled).toBe(t.pooled);
  expect(layout.head.weight).toBe(n['head.weight']);
  expect(layout.head.bias).toBe(n['head.bias']);
  expect(layout.head.output).toBe('logits');
  expect([layout.head.inFeatures, layout.head.outFeatures]).toEqual([c.width, c.classes]);
  expect(layout.blocks).toHaveLength(c.depth);
  layout.blocks.forEach((b, i) => {
    const p = `block.${i}`;
    expect(b.index).toBe(i);
    expect(b.input).toBe(t[`${p}.input`]);
    expect(b.attnResidual).toBe(t[`${p}.attnResidual`]);
    expect(b.output).toBe(t[`${p}.output`]);
    expect(b.attnBranch).toBe(t[`${p}.attnBranch`]);
    expect(b.attnSoftmax).toBe(t[`${p}.attnSoftmax`]);
    expect(b.mlpBranch).toBe(t[`${p}.mlpBranch`]);
    expect(b.attnNorm).toMatchObject({ kind: NORM[c.norm], input: t[`${p}.input`], output: t[`${p}.attnNorm`], scale: n[`${p}.norm1.weight`], bias: n[`${p}.norm1.bias`] });
    expect(b.mlpNorm).toMatchObject({ kind: NORM[c.norm], input: t[`${p}.attnResidual`], output: t[`${p}.mlpNorm`], scale: n[`${p}.norm2.weight`], bias: n[`${p}.norm2.bias`] });
    expect(b.fc1).toMatchObject({ kind: c.linear, output: t[`${p}.fc1`], weight: n[`${p}.fc1.weight`], bias: n[`${p}.fc1.bias`], inFeatures: c.width, outFeatures: c.ffn });
    expect(b.fc2).toMatchObject({ kind: c.linear, input: t[`${p}.neuron`], output: t[`${p}.fc2`], weight: n[`${p}.fc2.weight`], bias: n[`${p}.fc2.bias`], inFeatures: c.ffn, outFeatures: c.width });
    if (c.linear === 'gemm') expect(b.fc1.transB).toBe(true);
    expect(b.activation).toEqual({ kind: ACT[c.gelu], input: t[`${p}.fc1`], output: t[`${p}.neuron`] });
    expect(b.neuron).toBe(t[`${p}.neuron`]);
    expect(b.neuronLayout).toBe(c.linear === 'gemm' ? 'flat' : 'btf');
  });
}
