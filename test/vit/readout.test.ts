// How the locator reads the head side of real exports (fixtures/exports): DeiT's averaged class and
// distillation heads and the head choice, mean pooling over all rows or over a Slice of them with
// the joined class token kept, the token rows 'mean' stands for, symbolic image dims pinned to the
// located size, and exit 3 naming what was found when heads are combined in another way.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { create, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type ModelProto } from '../../src/onnx/proto.js';
import { hostToTensor } from '../../src/onnx/tensor.js';
import { ExitCode, VitpathError } from '../../src/errors.js';
import { locateVit, selectReadout } from '../../src/vit/locate.js';
import { defaultToken, resolveToken } from '../../src/vit/tokens.js';
import { pinnedImageDims, prepareVitModel } from '../../src/services/vitModel.js';
import { Graph } from '../../src/onnx/graph.js';

const EXPORTS = path.resolve(__dirname, '../../fixtures/exports');
const load = (name: string) => loadModel(path.join(EXPORTS, `${name}.onnx`));

function thrown(f: () => unknown): VitpathError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    return e as VitpathError;
  }
  throw new Error('did not throw');
}

/** `model` with input k of the node writing `producerOf` replaced by a new initializer. */
function withInput(model: ModelProto, producerOf: string, k: number, data: Float32Array | BigInt64Array, dims: number[]): ModelProto {
  const g = model.graph!;
  const node = g.node.map((n) => (n.output.includes(producerOf) ? create(NodeProtoSchema, { ...n, input: n.input.map((x, i) => (i === k ? 'edited_input' : x)) }) : n));
  const initializer = [...g.initializer, hostToTensor('edited_input', data, dims)];
  return create(ModelProtoSchema, { ...model, graph: create(GraphProtoSchema, { ...g, node, initializer }) });
}
const withScalarInput = (model: ModelProto, producerOf: string, k: number, v: number) => withInput(model, producerOf, k, Float32Array.of(v), []);

describe('DeiT: a class head and a distillation head averaged', () => {
  const { proto } = load('deit-distilled');
  const layout = locateVit(proto);

  it('finds both heads, the tokens they read, and reads their average by default', () => {
    const g = new Graph(proto);
    expect(layout.logits).toBe('logits');
    expect(layout.readout).toBe('avg');
    expect(layout.facts.pooling).toBe('cls');
    expect(layout.classToken).toEqual({ initializer: 'cls_token', row: 0 });
    const d = layout.distillation!;
    expect(d).toMatchObject({ row: 1, initializer: 'dist_token', averaged: 'logits' });
    // Each head is the Gemm whose weight holds that head's initializer, reading the row it names.
    expect(d.clsHead.weight).toBe('head.weight');
    expect(d.distHead.weight).toBe('head_dist.weight');
    expect(g.producerOf(d.clsLogits)!.opType).toBe('Gemm');
    expect(layout.head).toBe(d.clsHead);
    expect(layout.facts.tokens).toBe(18);
    expect(defaultToken(layout)).toBe('cls');
    // 'mean' averages the patches: neither the class nor the distillation row.
    expect(resolveToken(layout, 'mean')).toEqual({ kind: 'mean', rows: Array.from({ length: 16 }, (_, i) => i + 2) });
  });

  it('--head cls / dist read one head (the distillation head at its own row)', () => {
    const cls = locateVit(proto, { head: 'cls' });
    expect(cls).toMatchObject({ logits: layout.distillation!.clsLogits, readout: 'cls' });
    expect(defaultToken(cls)).toBe('cls');
    const dist = selectReadout(layout, 'dist');
    expect(dist).toMatchObject({ logits: layout.distillation!.distLogits, readout: 'dist', head: layout.distillation!.distHead, pooled: layout.distillation!.distHead.input });
    expect(defaultToken(dist)).toBe(1);
    expect(selectReadout(dist, 'avg').logits).toBe('logits');
  });

  it('a chosen head becomes a graph output of the analysed model', () => {
    const m = prepareVitModel(load('deit-distilled'), { head: 'dist' });
    expect(m.loaded.proto.graph!.output.map((o) => o.name)).toEqual(['logits', layout.distillation!.distLogits]);
  });

  it('heads combined another way (sum / 3) is unsupported (3), naming what was found', () => {
    const e = thrown(() => locateVit(withScalarInput(proto, 'logits', 1, 3), { label: 'deit.onnx' }));
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toMatch(/deit\.onnx: the logits output "logits" is computed by Div from 2 linear head\(s\) \(32->10, 32->10\)/);
  });

  it('--head on a model with one head is a usage error (1)', () => {
    const e = thrown(() => locateVit(load('hf-vit').proto, { head: 'dist', label: 'hf.onnx' }));
    expect(e.exitCode).toBe(ExitCode.USAGE);
    expect(e.message).toMatch(/--head dist needs a model with a class head and a distillation head/);
    expect(locateVit(load('hf-vit').proto, { head: 'avg' }).readout).toBeUndefined();
  });
});

