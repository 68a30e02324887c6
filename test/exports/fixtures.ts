// The export-style fixtures (fixtures/exports, written by scripts/export-fixtures.py with the real
// torch.onnx.export) and their PyTorch-autograd reference values, read for the tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { discoverImages } from '../../src/data/sources.js';
import { inferPreprocess } from '../../src/data/preprocess.js';
import { loadBatch } from '../../src/data/dataset.js';
import type { ViTLayout } from '../../src/vit/types.js';

export const EXPORTS = path.resolve(__dirname, '../../fixtures/exports');

export interface ManifestEntry {
  file: string;
  reference: string;
  style: string;
  opset: number;
  bytes: number;
  sha256: string;
  input: { kind: string; images: string; referenceImages: string; dtype: 'float32' | 'float16'; dynamicAxes: string };
  nearTies: { setting: string; image: number; layer: number; margin: number }[];
}

export interface RefLayer {
  layer: number;
  neuron: number;
  activation: number;
  score: number;
  runnerUp: number;
  margin: number;
  nearTie: boolean;
  gradSums: number[];
  scores: number[];
}

export interface RefImage {
  target: number;
  logits: number[];
  probability: number;
  activations: number[][];
  cleanGradients: number[][];
  path: number[];
  layers: RefLayer[];
  jas: { product: number; sum: number; completenessGap: number; fZeroed: number };
}

export interface RefSetting {
  /** 'cls', 'mean' or a token row. */
  token: 'cls' | 'mean' | number;
  /** 'model' (the model's output) or a DeiT head. */
  head: 'model' | 'avg' | 'cls' | 'dist';
  images: RefImage[];
}

export interface ReferenceDoc {
  model: string;
  style: string;
  objective: 'prob';
  steps: number;
  jas: 'product';
  nearTie: number;
  /** Reference images, relative to fixtures/exports. */
  images: string[];
  allImages: string[];
  allLabels: number[];
  allLogits: number[][];
  headLogits: Record<string, number[][]>;
  references: RefSetting[];
}

export function readManifest(): Record<string, ManifestEntry> {
  return (JSON.parse(fs.readFileSync(path.join(EXPORTS, 'manifest.json'), 'utf8')) as { fixtures: Record<string, ManifestEntry> }).fixtures;
}

export function readReference(entry: ManifestEntry): ReferenceDoc {
  return JSON.parse(fs.readFileSync(path.join(EXPORTS, entry.reference), 'utf8')) as ReferenceDoc;
}

/** The reference images as vitpath's data pipeline turns them into model input (as the CLI does). */
export async function referenceInput(doc: ReferenceDoc, layout: ViTLayout, files = doc.images): Promise<Float32Array> {
  const items = files.map((f) => discoverImages(path.join(EXPORTS, f)).items[0]!);
  return loadBatch(items, inferPreprocess(layout.inputDims), { concurrency: 1 });
}

/** max |a - b| over two equally long lists. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** max |a - b| / max |b|: the error relative to the vector's scale (entries near 0 have no relative error of their own). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = Math.max(s, Math.abs(b[i]!));
  return maxAbsDiff(a, b) / (s || 1);
}
