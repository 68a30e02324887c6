// Generate fixtures/models (synthetic ViTs in several export styles) and fixtures/images (small
// PNGs + labels.csv), byte-identically on every run. Usage: node dist-tools/scripts/make-fixtures.js [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSyntheticVit, mulberry32, type SynthVitConfig } from '../src/vit/synth.js';
import { saveModel } from '../src/onnx/model.js';
import { encodePng } from '../src/data/png.js';
import { writeFileAtomic } from '../src/fs/atomic.js';

export interface ModelFixture {
  file: string;
  config: Partial<SynthVitConfig>;
  /** Write weights to `<name>.data` (external data) instead of inline. */
  external?: boolean;
  covers: string;
}

const tiny16 = { imageSize: 16, channels: 1, patch: 4, width: 16, depth: 2, heads: 2, ffn: 32, classes: 10 } as const;

export const MODEL_FIXTURES: ModelFixture[] = [
  {
    file: 'erf-ln-matmul.onnx',
    config: { imageSize: 28, channels: 1, patch: 7, width: 32, depth: 2, heads: 4, ffn: 64, classes: 10, opset: 17, seed: 101, gelu: 'erf', norm: 'layernorm', linear: 'matmul', batch: 'dynamic', head: 'cls' },
    covers: 'the torch-export default: Erf-GELU, LayerNormalization nodes, MatMul+Add linears, opset 17, dynamic batch, class token; 1x28x28 like MNIST',
  },
  {
    file: 'decomposed-gemm-tanh.onnx',
    config: { ...tiny16, width: 24, depth: 3, heads: 3, ffn: 48, opset: 13, seed: 102, gelu: 'tanh', norm: 'decomposed', linear: 'gemm' },
    covers: 'LayerNorm decomposed into ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (axes attribute), Gemm(transB=1) on [B*T,D] with the MLP kept flat (neuron tensor [B*T,F]), tanh-GELU, 3 blocks, 3 heads, opset 13',
  },
  {
    file: 'relu-bn-opset9.onnx',
    config: { ...tiny16, opset: 9, seed: 103, gelu: 'relu', norm: 'batchnorm' },
    covers: 'opset 9: ReLU MLP, BatchNormalization (inference, Transpose to [B,D,T] and back) as the norm, Slice/ReduceMean attributes, Softmax with 2-D coercion (axis 3)',
  },
  {
    file: 'gelu20-external.onnx',
    config: { ...tiny16, width: 24, heads: 4, ffn: 48, opset: 20, seed: 104, gelu: 'gelu-op' },
    external: true,
    covers: 'native Gelu node (approximate=none) at opset 20; weights >= 1 KiB in external data gelu20-external.data',
  },
  {
    file: 'fixed-batch1-attn.onnx',
    config: { ...tiny16, opset: 17, seed: 105, batch: 1, extraOutputs: ['attention'] },
    covers: "fixed batch 1 (input [1,1,16,16]); the last block's attention probabilities as an extra output listed BEFORE logits",
  },
  {
    file: 'mean-pool.onnx',
    config: { ...tiny16, opset: 21, seed: 106, head: 'mean' },
    covers: 'no class token, mean pooling (ReduceMean with axes input) over the 16 patch tokens, opset 21 (IR 10)',
  },
  {
    file: 'rgb32-erf-ln-matmul.onnx',
    config: { imageSize: 32, channels: 3, patch: 8, width: 32, depth: 2, heads: 4, ffn: 64, classes: 10, opset: 17, seed: 107 },
    covers: '3-channel RGB 3x32x32 input (CIFAR-like), patch 8, otherwise the torch-export default style',
  },
  {
    file: 'rgb-nonsquare-gemm.onnx',
    config: { imageSize: [24, 32], channels: 3, patch: 8, width: 24, depth: 2, heads: 2, ffn: 48, classes: 10, opset: 18, seed: 108, linear: 'gemm' },
    covers: 'non-square 3x24x32 RGB input (3x4 patches), Gemm linears with LayerNormalization nodes, opset 18',
  },
];

