// Test inputs and runners for rewrite tests: the first MNIST test images from ../shared (IDX gz),
// seeded random images, the models to test on, and a one-shot session run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { mulberry32 } from '../../src/random.js';
import { encodeModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { createSession, type Feed } from '../../src/runtime/session.js';

export const FIXTURE_MODELS = path.resolve(__dirname, '../../fixtures/models');
export const VIT_MNIST = path.resolve(__dirname, '../../../shared/models/vit-mnist.onnx');

/** Every fixture model, plus vit-mnist when ../shared is present. */
export function modelFiles(): string[] {
  return [
    ...fs.readdirSync(FIXTURE_MODELS).filter((f) => f.endsWith('.onnx')).map((f) => path.join(FIXTURE_MODELS, f)),
    ...(fs.existsSync(VIT_MNIST) ? [VIT_MNIST] : []),
  ];
}

/** Run a model once on CPU (1 thread) and release the session. */
export async function runOnce(model: ModelProto, feeds: Record<string, Feed>, outputs?: string[]) {
  const s = await createSession(encodeModel(model), { provider: 'cpu', threads: 1 });
  try {
    return await s.run(feeds, outputs);
  } finally {
    await s.release();
  }
}

export const MNIST_IMAGES = path.resolve(__dirname, '../../../shared/data/mnist/t10k-images-idx3-ubyte.gz');
export const MNIST_LABELS = path.resolve(__dirname, '../../../shared/data/mnist/t10k-labels-idx1-ubyte.gz');

/** The first `n` MNIST test images as [n,1,28,28] pixels in 0..1, and their labels. */
export function mnistImages(n: number): { images: Float32Array; labels: number[] } {
  const img = zlib.gunzipSync(fs.readFileSync(MNIST_IMAGES));
  const lab = zlib.gunzipSync(fs.readFileSync(MNIST_LABELS));
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) images[i] = img[16 + i]! / 255;
  return { images, labels: Array.from(lab.subarray(8, 8 + n)) };
}

/** Seeded uniform [0, 1) stream (the project's mulberry32). */
export const rng = mulberry32;

export function randomImages(n: number, chw: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * chw }, () => r());
}
