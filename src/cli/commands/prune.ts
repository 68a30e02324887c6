// `vitpath prune <model> --images DIR`: remove the FFN neurons an importance criterion ranks lowest,
// physically (a smaller ONNX model), optionally distil it from the original, and report what was
// removed and what it cost (the eval service's before/after on disjoint evaluation images).
import { InvalidArgumentError, Option, type Command } from 'commander';
import Table from 'cli-table3';
import { addCommonOptions, addSchemaOption, intArg, startModelCommand } from '../options.js';
import { addDataOptions, preprocessOverridesOf, type DataFlags } from '../dataOptions.js';
import { runReportCommand } from '../runReport.js';
import { fileSize } from '../output.js';
import { COMMAND, DEFAULTS, runPrune, type PruneReport } from '../../services/prune.js';
import { runPruneSweep, type SweepResults } from '../../services/pruneSweep.js';
import type { Envelope } from '../../report/envelope.js';
import { CRITERIA, type Criterion } from '../../analysis/importance.js';
import { RULES, type QuadratureRule } from '../../analysis/quadrature.js';
import { parseLayerList } from '../../services/tracePath.js';
import { usageError } from '../../errors.js';
import '../../services/pruneSchema.js';

const HELP_AFTER = `
A neuron is one FFN hidden unit (fc1 output column + its bias entry + fc2 input row); removing it
is cut out of the weights, so the written model is smaller and faster, and equals the original
with those neurons set to zero. Criteria (scores at the class token, or the patch mean for
mean-pooled models, on the scoring images; F = softmax probability of the label, else the prediction):
  path        how often the neuron is on an image's influential path (Wang et al.'s greedy search,
              or --from-trace DIR of a trace-path run on every block); ties by the search's mean score
  ig          mean |integrated gradient| of the neuron (its layer's row scaled from 0, --rule, --steps)
  taylor      mean |a · dF/da|           activation  mean |a|
  magnitude   ‖fc1 column‖·‖fc2 row‖     random      seeded
Heads (--heads FRACTION): per block, those of lowest per-head gate Taylor score |dL/dgate| (q/k/v
columns, projection rows and every head-count constant cut); blocks (--drop-blocks N): lowest Block
Influence, the residual stream passing through. --sweep varies the FFN fraction only.
Scoring and evaluation images are disjoint: --eval-images DIR, or a seeded split of --images
(--score-images N, default 1000, at most half).

Outputs in --out (default ./vitpath-out/prune-<time>):
  model.onnx   the pruned model (--save FILE writes it elsewhere)
  report.json  options, scores' provenance, per-block widths, parameters, FFN MACs, fine-tune loss
               curve, the eval service's before/after (accuracy with intervals, agreement, KL,
               latency at batch 1 and --batch, parameters, file size)
  removed.csv  block,kind,index,score of every removed neuron (kind ffn), head (head) and block (block)
  blocks.csv   block,ffn_before,ffn_after,heads_before,heads_after,protected,dropped,block_influence
  eval.csv     the eval metrics (model = pruned, reference = original)

Examples:
  vitpath prune vit.onnx --images val/ --ffn 0.3 --criterion taylor
  vitpath prune vit.onnx --images t10k-images-idx3-ubyte.gz --ffn 0.5 --finetune 300 --out pruned50
  vitpath trace-path vit.onnx --images val/ --out trace && vitpath prune vit.onnx --images val/ --from-trace trace --keep-path-neurons

Exit codes: 0 ok, 1 usage (or an output file exists without --force), 2 bad model/images/trace,
            3 unsupported model, 4 runtime failure, 130/143 interrupted (nothing left that blocks a rerun).`;

interface PruneFlags extends DataFlags {
  criterion: Criterion[];
  sweep?: number[];
  ffn: number;
  scope: 'per-block' | 'global';
  roundTo: number;
  exclude?: number[];
  keepPathNeurons: boolean;
  dropBlocks: number;
  heads: number;
  fromTrace?: string;
  evalImages?: string;
  evalLabels?: string;
  scoreImages: number;
  steps: number;
  rule: QuadratureRule;
  finetune: number;
  kdTemperature: number;
  lr: number;
  save?: string;
  output?: string;
  latency: boolean;
  warmup: number;
  repeat: number;
}

