// `vitpath quantize <model> --images DIR`: write an int8 (or float16) copy of a float ViT with the
// linears of every block quantized, check that ONNX Runtime runs them as int8 kernels, and report
// the before/after on images disjoint from the calibration images.
import { InvalidArgumentError, Option, type Command } from 'commander';
import Table from 'cli-table3';
import * as path from 'node:path';
import { type CommonOptions, addCommonOptions, addSchemaOption, intArg, runtimeOptionsOf, startModelCommand } from '../options.js';
import { addDataOptions, preprocessOverridesOf, type DataFlags } from '../dataOptions.js';
import { createProgress, type Progress } from '../progress.js';
import { interactive, printJson, summary } from '../output.js';
import { COMMAND, DEFAULTS, FILES, runQuantize, type QuantizeOptions, type QuantizeReport } from '../../services/quantize.js';
import { MODES, type QuantizeMode } from '../../services/quantizeSchema.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../../quantize/calibrate.js';
import { renderEval } from './eval.js';
import { checkFailed, ExitCode } from '../../errors.js';
import { abandonActiveRuns } from '../../services/commandRun.js';

const HELP_AFTER = `
What it quantizes (int8, the default): the linear layers of every transformer block (q/k/v or qkv,
the attention projection, fc1, fc2) with int8 weights, symmetric per output channel, and uint8
activations, asymmetric per tensor, calibrated on --calib-images images drawn (seeded) from --images;
int32 biases. LayerNorm, Softmax, residual Adds, GELU, the patch embedding and the head stay float32.
The graph uses QuantizeLinear/DequantizeLinear (QDQ) in the patterns ONNX Runtime's CPU provider fuses
into int8 kernels (MatMulIntegerToFloat, QGemm); the report counts the fused kernels.

Layer names (for --include / --exclude, comma-separated or repeated):
  blocks.N.attn.qkv | q | k | v | proj     blocks.N.mlp.fc1 | fc2     head
  a kind alone (fc2, attn, mlp) matches it in every block, blocks.3 matches a whole block, * one part.

Evaluation: the quantized model against the float one on the images not used for calibration
(--limit N of them), as vitpath eval --compare reports it: accuracy with its interval, agreement,
KL, max |Δp|, latency at batch 1 and --batch, parameters, file size.

Outputs in --out (default ./vitpath-out/quantize-<time>):
  model.onnx     the quantized model (or --save FILE)
  report.json    everything, schema versioned (print the schema with --schema)
  layers.csv     one row per linear: precision, calibrated range, scale, zero point, clipped share

Examples:
  vitpath quantize vit.onnx --images val/ --out vit-int8/
  vitpath quantize vit.onnx --images val/ --calibration entropy --exclude blocks.11.mlp.fc2 --save vit-int8.onnx

Mixed precision (--max-drop PTS, int8): validation images (--val-images) are drawn from the images
not used for calibration; each layer alone in int8 is compared with the float model there (mean KL,
agreement), then the most sensitive layers go back to float one at a time until the validation
accuracy drop is at most PTS; the evaluation images (the rest) then check the drop again.

Exit codes: 0 ok, 1 usage (or an output exists without --force), 2 bad model/images, 3 unsupported
            model (already quantized, opset < 13), 4 runtime failure, 5 --max-drop exceeded on the
            evaluation images (reports and model written first).`;

interface QuantizeFlags extends DataFlags {
  mode: QuantizeMode;
  calibration: CalibrationMethod;
  percentile: number;
  calibImages: number;
  include?: string[];
  exclude?: string[];
  maxDrop?: number;
  valImages?: number;
  output?: string;
  save?: string;
  eval: boolean;
  latency: boolean;
  warmup: number;
  repeat: number;
}

function listArg(v: string, prev: string[] | undefined): string[] {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError('needs at least one layer name or pattern');
  return [...(prev ?? []), ...parts];
}

function pointsArg(v: string): number {
  const x = Number(v.trim().replace(/%$/, ''));
  if (v.trim() === '' || !Number.isFinite(x) || x < 0 || x > 100) throw new InvalidArgumentError(`--max-drop must be a number of points from 0 to 100 (got "${v}").`);
  return x;
}

function percentileArg(v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !(x > 0 && x <= 100)) throw new InvalidArgumentError(`--percentile must be a number in (0, 100] (got "${v}").`);
  return x;
}

