// `vitpath eval <model> --images DIR [--compare REF.onnx]`: accuracy with its interval, per-class
// accuracy and confusion matrix, agreement / KL / paired accuracy difference against a reference,
// latency and throughput, model facts; --min-accuracy / --max-drop gate a CI job with exit 5.
import { InvalidArgumentError, Option, type Command } from 'commander';
import Table from 'cli-table3';
import * as path from 'node:path';
import { addCommonOptions, addSchemaOption, intArg, runtimeOptionsOf, startModelCommand } from '../options.js';
import { addDataOptions, preprocessOverridesOf, type DataFlags } from '../dataOptions.js';
import { runReportCommand, shownPath } from '../runReport.js';
import { fileSize } from '../output.js';
import { checkFailure, COMMAND, DEFAULTS, runEval, type EvalReport } from '../../services/eval.js';
import type { ModelEval } from '../../services/evalSchema.js';

const HELP_AFTER = `
Works on any image classifier with one image input [batch, channels, height, width] (float32,
float16 or float64) and a [batch, classes] output of logits or probabilities: ViTs or not, pruned,
float16 or int8 (QDQ) models alike. What it reports:
  accuracy     top-1 with its Wilson 95% interval, top-5 (more than 5 classes), mean softmax
               probability of the true class, per-class accuracy, confusion matrix
  --compare    top-1 agreement with the reference, mean KL(reference || model), max |Δ probability|,
               accuracy difference (model - reference) with its paired 95% interval and the exact
               McNemar p-value on the discordant images
  latency      --warmup untimed runs, then --repeat timed runs: median and p90 ms per image at batch
               1 and images/s at --batch N, on the chosen --provider with --threads
  facts        parameters, bytes on disk (with external data), ops histogram, precision
               (float32 / float16 / int8-qdq / int8-qoperator)
Images without labels still give agreement, KL and latency; accuracy is then skipped (a notice says so).

Outputs in --out (default ./vitpath-out/eval-<time>):
  report.json    everything, schema versioned (print the schema with --schema)
  eval.csv       one row per model and metric (model,path,metric,value,ci_low,ci_high)
  classes.csv    per-class accuracy (model,class,name,count,correct,accuracy)
  confusion.csv  non-zero confusion cells (model,true,pred,count)

Examples:
  vitpath eval vit.onnx --images val/
  vitpath eval vit-int8.onnx --images val/ --compare vit.onnx --max-drop 0.5
  vitpath eval vit.onnx --images t10k-images-idx3-ubyte.gz --min-accuracy 97 --json | jq .results.model.accuracy

Exit codes: 0 ok, 1 usage (or a report file exists without --force), 2 bad model/images/labels
            or an --out that cannot be written or is in use, 3 unsupported model, 4 runtime
            failure, 5 a check failed (--min-accuracy, --max-drop; the reports are written
            first), 130/143 interrupted (Ctrl-C/SIGTERM; rerun it).`;

interface EvalFlags extends DataFlags {
  compare?: string;
  output?: string;
  compareOutput?: string;
  latency: boolean;
  warmup: number;
  repeat: number;
  minAccuracy?: number;
  maxDrop?: number;
}

/** A number in [0, 100]; "97.5" and "97.5%" both mean 97.5. */
function percentArg(flag: string, what: string): (v: string) => number {
  return (v: string) => {
    const t = v.trim().replace(/%$/, '');
    const x = Number(t);
    if (t === '' || !Number.isFinite(x) || x < 0 || x > 100) throw new InvalidArgumentError(`${flag} must be ${what} from 0 to 100 (got "${v}").`);
    return x;
  };
}

