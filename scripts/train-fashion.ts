// Train vitpath's mean-pooled Fashion-MNIST ViT and write fixtures/models/fashion-vit.onnx (+ .curve.csv,
// .json) and fixtures/fashion/<label>/*.png (held-out test images for tests, which must not need the data set).
//
//   npm run train-fashion                      # the committed model (deterministic, 1 thread)
//   node dist-tools/scripts/train-fashion.js --epochs 1 --out /tmp/x   # a quick try elsewhere
//
// The ViT is src/vit/synth.ts's pre-norm ViT with MEAN POOLING over the 16 patch tokens (no class token):
// patch 7, 4 blocks, width 64, 4 heads, FFN 128, exact GELU, LayerNormalization. It is trace-path's
// second real model (the first, vit-mnist, reads a class token). Training is the digits model's: the
// cross-entropy gradient w.r.t. every weight from vitpath's own autodiff in ONNX Runtime, Adam in
// TypeScript (src/train/trainer.ts), seeded data order and shifts, one intra-op thread.
// Data: Fashion-MNIST (Zalando Research, MIT licence) from Debian's dataset-fashion-mnist package
// (/usr/share/datasets/fashion-mnist, IDX gz): trained on the 60,000 training images, scored after each
// epoch on the 10,000 test images (no model selection: the last epoch is the model).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { toByte, DIGIT_PIXELS, DIGIT_SIDE } from '../src/train/digits.js';
import { loadFashionSplit, FASHION_DIR, FASHION_LABELS } from '../src/train/fashion.js';
import { trainDigits, logicalWeights, evalSession, evaluate, DIGITS_TRAIN_DEFAULTS, type TrainOptions } from '../src/train/trainer.js';
import { assembleDigitsModel, type DigitsProvenance, type TrainedModelInfo } from '../src/train/digitsModel.js';
import { buildSyntheticVit } from '../src/vit/synth.js';
import { trainParams, initialValues } from '../src/train/trainingGraph.js';
import { encodeModel, sha256Hex } from '../src/onnx/model.js';
import { encodePng } from '../src/data/png.js';
import { writeFileAtomic } from '../src/fs/atomic.js';
import { toCsv } from '../src/report/csv.js';
import { curveRows, CURVE_COLUMNS, FIRST_STEPS_RECORDED } from './train-digits.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Held-out test images written as PNG fixtures per class. */
export const FASHION_IMAGES_PER_CLASS = 4;

export const FASHION_TRAIN_DEFAULTS: TrainOptions = {
  ...DIGITS_TRAIN_DEFAULTS,
  vit: { ...DIGITS_TRAIN_DEFAULTS.vit, head: 'mean', seed: 11 },
  seed: 11,
  epochs: 10,
  batch: 64,
  lr: 2e-3,
  warmupSteps: 200,
  shift: 1,
};

export const FASHION_MODEL_INFO: TrainedModelInfo = {
  producer: 'vitpath train-fashion',
  docString: 'A small pre-norm ViT with mean pooling for 28x28 Fashion-MNIST, trained by vitpath itself (scripts/train-fashion.ts) with its own gradient graphs.',
  labels: FASHION_LABELS,
  preprocessing: 'none: 28x28 grayscale, pixel = byte / 255 in 0..1, no resize, no mean/std normalization',
  license: 'MIT (vitpath). Trained on Fashion-MNIST (Zalando Research, MIT licence), as packaged by Debian (dataset-fashion-mnist).',
};

