// Test inputs: the first MNIST test images from ../shared (IDX gz), and seeded random images.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

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

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomImages(n: number, chw: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * chw }, () => r());
}
