// `vitpath probe-layers <model> --images DIR`: per-layer logit lens, linear probes, redundancy
// (Block Influence), attention/MLP ablation and neuron statistics over labelled images; writes
// report.json, layers.csv and layers.svg and prints a summary table.
import { InvalidArgumentError, Option, type Command } from 'commander';
import Table from 'cli-table3';
import { addCommonOptions, addMaxMemoryOption, addSchemaOption, intArg, runtimeOptionsOf, startModelCommand } from '../options.js';
import { addDataOptions, addSkipBadImagesOption, preprocessOverridesOf, type DataFlags } from '../dataOptions.js';
import { runReportCommand } from '../runReport.js';
import type { HeadChoice } from '../../vit/types.js';
import { DEFAULTS, runProbeLayers } from '../../services/probeLayers.js';
import { COMMAND, type ProbeLayersReport } from '../../services/probeSchema.js';
import type { TokenChoice } from '../../vit/tokens.js';
import { usageError } from '../../errors.js';

const HELP_AFTER = `
What it measures, per transformer block (0-based), over labelled images:
  logit lens      the model's own final norm + head applied to the block output (extracted from
                  the graph and run as ONNX): top-1 accuracy, mean true-class probability, mean
                  KL(final output || lens). At the last block it equals the model's output.
  linear probe    k-fold (--folds) cross-validated multinomial logistic regression (L2 --l2,
                  standardized features), on the block output row and on the FFN neuron row.
  redundancy      1 - cos(input, output) averaged over tokens and images (Block Influence), for the
                  attention sub-block, the MLP sub-block and the whole block. Near 0 = the block
                  barely changes the representation.
  ablation        accuracy and true-class probability with the attention (or MLP) branch of the
                  block removed (zeroed), one at a time; drops are against all branches on.
  neurons         mean activation, fraction of dead neurons (|a| <= --dead-threshold on every
                  image) and the mean |integrated gradient| mass of the true-class probability as
                  the block's neuron row is scaled from 0 (--steps; skip with --no-attribution).
The row is the class token (--token cls), the mean of the rows the head averages (--token mean,
the default for mean-pooled models; the patch rows for class-token models) or a token index.
Distilled models (DeiT): the lens and the ablations read the average of both heads by default;
--head cls or --head dist reads one (dist reads the distillation row). float16 models are
analysed in float32 with their float16 weights converted exactly.

Outputs in --out (default ./vitpath-out/probe-layers-<time>):
  report.json   everything, schema versioned (print the schema with --schema)
  layers.csv    one row per layer and metric family (layer,family,accuracy,...)
  layers.svg    the per-layer curves (lens and probe accuracy, redundancy, ablation drops)

Examples:
  vitpath probe-layers vit.onnx --images val/ --limit 1000
  vitpath probe-layers vit.onnx --images imgs/ --labels labels.csv --no-attribution --json | jq '.results.layers[].probe.accuracy'

Unreadable images stop the run naming the file (exit 2); --skip-bad-images leaves them out instead,
names each on stderr and lists them in report.json (results.images.skipped).

Exit codes: 0 ok, 1 usage (or a report file exists without --force), 2 bad model/images or
            images without labels, an --out that cannot be written or is in use by another
            run, 3 unsupported model, 4 runtime failure, 130/143 interrupted (Ctrl-C/SIGTERM:
            probe-layers keeps no partial results; rerun it).`;

interface ProbeFlags extends DataFlags {
  output?: string;
  folds: number;
  token?: string;
  head?: HeadChoice;
  attribution: boolean;
  steps: number;
  l2: number;
  deadThreshold: number;
  cacheDir?: string;
  maxMemory?: number;
}

function parseToken(v: string | undefined): TokenChoice | undefined {
  if (v === undefined) return undefined;
  if (v === 'cls' || v === 'mean') return v;
  if (/^\d+$/.test(v)) return Number(v);
  throw usageError(`--token takes cls, mean or a token index (got "${v}")`);
}

function nonNegFloat(flag: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`${flag} must be a non-negative number (got "${v}").`);
    return x;
  };
}