export function registerQuantize(program: Command): void {
  const cmd = program
    .command(COMMAND)
    .description('Write an int8 copy of a float ViT (block linears quantized, calibrated on your images), check ONNX Runtime fuses it, and compare it with the float model.')
    .argument('[model]', 'the float ViT as .onnx (not needed with --schema)')
    .addOption(new Option('--mode <mode>', 'int8: static, calibrated activations; dynamic: activations quantized at run time; fp16: float16 (a GPU format)').choices([...MODES]).default('int8'))
    .addOption(new Option('--calibration <method>', 'activation ranges: minmax, percentile (--percentile), entropy (KL threshold, TensorRT)').choices([...CALIBRATION_METHODS]).default(DEFAULTS.calibration))
    .addOption(new Option('--percentile <p>', 'share of values kept by --calibration percentile').argParser(percentileArg).default(DEFAULTS.percentile))
    .addOption(new Option('--calib-images <n>', 'calibration images, drawn with --seed from --images; the others are evaluated').argParser(intArg('--calib-images', 1)).default(DEFAULTS.calibImages))
    .addOption(new Option('--include <names>', 'quantize only these layers (names or patterns, comma-separated)').argParser(listArg))
    .addOption(new Option('--exclude <names>', 'keep these layers in float').argParser(listArg))
    .addOption(new Option('--max-drop <pts>', 'int8: keep the most sensitive layers in float until the accuracy drop on validation images is at most this many points; exit 5 when the evaluation images still drop more').argParser(pointsArg))
    .addOption(new Option('--val-images <n>', 'validation images for --max-drop (default: min(500, half of the non-calibration images))').argParser(intArg('--val-images', 1)))
    .option('--output <name>', 'graph output holding the logits (default: located)')
    .option('--save <file>', 'write the quantized model here instead of <out>/model.onnx')
    .option('--no-eval', 'skip the before/after evaluation (the model is still written and its fusion checked)')
    .option('--no-latency', 'skip the latency measurement of the evaluation')
    .addOption(new Option('--warmup <n>', 'untimed runs before each latency measurement').argParser(intArg('--warmup', 0, 100000)).default(3))
    .addOption(new Option('--repeat <n>', 'timed runs per latency measurement').argParser(intArg('--repeat', 1, 100000)).default(20));
  addDataOptions(cmd);
  addCommonOptions(cmd, { batch: DEFAULTS.batch, seed: DEFAULTS.seed, limit: 'evaluation images' });
  addSchemaOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (modelArg: string | undefined, flags: QuantizeFlags, c: Command) => {
    const start = startModelCommand(COMMAND, modelArg, flags.images, c.opts(), { model: 'quantize needs a model: vitpath quantize model.onnx --images DIR (see vitpath quantize --help).', images: 'quantize needs --images (calibration and evaluation images: a folder, list, image or IDX file).' });
    if (!start) return;
    const { model, images, common } = start;
    const options = {
      images,
      labels: flags.labels,
      preprocess: preprocessOverridesOf(flags),
      mode: flags.mode,
      calibration: flags.calibration,
      percentile: flags.percentile,
      calibImages: flags.calibImages,
      seed: common.seed,
      limit: common.limit,
      include: flags.include,
      exclude: flags.exclude,
      maxDrop: flags.maxDrop,
      valImages: flags.valImages,
      output: flags.output,
      batch: common.batch,
      evaluate: flags.eval,
      latency: flags.latency,
      warmup: flags.warmup,
      repeat: flags.repeat,
    };
    await runQuantizeCli(model, options, { ...common, save: flags.save });
  });
}

/** Options of the quantize service as the CLI fills them (runtime, notices and progress are added here). */
export type QuantizeCliOptions = Omit<QuantizeOptions, 'runtime' | 'out' | 'save' | 'force' | 'reportOptions' | 'notice' | 'onProgress'>;