export interface ImageFixture {
  file: string;
  width: number;
  height: number;
  channels: 1 | 3;
  label: number;
  covers: string;
  /** Pixel value 0..255 at (x, y, channel); `r` is a seeded uniform source (called in raster order). */
  pixel: (x: number, y: number, c: number, r: () => number) => number;
}

const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

export const IMAGE_FIXTURES: ImageFixture[] = [
  {
    file: 'gray-28x28-ring.png',
    width: 28,
    height: 28,
    channels: 1,
    label: 0,
    covers: 'gray 28x28 (MNIST size): a ring like a zero',
    pixel: (x, y) => {
      const d = Math.hypot(x - 13.5, y - 13.5);
      return clamp(255 * Math.max(0, 1 - Math.abs(d - 8) / 2.5));
    },
  },
  {
    file: 'gray-28x28-bar.png',
    width: 28,
    height: 28,
    channels: 1,
    label: 1,
    covers: 'gray 28x28: a slanted stroke like a one',
    pixel: (x, y) => clamp(255 * Math.max(0, 1 - Math.abs(x - 14 - (y - 14) * 0.25) / 2)),
  },
  {
    file: 'gray-40x30-checker.png',
    width: 40,
    height: 30,
    channels: 1,
    label: 2,
    covers: 'gray non-square 40x30 (wider than tall): 5-pixel checkerboard',
    pixel: (x, y) => (((x / 5) | 0) + ((y / 5) | 0)) % 2 ? 230 : 20,
  },
  {
    file: 'gray-17x23-gradient.png',
    width: 17,
    height: 23,
    channels: 1,
    label: 3,
    covers: 'gray odd-sized 17x23 (taller than wide): diagonal gradient',
    pixel: (x, y) => clamp((255 * (x + y)) / (17 + 23 - 2)),
  },
  {
    file: 'gray-16x16-noise.png',
    width: 16,
    height: 16,
    channels: 1,
    label: 4,
    covers: 'gray 16x16 (the tiny models\' size): seeded uniform noise',
    pixel: (_x, _y, _c, r) => clamp(r() * 255),
  },
  {
    file: 'rgb-32x32-disc.png',
    width: 32,
    height: 32,
    channels: 3,
    label: 5,
    covers: 'RGB 32x32 (CIFAR size): red disc on a blue-green gradient',
    pixel: (x, y, c) => {
      const inside = Math.hypot(x - 15.5, y - 15.5) < 9;
      if (inside) return [220, 30, 40][c]!;
      return [10, clamp(8 * y), clamp(255 - 6 * x)][c]!;
    },
  },
  {
    file: 'rgb-40x30-stripes.png',
    width: 40,
    height: 30,
    channels: 3,
    label: 6,
    covers: 'RGB non-square 40x30: vertical colour stripes',
    pixel: (x, _y, c) => [
      [255, 0, 0],
      [0, 200, 0],
      [0, 0, 255],
      [250, 250, 250],
    ][((x / 10) | 0) % 4]![c]!,
  },
  {
    file: 'rgb-17x23-noise.png',
    width: 17,
    height: 23,
    channels: 3,
    label: 7,
    covers: 'RGB odd-sized 17x23: seeded uniform noise per channel',
    pixel: (_x, _y, _c, r) => clamp(r() * 255),
  },
];

/** Raw interleaved pixels of an image fixture (row-major, channels last). */
export function imagePixels(f: ImageFixture): Uint8Array {
  const r = mulberry32(0x1ace + f.label);
  const out = new Uint8Array(f.width * f.height * f.channels);
  let i = 0;
  for (let y = 0; y < f.height; y++) for (let x = 0; x < f.width; x++) for (let c = 0; c < f.channels; c++) out[i++] = f.pixel(x, y, c, r);
  return out;
}