function parseArgs(argv: string[]): { epochs?: number; maxSteps?: number; out: string; data: string } {
  const a: { epochs?: number; maxSteps?: number; out: string; data: string } = { out: path.join(ROOT, 'fixtures'), data: FASHION_DIR };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (k === '--epochs' && v) (a.epochs = Number(v)), i++;
    else if (k === '--max-steps' && v) (a.maxSteps = Number(v)), i++;
    else if (k === '--out' && v) (a.out = path.resolve(v)), i++;
    else if (k === '--data' && v) (a.data = path.resolve(v)), i++;
    else throw new Error(`unknown argument ${k}; usage: train-fashion [--epochs N] [--max-steps N] [--out fixturesDir] [--data dir-with-fashion-idx]`);
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const o: TrainOptions = { ...FASHION_TRAIN_DEFAULTS, ...(args.epochs ? { epochs: args.epochs } : {}), ...(args.maxSteps ? { maxSteps: args.maxSteps } : {}) };
  const train = loadFashionSplit(args.data, 'train');
  const test = loadFashionSplit(args.data, 'test');
  process.stderr.write(`train-fashion: ${train.count} training / ${test.count} test images, ${o.epochs} epochs of ${Math.floor(train.count / o.batch)} steps (batch ${o.batch})\n`);
  const r = await trainDigits(train, test, o, {
    onEpoch: (e) =>
      process.stderr.write(
        `epoch ${String(e.epoch).padStart(2)}  lr ${e.lr.toExponential(2)}  train loss ${e.trainLoss.toFixed(4)} acc ${(e.trainAccuracy * 100).toFixed(2)}%  test loss ${e.heldOutLoss.toFixed(4)} acc ${(e.heldOutAccuracy * 100).toFixed(2)}%  (${e.seconds.toFixed(1)} s)\n`,
      ),
  });
  const config = r.vit.config;
  const logical = logicalWeights(r.params, r.weights);
  const last = r.curve[r.curve.length - 1]!;
  const { vit: _vit, ...options } = o;
  const provenance: DigitsProvenance = {
    script: 'scripts/train-fashion.ts',
    command: 'npm run train-fashion',
    data: `Fashion-MNIST (Zalando Research, MIT licence) IDX files from Debian's dataset-fashion-mnist (${FASHION_DIR}), pixels byte/255`,
    split: { rule: 'train: the 60,000 training images; held out: the 10,000 test images (scored after each epoch, no model selection)', train: train.count, heldOut: test.count },
    options,
    epochs: r.curve.length,
    steps: last.steps,
    heldOutAccuracy: last.heldOutAccuracy,
    heldOutLoss: last.heldOutLoss,
    firstStepLosses: r.stepLosses.slice(0, FIRST_STEPS_RECORDED),
  };
  const model = assembleDigitsModel(config, logical, provenance, FASHION_MODEL_INFO);
  const bytes = encodeModel(model);

  // The written inference graph must score what training measured.
  const check = buildSyntheticVit({ ...config, weights: logical });
  const checkSess = await evalSession(check, trainParams(check), o.threads);
  const again = await evaluate(checkSess, check, initialValues(check.model, trainParams(check)), test);
  await checkSess.release();
  if (again.accuracy !== provenance.heldOutAccuracy) throw new Error(`the assembled model scores ${again.accuracy} on the test split, training said ${provenance.heldOutAccuracy}`);

  const modelsDir = path.join(args.out, 'models');
  fs.mkdirSync(modelsDir, { recursive: true });
  const modelFile = path.join(modelsDir, 'fashion-vit.onnx');
  writeFileAtomic(modelFile, bytes);
  writeFileAtomic(path.join(modelsDir, 'fashion-vit.curve.csv'), toCsv(curveRows(r.curve), CURVE_COLUMNS));
  const req = createRequire(import.meta.url);
  const info = {
    model: 'fashion-vit.onnx',
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    parameters: r.params.reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0),
    provenance,
    test: { accuracy: provenance.heldOutAccuracy, loss: provenance.heldOutLoss, count: test.count },
    timing: { trainingSeconds: r.seconds, epochSeconds: r.curve.map((e) => e.seconds), cpu: os.cpus()[0]?.model ?? '?', threads: o.threads, node: process.version, onnxruntime: (req('onnxruntime-node/package.json') as { version: string }).version },
  };
  writeFileAtomic(path.join(modelsDir, 'fashion-vit.json'), JSON.stringify(info, null, 2) + '\n');

  // The last FASHION_IMAGES_PER_CLASS test images of each class (from the end of the test set, so they
  // stay clear of the first 1,000 that BENCHMARKS.md traces), as PNG in class folders.
  const imagesDir = path.join(args.out, 'fashion');
  fs.rmSync(imagesDir, { recursive: true, force: true });
  const perClass = new Map<number, number>();
  for (let k = test.count - 1; k >= 0; k--) {
    const label = test.labels[k]!;
    const n = perClass.get(label) ?? 0;
    if (n >= FASHION_IMAGES_PER_CLASS) continue;
    perClass.set(label, n + 1);
    const px = new Uint8Array(DIGIT_PIXELS);
    for (let j = 0; j < DIGIT_PIXELS; j++) px[j] = toByte(test.pixels[k * DIGIT_PIXELS + j]!);
    const dir = path.join(imagesDir, String(label));
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, `fashion-test-${String(k).padStart(5, '0')}.png`), encodePng(DIGIT_SIDE, DIGIT_SIDE, 1, px));
  }
  process.stderr.write(
    `wrote ${path.relative(process.cwd(), modelFile)} (${(bytes.length / 1024).toFixed(0)} KiB, sha256 ${info.sha256.slice(0, 12)}), test accuracy ${(provenance.heldOutAccuracy * 100).toFixed(2)}% (${test.count} images), ${r.seconds.toFixed(0)} s\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    process.stderr.write(`train-fashion: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