/** Run the quantize service with progress on stderr, print the summary (or --json), exit 5 on a failed --max-drop check. */
export async function runQuantizeCli(model: string, options: QuantizeCliOptions, common: CommonOptions & { save?: string }, title = COMMAND): Promise<QuantizeReport> {
  let progress: Progress | undefined;
  let phase = '';
  const seen = new Set<string>();
  const notice = (l: string) => {
    if (common.quiet || seen.has(l)) return;
    seen.add(l);
    if (progress) progress.log(l);
    else process.stderr.write(l + '\n');
  };
  // Ctrl-C / SIGTERM: release the --out lock and leave nothing that blocks a rerun (quantize keeps no partial results).
  const onSignal = (signal: NodeJS.Signals) => {
    progress?.stop();
    abandonActiveRuns();
    process.stderr.write(`vitpath: ${title} interrupted; it keeps no partial results, rerun it to start again\n`);
    process.exit(signal === 'SIGTERM' ? ExitCode.TERMINATED : ExitCode.INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { report, outDir, modelPath } = await runQuantize(model, {
    ...options,
    runtime: { ...runtimeOptionsOf(common), notice },
    out: common.out,
    save: common.save,
    force: common.force,
    reportOptions: { ...options, save: common.save, provider: common.provider, threads: common.threads },
    notice,
    onProgress: (e) => {
      if (e.phase === 'latency') {
        if (e.done === 0) notice(`${title}: timing both models (${options.warmup} warm-up + ${options.repeat} runs at batch 1 and at batch ${common.batch})`);
        return;
      }
      if (e.phase !== phase) {
        phase = e.phase;
        progress = createProgress({ label: `${title}: ${e.phase === 'images' ? 'evaluate' : e.phase}`, total: e.total, unit: e.phase === 'sensitivity' ? 'model' : 'img', quiet: common.quiet });
      }
      progress?.update(e.done);
      if (e.done === e.total) progress?.succeed();
    },
  })
    .catch((e) => {
      progress?.fail();
      throw e;
    })
    .finally(() => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    });
  if (common.json) printJson(report);
  const where = path.relative(process.cwd(), outDir.dir) || '.';
  summary(`${renderQuantize(report, interactive(common))}\nModel: ${path.relative(process.cwd(), modelPath)}\nReports: ${where}/ (${[FILES.report, FILES.layers].join(', ')})`, common);
  const failed = (report.results.evaluation?.checks ?? []).filter((k) => !k.passed);
  if (failed.length) throw checkFailed(`${model}: the quantized model's top-1 accuracy dropped ${failed[0]!.value.toFixed(2)} points on the evaluation images, more than --max-drop ${failed[0]!.threshold} (chosen on the validation images; reports in ${where}/). Lower --max-drop, or add calibration/validation images.`);
  return report;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** The human summary: what was quantized, the fusion check, then the eval table of both models. */
export function renderQuantize(report: QuantizeReport, colour: boolean): string {
  const r = report.results;
  const q = r.layers.filter((l) => l.precision === 'int8');
  const lines: string[] = [];
  const cal = r.calibration;
  if (r.mode === 'fp16') lines.push(`${COMMAND}: fp16, weights and activations float16 (LayerNorm, Softmax, residual Adds and head float32); overflow check on ${cal?.images ?? 0} calibration images: ${r.float16?.overflow ? 'OVERFLOW' : 'none'}, largest |activation| ${r.float16?.maxAbsActivation.toPrecision(4)}, ${r.float16?.clampedWeights ?? 0} weights clamped`);
  else lines.push(`${COMMAND}: ${r.mode}, ${q.length} of ${r.layers.length} linear layers quantized${cal ? ` (calibration ${cal.method}${cal.percentile !== null ? ` ${cal.percentile}` : ''} on ${cal.images} images)` : ''}`);
  if (r.fused) lines.push(`ONNX Runtime CPU runs ${r.fused.int8Kernels} fused int8 kernels for the ${r.fused.quantizedLayers} quantized layers${r.fused.int8Kernels >= r.fused.quantizedLayers ? '' : ' (some did not fuse; see notes)'}`);
  const t = new Table({
    head: ['layer', 'precision', 'activation range', 'clipped'],
    style: colour ? {} : { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const shown: typeof r.layers = r.layers.length > 16 ? r.layers.filter((l) => l.precision !== 'int8' || (l.activation?.clippedFraction ?? 0) > 0).slice(0, 16) : r.layers;
  for (const l of shown) t.push([l.name, l.precision, l.activation ? `[${l.activation.min.toPrecision(4)}, ${l.activation.max.toPrecision(4)}]` : '-', l.activation ? pct(l.activation.clippedFraction) : '-']);
  if (r.mode === 'fp16') shown.length = 0;
  if (shown.length) lines.push(t.toString());
  if (r.mode !== 'fp16' && shown.length < r.layers.length) lines.push(`(${r.layers.length - shown.length} more layers in layers.csv)`);
  if (r.evaluation) {
    lines.push(
      renderEval(
        {
          ...report,
          command: 'eval',
          results: r.evaluation,
        } as unknown as Parameters<typeof renderEval>[0],
        colour,
      ).replace(/^eval:/, 'evaluation:'),
    );
  }
  const m = r.mixedPrecision;
  if (m) {
    const last = m.steps[m.steps.length - 1]!;
    lines.push(`--max-drop ${m.maxDrop}: on ${m.validation.images} validation images float top-1 ${pct(m.floatAccuracy)}, all-int8 drop ${m.steps[0]!.drop.toFixed(2)} points; ${m.kept.length ? `kept in float: ${m.kept.join(', ')} (drop ${last.drop.toFixed(2)})` : 'no layer needed to stay in float'}`);
    lines.push(`most sensitive layers: ${m.ranking.slice(0, 5).join(', ')}`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