function readme(): string {
  const lines = [
    '# Fixtures',
    '',
    '`exports/` holds real `torch.onnx.export` models in the styles users bring (Hugging Face, timm with a',
    '`Gelu` node at opset 20, DeiT distilled, float16, class token + mean pooling), their images and their',
    'PyTorch-autograd reference values, written by `scripts/export-fixtures.py` (a Python developer tool;',
    'see `exports/manifest.json`); test/exports checks vitpath against them. `exports/torchvision/` holds',
    'torchvision VisionTransformer exports at opsets 11, 14 and 17, with stale and baked batch-1 shapes, and',
    'PyTorch\'s logits, written by `scripts/export-torchvision.py` (see its README). Everything else:',
    '',
    'Generated by `npm run fixtures` (scripts/make-fixtures.ts); do not edit by hand. Regeneration is',
    'byte-identical, which test/fixtures/regenerate.test.ts checks. All models are synthetic pre-norm ViTs',
    'from src/vit/synth.ts with seeded random weights and generic node/tensor names (`n17`, `t42`, `w3`);',
    'input `input` [batch, C, H, W] (pixels in 0..1), output `logits` [batch, 10].',
    '`models/manifest.json` holds each model\'s config and the ground-truth map from logical parts',
    '(`block.0.neuron`, `block.1.fc1.weight`, ...) to tensor and initializer names.',
    '',
    '## models/',
    '',
    '| file | covers |',
    '| --- | --- |',
    ...MODEL_FIXTURES.map((m) => `| \`${m.file}\`${m.external ? ` + \`${m.file.replace(/\.onnx$/, '.data')}\`` : ''} | ${m.covers} |`),
    '',
    '## images/',
    '',
    'Deterministic PNGs (8-bit, unfiltered, stored deflate). `labels.csv` lists `file,label`.',
    '',
    '| file | size (w x h) | label | covers |',
    '| --- | --- | --- | --- |',
    ...IMAGE_FIXTURES.map((f) => `| \`${f.file}\` | ${f.width}x${f.height}x${f.channels} | ${f.label} | ${f.covers} |`),
    '',
  ];
  return lines.join('\n');
}

/** Write every fixture under `outDir`; returns the written paths relative to `outDir`, sorted. */
export function writeFixtures(outDir: string): string[] {
  const written: string[] = [];
  const modelsDir = path.join(outDir, 'models');
  const imagesDir = path.join(outDir, 'images');
  fs.mkdirSync(modelsDir, { recursive: true });
  fs.mkdirSync(imagesDir, { recursive: true });
  const manifest: Record<string, unknown> = {};
  for (const m of MODEL_FIXTURES) {
    const s = buildSyntheticVit(m.config);
    const files = saveModel(s.model, path.join(modelsDir, m.file), { externalData: m.external ?? false, externalMinBytes: 1024, force: true });
    for (const f of files) written.push(path.relative(outDir, f));
    manifest[m.file] = { config: s.config, tokens: s.tokens, numPatches: s.numPatches, external: m.external ?? false, names: s.names, tensors: s.tensors };
  }
  writeFileAtomic(path.join(modelsDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  written.push(path.join('models', 'manifest.json'));
  const csv = ['file,label'];
  for (const f of IMAGE_FIXTURES) {
    writeFileAtomic(path.join(imagesDir, f.file), encodePng(f.width, f.height, f.channels, imagePixels(f)));
    written.push(path.join('images', f.file));
    csv.push(`${f.file},${f.label}`);
  }
  writeFileAtomic(path.join(imagesDir, 'labels.csv'), csv.join('\n') + '\n');
  written.push(path.join('images', 'labels.csv'));
  writeFileAtomic(path.join(outDir, 'README.md'), readme());
  written.push('README.md');
  return written.map((p) => p.split(path.sep).join('/')).sort();
}

function main(): void {
  const outDir = path.resolve(process.argv[2] ?? 'fixtures');
  const t0 = performance.now();
  const files = writeFixtures(outDir);
  let bytes = 0;
  for (const f of files) bytes += fs.statSync(path.join(outDir, f)).size;
  process.stdout.write(`wrote ${files.length} files (${(bytes / 1024).toFixed(1)} KiB) to ${outDir} in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