export function registerProbeLayers(program: Command): void {
  const cmd = program
    .command(COMMAND)
    .description('Per-layer picture of a ViT over labelled images: logit lens, linear probes, redundancy, branch ablation, neuron statistics.')
    .argument('[model]', 'the ViT as .onnx (not needed with --schema)')
    .option('--output <name>', 'graph output holding the logits (default: the [batch, classes] output)')
    .addOption(new Option('--folds <k>', 'cross-validation folds of the linear probes').argParser(intArg('--folds', 2, 1000)).default(DEFAULTS.folds))
    .option('--token <t>', 'row to read: cls, mean (the average of the rows a mean-pooled head reads; the patch rows otherwise) or a token index (default follows the head)')
    .addOption(new Option('--head <h>', 'distilled models (DeiT): read the average of both heads (the model output), the class-token head or the distillation-token head').choices(['avg', 'cls', 'dist']))
    .option('--no-attribution', 'skip the integrated-gradient mass (the slowest part)')
    .addOption(new Option('--steps <m>', 'Riemann steps of the integrated gradients').argParser(intArg('--steps', 1, 10000)).default(DEFAULTS.igSteps))
    .addOption(new Option('--l2 <lambda>', 'L2 strength of the probes (mean-loss form; 1/n matches scikit-learn C=1)').argParser(nonNegFloat('--l2')).default(DEFAULTS.l2))
    .addOption(new Option('--dead-threshold <x>', 'a neuron is dead when |activation| <= x on every image').argParser(nonNegFloat('--dead-threshold')).default(DEFAULTS.deadThreshold))
    .option('--cache-dir <dir>', 'keep generated gradient graphs here and reuse them across runs');
  addMaxMemoryOption(cmd, 'images per forward and per attribution run', 'none: --batch images per forward run, attribution runs of one image on ViT-S/16-sized models and larger');
  addDataOptions(cmd);
  addSkipBadImagesOption(cmd);
  addCommonOptions(cmd, { batch: DEFAULTS.batch, seed: DEFAULTS.seed });
  addSchemaOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (modelArg: string | undefined, flags: ProbeFlags, c: Command) => {
    const start = startModelCommand(COMMAND, modelArg, flags.images, c.opts(), { model: 'probe-layers needs a model: `vitpath probe-layers model.onnx --images DIR` (see --help).', images: 'probe-layers needs --images (a folder, list, image or IDX file) with labels.' });
    if (!start) return;
    const { model, images, common } = start;
    const token = parseToken(flags.token);
    const reportOptions = {
      images,
      labels: flags.labels,
      limit: common.limit,
      output: flags.output,
      folds: flags.folds,
      token: token ?? 'default',
      head: flags.head ?? 'default',
      attribution: flags.attribution,
      steps: flags.steps,
      l2: flags.l2,
      deadThreshold: flags.deadThreshold,
      batch: common.batch,
      seed: common.seed,
      provider: common.provider,
      threads: common.threads,
      preprocess: preprocessOverridesOf(flags),
      ...(flags.skipBadImages ? { skipBadImages: true } : {}),
      ...(flags.maxMemory !== undefined ? { maxMemory: flags.maxMemory } : {}),
    };
    await runReportCommand({ label: COMMAND, flags: common, render: renderProbeLayers }, (hooks) =>
      runProbeLayers(
        model,
        {
          images: images,
          labels: flags.labels,
          limit: common.limit,
          output: flags.output,
          folds: flags.folds,
          token,
          head: flags.head,
          attribution: flags.attribution,
          igSteps: flags.steps,
          l2: flags.l2,
          deadThreshold: flags.deadThreshold,
          batch: common.batch,
          seed: common.seed,
          preprocess: preprocessOverridesOf(flags),
          runtime: { ...runtimeOptionsOf(common), notice: hooks.notice },
          cacheDir: flags.cacheDir,
          ...(flags.maxMemory !== undefined ? { maxMemory: flags.maxMemory } : {}),
          out: common.out,
          force: common.force,
          reportOptions,
          skipBadImages: flags.skipBadImages,
        },
        hooks,
      ),
    );
  });
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? '' : '-'}${Math.abs(x * 100).toFixed(1)}`;
const f3 = (x: number | null) => (x === null ? '-' : Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(1) : x.toFixed(3));

/** The human summary: a header line and one row per block. */
export function renderProbeLayers(report: ProbeLayersReport, colour: boolean): string {
  const r = report.results;
  const t = new Table({
    head: ['block', 'lens acc', 'lens p(true)', 'lens KL', 'probe acc', 'neuron probe', 'BI attn', 'BI mlp', 'BI block', 'abl attn Δacc', 'abl mlp Δacc', 'dead', 'IG mass'],
    style: colour ? {} : { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const x of r.layers) {
    t.push([
      String(x.layer),
      pct(x.logitLens.accuracy),
      f3(x.logitLens.meanTrueProb),
      f3(x.logitLens.meanKl),
      `${pct(x.probe.accuracy)} ± ${pts(x.probe.std)}`,
      `${pct(x.neuronProbe.accuracy)} ± ${pts(x.neuronProbe.std)}`,
      f3(x.redundancy.attention),
      f3(x.redundancy.mlp),
      f3(x.redundancy.block),
      pts(x.ablation.attention.accuracyDrop),
      pts(x.ablation.mlp.accuracyDrop),
      pct(x.neurons.deadFraction),
      f3(x.neurons.igMass),
    ]);
  }
  const head =
    `probe-layers: ${r.images.count} images, ${r.layers.length} blocks, token ${r.token} (lens reads ${r.lensInput === 'tokens' ? "the whole stream through the model's head" : 'the row'}), provider ${report.runtime?.used ?? '?'}\n` +
    `model accuracy ${pct(r.model.accuracy)} (mean p(true) ${f3(r.model.meanTrueProb)}); chance ${pct(r.chance.uniform)} uniform, ${pct(r.chance.majority)} majority class; ` +
    `probes ${r.probeSettings.folds}-fold, l2 ${r.probeSettings.l2}; Δacc in points; IG ${r.neuronSettings.igSteps === null ? 'skipped' : `${r.neuronSettings.igSteps} steps`}`;
  return `${head}\n${t.toString()}`;
}