describe('class token joined, mean pooling', () => {
  it('over every token: meanRows covers the class row too, and the class token is still found', () => {
    const l = locateVit(load('cls-meanpool').proto);
    expect(l.facts.pooling).toBe('mean');
    expect(l.meanRows).toEqual({ start: 0, end: 17 });
    expect(l.classToken).toEqual({ initializer: 'cls_token', row: 0 });
    expect(defaultToken(l)).toBe('mean');
    expect(resolveToken(l, 'mean')).toEqual({ kind: 'mean', rows: Array.from({ length: 17 }, (_, i) => i) });
    expect(resolveToken(l, 'cls')).toEqual({ kind: 'row', row: 0 });
  });

  it('over a Slice of the patch rows (timm global_pool="avg"): meanRows starts after the class token', () => {
    const l = locateVit(load('cls-meanpool-patches').proto);
    expect(l.meanRows).toEqual({ start: 1, end: 17 });
    expect(resolveToken(l, 'mean')).toEqual({ kind: 'mean', rows: Array.from({ length: 16 }, (_, i) => i + 1) });
    expect(resolveToken(l, 'cls')).toEqual({ kind: 'row', row: 0 });
  });
});

describe('mean pooling after a Slice that is not a range of rows', () => {
  it('is unsupported (3), naming the Slice', () => {
    const { proto } = load('cls-meanpool-patches');
    const slice = proto.graph!.node.find((n) => n.opType === 'Slice' && new Graph(proto).consumersOf(n.output[0]!).some((c) => c.opType === 'ReduceMean'))!;
    const e = thrown(() => locateVit(withInput(proto, slice.output[0]!, 4, BigInt64Array.of(2n), [1]), { label: 'p.onnx' }));
    expect(e.exitCode).toBe(ExitCode.UNSUPPORTED);
    expect(e.message).toMatch(/p\.onnx: the head averages tokens after a Slice that is not a plain range of token rows \(node "\/Slice"\)/);
  });
});

describe('symbolic channel/height/width (optimum-style declarations)', () => {
  it('pins C, H, W to the located sizes and keeps the batch symbolic', () => {
    const stored = load('hf-vit');
    const l = locateVit(stored.proto);
    expect(l.inputDims).toEqual(['batch_size', 'num_channels', 'height', 'width']);
    expect(pinnedImageDims(l)).toEqual(['batch_size', 1, 28, 28]);
    const m = prepareVitModel(stored);
    expect(m.layout.inputDims).toEqual(['batch_size', 1, 28, 28]);
    expect(m.layout.declaredInputDims).toEqual(['batch_size', 'num_channels', 'height', 'width']);
    expect(new Graph(m.loaded.proto).shapeOf('pixel_values')?.dims).toEqual(['batch_size', 1, 28, 28]);
    expect(m.loaded.sha256).toBe(stored.sha256);
  });

  it('leaves fixed inputs, and inputs whose fixed dims are not NCHW, as declared', () => {
    const l = locateVit(load('timm-vit-gelu20').proto);
    expect(pinnedImageDims(l)).toBeNull();
    expect(pinnedImageDims({ ...l, inputDims: ['b', 32, 32, 'c'] })).toBeNull();
    expect(pinnedImageDims({ ...l, inputDims: ['b', 3, 'h', 'w'] })).toEqual(['b', 3, 32, 32]);
  });
});