function fractionArg(flag: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v.trim());
    if (v.trim() === '' || !Number.isFinite(x) || x < 0 || x >= 1) throw new InvalidArgumentError(`${flag} is a fraction from 0 up to (not including) 1 (got "${v}").`);
    return x;
  };
}

function criteriaArg(v: string): Criterion[] {
  const list = v.split(',').map((x) => x.trim()).filter(Boolean);
  for (const k of list) if (!(CRITERIA as readonly string[]).includes(k)) throw new InvalidArgumentError(`unknown criterion "${k}"; choose from ${CRITERIA.join(', ')}.`);
  if (list.length === 0) throw new InvalidArgumentError(`--criterion needs one of ${CRITERIA.join(', ')}.`);
  return list as Criterion[];
}

function fractionsArg(v: string): number[] {
  const list = v.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((x) => !Number.isFinite(x) || x < 0 || x >= 1)) throw new InvalidArgumentError(`--sweep is a comma list of fractions from 0 up to (not including) 1 (got "${v}").`);
  return list;
}

function positiveArg(flag: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v.trim());
    if (v.trim() === '' || !Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${flag} must be a positive number (got "${v}").`);
    return x;
  };
}

export function registerPrune(program: Command): void {
  const cmd = program
    .command(COMMAND)
    .description('Remove the FFN neurons that matter least (by neuron paths, attribution, activation, magnitude or at random) and write a smaller ONNX model, with a before/after evaluation.')
    .argument('[model]', 'the ViT as .onnx (not needed with --schema)')
    .addOption(new Option('--criterion <name>', `importance criterion: ${CRITERIA.join(', ')} (a comma list with --sweep)`).argParser(criteriaArg).default(['path']))
    .addOption(new Option('--sweep <fractions>', 'evaluate accuracy at each fraction removed (e.g. 0.1,0.3,0.5) for each --criterion; writes curves.csv and curves.svg, no model').argParser(fractionsArg))
    .addOption(new Option('--ffn <fraction>', 'fraction of FFN neurons to remove').argParser(fractionArg('--ffn')).default(DEFAULTS.ffn))
    .addOption(new Option('--scope <scope>', 'remove the fraction from every block, or over all blocks (scores relative to their block mean)').choices(['per-block', 'global']).default('per-block'))
    .addOption(new Option('--round-to <n>', 'kept widths are multiples of this').argParser(intArg('--round-to', 1)).default(DEFAULTS.roundTo))
    .addOption(new Option('--exclude <blocks>', 'blocks left whole, e.g. 0,11 or 0-2').argParser((v) => parseLayerList(v)))
    .option('--keep-path-neurons', "never remove a neuron on a class's preferred path", false)
    .addOption(new Option('--heads <fraction>', 'fraction of attention heads to remove per block, lowest per-head gate Taylor score |dL/dgate| on the scoring images').argParser(fractionArg('--heads')).default(0))
    .addOption(new Option('--drop-blocks <n>', 'also remove this many whole blocks, those of lowest Block Influence on the scoring images').argParser(intArg('--drop-blocks', 0)).default(0))
    .option('--from-trace <dir>', 'read the paths of a trace-path run (its --out folder) instead of searching')
    .option('--eval-images <dir>', 'evaluation images (default: a seeded split of --images)')
    .option('--eval-labels <file>', 'labels CSV for --eval-images')
    .addOption(new Option('--score-images <n>', 'scoring images taken from --images when splitting').argParser(intArg('--score-images', 1)).default(DEFAULTS.scoreImages))
    .addOption(new Option('--steps <n>', 'integration steps of ig and the path search').argParser(intArg('--steps', 1)).default(DEFAULTS.steps))
    .addOption(new Option('--rule <name>', 'integration rule of ig and the path search').choices([...RULES]).default(DEFAULTS.rule))
    .addOption(new Option('--finetune <steps>', 'distil the pruned model from the original for this many Adam steps on the scoring images').argParser(intArg('--finetune', 0)).default(0))
    .addOption(new Option('--kd-temperature <t>', 'softmax temperature of the distillation').argParser(positiveArg('--kd-temperature')).default(DEFAULTS.kdTemperature))
    .addOption(new Option('--lr <rate>', 'Adam learning rate of the fine-tune').argParser(positiveArg('--lr')).default(DEFAULTS.lr))
    .option('--save <file>', 'write the pruned model here instead of <out>/model.onnx')
    .option('--output <name>', 'graph output holding the logits (default: located)')
    .option('--no-latency', 'skip the latency measurement of the evaluation')
    .addOption(new Option('--warmup <n>', 'untimed runs before each latency measurement').argParser(intArg('--warmup', 0, 100000)).default(DEFAULTS.warmup))
    .addOption(new Option('--repeat <n>', 'timed runs per latency measurement').argParser(intArg('--repeat', 1, 100000)).default(DEFAULTS.repeat));
  addDataOptions(cmd);
  addCommonOptions(cmd, { batch: DEFAULTS.batch, seed: DEFAULTS.seed });
  addSchemaOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (modelArg: string | undefined, flags: PruneFlags, c: Command) => {
    const start = startModelCommand(COMMAND, modelArg, flags.images, c.opts(), { model: 'prune needs a model: vitpath prune model.onnx --images DIR (see vitpath prune --help).', images: 'prune needs --images (a folder, list, image or IDX file) to score and evaluate on.' });
    if (!start) return;
    const { model, images, common } = start;
    const options = {
      images,
      labels: flags.labels,
      evalImages: flags.evalImages,
      evalLabels: flags.evalLabels,
      scoreImages: flags.scoreImages,
      limit: common.limit,
      criterion: flags.criterion[0]!,
      ffn: flags.ffn,
      scope: flags.scope,
      roundTo: flags.roundTo,
      exclude: flags.exclude,
      keepPathNeurons: flags.keepPathNeurons,
      dropBlocks: flags.dropBlocks,
      heads: flags.heads,
      fromTrace: flags.fromTrace,
      steps: flags.steps,
      rule: flags.rule,
      seed: common.seed,
      finetune: flags.finetune,
      kdTemperature: flags.kdTemperature,
      lr: flags.lr,
      output: flags.output,
      preprocess: preprocessOverridesOf(flags),
      batch: common.batch,
      latency: flags.latency,
      warmup: flags.warmup,
      repeat: flags.repeat,
      save: flags.save,
    };
    if (flags.criterion.length > 1 && !flags.sweep) throw usageError('several --criterion values need --sweep (one pruned model is written per run).');
    const runtimeOpts = { provider: common.provider, deviceId: common.deviceId, threads: common.threads, out: common.out, force: common.force };
    if (flags.sweep) {
      await runReportCommand({ label: COMMAND, flags: common, render: renderSweep }, (hooks) =>
        runPruneSweep(model, { ...options, ...runtimeOpts, criteria: flags.criterion, fractions: flags.sweep!, reportOptions: { ...options, criterion: flags.criterion, sweep: flags.sweep, provider: common.provider, threads: common.threads } }, hooks),
      );
      return;
    }
    await runReportCommand({ label: COMMAND, flags: common, render: renderPrune }, (hooks) =>
      runPrune(model, { ...options, ...runtimeOpts, reportOptions: { ...options, provider: common.provider, threads: common.threads } }, hooks),
    );
  });
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));
const count = (x: number) => x.toLocaleString('en-US');

/** The human summary: what was removed, then original vs pruned side by side. */
export function renderPrune(report: PruneReport, colour: boolean): string {
  const r = report.results;
  const e = r.evaluation;
  const widths = r.blocks
    .map((b) => (b.dropped ? `dropped (BI ${b.blockInfluence?.toFixed(3)})` : `${b.ffnBefore}->${b.ffnAfter}${r.policy.heads > 0 && b.headsBefore !== null ? ` (heads ${b.headsBefore}->${b.headsAfter})` : ''}`))
    .join(', ');
  const lines = [
    `${COMMAND}: criterion ${r.criterion}, ${pct(r.ffn.removedFraction)} of FFN neurons removed (${count(r.ffn.before - r.ffn.after)} of ${count(r.ffn.before)}; asked ${pct(r.policy.ffn)} ${r.policy.scope}, widths rounded to ${r.policy.roundTo})`,
    `per block: ${widths}`,
    `scoring: ${r.scoring.images ? `${count(r.scoring.images)} images` : 'weights only'}; ${r.scoring.split}`,
  ];
  if (r.finetune) {
    const first = r.finetune.loss[0]?.kl ?? NaN;
    const last = r.finetune.loss[r.finetune.loss.length - 1]?.kl ?? NaN;
    lines.push(`fine-tune: ${r.finetune.steps} steps (T ${r.finetune.temperature}, lr ${r.finetune.lr}), KL ${first.toPrecision(3)} -> ${last.toPrecision(3)}`);
  }
  const t = new Table({ head: ['', 'original', 'pruned'], style: colour ? {} : { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  const m = e.model;
  const ref = e.reference!;
  const acc = (x: typeof m) => (x.accuracy ? `${pct(x.accuracy.top1)} [${pct(x.accuracy.top1Interval.low)}, ${pct(x.accuracy.top1Interval.high)}]` : '-');
  t.push(['top-1 [95% CI]', acc(ref), acc(m)]);
  t.push(['parameters', count(r.parameters.before), count(r.parameters.after)]);
  t.push(['FFN MACs / image', count(r.ffnMacsPerImage.before), count(r.ffnMacsPerImage.after)]);
  t.push(['file size', fileSize(ref.facts.bytes.total), fileSize(m.facts.bytes.total)]);
  t.push(['ms/image b=1 (median)', ref.latency?.batch1 ? ms(ref.latency.batch1.medianMs) : '-', m.latency?.batch1 ? ms(m.latency.batch1.medianMs) : '-']);
  t.push([`images/s (batch ${m.latency?.batched.batch ?? '-'})`, ref.latency ? count(Math.round(ref.latency.batched.imagesPerSecond)) : '-', m.latency ? count(Math.round(m.latency.batched.imagesPerSecond)) : '-']);
  lines.push(t.toString());
  const cmp = e.comparison;
  if (cmp) {
    let s = `on ${count(e.images.count)} evaluation images: agreement ${pct(cmp.agreement)}, mean KL(original||pruned) ${cmp.meanKl.toPrecision(3)}`;
    const d = cmp.accuracyDifference;
    if (d) s += `, accuracy difference ${(d.difference * 100).toFixed(2)} points [${(d.interval.low * 100).toFixed(2)}, ${(d.interval.high * 100).toFixed(2)}]`;
    lines.push(s);
  }
  lines.push(`model: ${r.output.path} (${fileSize(r.output.bytes)})`);
  return lines.join('\n');
}

/** The sweep summary: one row per fraction, one column per criterion (top-1, or agreement without labels). */
export function renderSweep(report: Envelope<SweepResults>, colour: boolean): string {
  const r = report.results;
  const labelled = r.original.top1 !== null;
  const t = new Table({ head: ['removed', ...r.criteria], style: colour ? {} : { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  for (const f of r.fractions) {
    const row = r.criteria.map((k) => {
      const p = r.points.find((x) => x.criterion === k && x.fraction === f)!;
      return `${pct(labelled ? p.top1! : p.agreement)} (${pct(p.removedFraction)})`;
    });
    t.push([pct(f), ...row]);
  }
  return [
    `${COMMAND} --sweep: ${labelled ? 'top-1 accuracy' : 'agreement with the original'} (fraction actually removed) on ${r.evaluation.images} evaluation images; original ${labelled ? pct(r.original.top1!) : ''}`,
    `scoring: ${r.scoring.images ? `${r.scoring.images} images` : 'weights only'}; ${r.scoring.split}`,
    t.toString(),
  ].join('\n');
}
