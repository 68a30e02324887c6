// Fashion-MNIST (Zalando, MIT licence) from its IDX files — Debian's dataset-fashion-mnist package puts
// them in /usr/share/datasets/fashion-mnist — as the 28x28 sets the trainer takes (src/train/digits.ts).
// Only the training script and benchmarks read these files; tests use the committed PNG fixtures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readIdx, idxImages, idxLabels } from '../data/idx.js';
import { usageError } from '../errors.js';
import { DIGIT_SIDE, type DigitSet } from './digits.js';

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const FASHION_FILES = {
  train: ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'],
  test: ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
} as const;

/** One split ('train': 60,000 images, 'test': 10,000) as pixels byte/255, ids `<split>/<index>`. */
export function loadFashionSplit(dir: string, split: 'train' | 'test'): DigitSet {
  const [imgName, lblName] = FASHION_FILES[split];
  const imgFile = path.join(dir, imgName);
  const lblFile = path.join(dir, lblName);
  for (const f of [imgFile, lblFile]) {
    if (!fs.existsSync(f)) throw usageError(`${f} not found: install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass --data DIR holding the Fashion-MNIST IDX files`);
  }
  const imgs = idxImages(readIdx(imgFile));
  const labels = idxLabels(readIdx(lblFile));
  if (imgs.height !== DIGIT_SIDE || imgs.width !== DIGIT_SIDE || imgs.channels !== 1) throw usageError(`${imgFile}: expected 28x28 grayscale images`);
  if (labels.length !== imgs.count) throw usageError(`${lblFile}: ${labels.length} labels for ${imgs.count} images`);
  // A plain loop: Float32Array.from with a map function takes seconds on 47M bytes.
  const pixels = new Float32Array(imgs.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = imgs.data[i]! / 255;
  return {
    count: imgs.count,
    pixels,
    labels: Uint8Array.from(labels),
    ids: Array.from({ length: imgs.count }, (_, i) => `${split}/${i}`),
  };
}