export function registerEval(program: Command): void {
  const cmd = program
    .command(COMMAND)
    .description('Score an image classifier on labelled images (accuracy with its interval, per-class, confusion), compare it with a reference, time it, and gate on the result.')
    .argument('[model]', 'the classifier as .onnx (not needed with --schema)')
    .option('--compare <ref>', 'a reference model (.onnx) to compare with on the same images')
    .option('--output <name>', 'graph output holding the class scores (default: the only [batch, classes] output)')
    .option('--compare-output <name>', 'the same for the --compare model')
    .addOption(new Option('--min-accuracy <pct>', 'exit 5 when top-1 accuracy is below this, in percent (e.g. 97.5)').argParser(percentArg('--min-accuracy', 'a percentage')))
    .addOption(new Option('--max-drop <pts>', 'with --compare: exit 5 when top-1 accuracy is more than this many points below the reference').argParser(percentArg('--max-drop', 'a number of points')))
    .option('--no-latency', 'skip the latency and throughput measurement')
    .addOption(new Option('--warmup <n>', 'untimed runs before each latency measurement').argParser(intArg('--warmup', 0, 100000)).default(DEFAULTS.warmup))
    .addOption(new Option('--repeat <n>', 'timed runs per latency measurement').argParser(intArg('--repeat', 1, 100000)).default(DEFAULTS.repeat));
  addDataOptions(cmd);
  addCommonOptions(cmd, { batch: DEFAULTS.batch, seed: false });
  addSchemaOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (modelArg: string | undefined, flags: EvalFlags, c: Command) => {
    const start = startModelCommand(COMMAND, modelArg, flags.images, c.opts(), { model: 'eval needs a model: vitpath eval model.onnx --images DIR (see vitpath eval --help).', images: 'eval needs --images (a folder, list, image or IDX file).' });
    if (!start) return;
    const { model, images, common } = start;
    const options = {
      images,
      labels: flags.labels,
      limit: common.limit,
      compare: flags.compare,
      output: flags.output,
      compareOutput: flags.compareOutput,
      preprocess: preprocessOverridesOf(flags),
      batch: common.batch,
      latency: flags.latency,
      warmup: flags.warmup,
      repeat: flags.repeat,
      minAccuracy: flags.minAccuracy,
      maxDrop: flags.maxDrop,
    };
    const { report, outDir } = await runReportCommand({ label: COMMAND, flags: common, render: renderEval }, (hooks) =>
      runEval(
        model,
        {
          ...options,
          runtime: { ...runtimeOptionsOf(common), notice: hooks.notice },
          out: common.out,
          force: common.force,
          reportOptions: { ...options, provider: common.provider, threads: common.threads },
          notice: hooks.notice,
          onProgress: (e) => {
            if (e.phase === 'latency' && e.done === 0) hooks.notice?.(`${COMMAND}: timing (${flags.warmup} warm-up + ${flags.repeat} runs at batch 1 and at batch ${common.batch})`);
          },
        },
        hooks,
      ),
    );
    const failed = checkFailure(report, `${shownPath(outDir.dir)}/`);
    if (failed) throw failed;
  });
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));
const count = (x: number) => x.toLocaleString('en-US');
const sci = (x: number) => (x === 0 ? '0' : Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(4));

function column(m: ModelEval): string[] {
  const a = m.accuracy;
  const l = m.latency;
  return [
    a ? `${pct(a.top1)} [${pct(a.top1Interval.low)}, ${pct(a.top1Interval.high)}]` : '-',
    a?.top5 ? pct(a.top5.accuracy) : '-',
    a ? a.meanTrueProb.toFixed(4) : '-',
    count(m.facts.parameters),
    fileSize(m.facts.bytes.total),
    m.facts.precision,
    l?.batch1 ? `${ms(l.batch1.medianMs)} / ${ms(l.batch1.p90Ms)}` : '-',
    l ? `${count(Math.round(l.batched.imagesPerSecond))} (batch ${l.batched.batch})` : '-',
  ];
}

/** The human summary: a header line, one row per metric with a column per model, then the comparison. */
export function renderEval(report: EvalReport, colour: boolean): string {
  const r = report.results;
  const names = ['top-1 [95% CI]', 'top-5', 'mean p(true)', 'parameters', 'size', 'precision', 'ms/image b=1 (median / p90)', 'images/s'];
  const t = new Table({
    head: ['', path.basename(r.model.path), ...(r.reference ? [`${path.basename(r.reference.path)} (reference)`] : [])],
    style: colour ? {} : { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const cols = [column(r.model), ...(r.reference ? [column(r.reference)] : [])];
  names.forEach((n, i) => t.push([n, ...cols.map((c) => c[i]!)]));
  const lines = [
    `${COMMAND}: ${count(r.images.count)} images (${count(r.images.labelled)} labelled), ${r.classes} classes, provider ${report.runtime?.used ?? '?'}`,
    t.toString(),
  ];
  const c = r.comparison;
  if (c) {
    let s = `agreement ${pct(c.agreement)} (${count(c.agreed)}/${count(c.images)}), mean KL(ref||model) ${sci(c.meanKl)}, max |Δp| ${sci(c.maxAbsProbDiff)}`;
    const d = c.accuracyDifference;
    if (d) s += `\naccuracy difference ${(d.difference * 100).toFixed(2)} points [${(d.interval.low * 100).toFixed(2)}, ${(d.interval.high * 100).toFixed(2)}] (model right / reference right on ${d.modelOnly} / ${d.referenceOnly} discordant images, McNemar p = ${d.mcnemarP.toPrecision(3)})`;
    if (c.speedup !== null) s += `\nthroughput ${c.speedup.toFixed(2)}x the reference's (images/s)`;
    lines.push(s);
  }
  for (const k of r.checks) lines.push(`check ${k.check} ${k.threshold}: ${k.passed ? 'passed' : 'FAILED'} (${k.check === 'min-accuracy' ? `${k.value.toFixed(2)}%` : `drop ${k.value.toFixed(2)} points`})`);
  return lines.join('\n');
}
