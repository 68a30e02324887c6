// `vitpath trace-path <model> --images DIR`: find each image's influential neuron path, compare it
// with baseline paths, test it by removing/enhancing it, and aggregate paths per class.
import { Option, InvalidArgumentError, type Command } from 'commander';
import Table from 'cli-table3';
import { addCommonOptions, addMaxMemoryOption, addSchemaOption, intArg, runtimeOptionsOf, startModelCommand } from '../options.js';
import { addDataOptions, addSkipBadImagesOption, preprocessOverridesOf, type DataFlags } from '../dataOptions.js';
import { runReportCommand } from '../runReport.js';
import { tracePath, parseLayerList, MIN_TOP_K, type TracePathOptions } from '../../services/tracePath.js';
import type { MethodSummary } from '../../services/traceCore.js';
import type { TraceResults } from '../../services/traceSchema.js';
import { BASELINES, type BaselineName } from '../../analysis/baselines.js';
import { RULES, type QuadratureRule } from '../../analysis/quadrature.js';
import type { Prefilter, SearchScore } from '../../analysis/beamSearch.js';
import { SEARCH_BASELINES, type SearchBaseline, type SearchStrategy } from '../../services/traceCore.js';
import { usageError } from '../../errors.js';
import { parseShardSpec, resolveShard, type ResolvedShard, type Shard } from '../shard.js';
import type { Envelope } from '../../report/envelope.js';
import type { HeadChoice } from '../../vit/types.js';
import '../../services/traceSchema.js';

const HELP_AFTER = `
The method (Wang et al., "Discovering Influential Neuron Path in Vision Transformers", ICLR 2025):
  A neuron is one FFN hidden unit after the activation, at the class token (for mean-pooled
  models, averaged over the rows the head averages; --token overrides). The Joint Attribution
  Score of a set of neurons integrates the target probability's gradient while the set is scaled from
  0 to its clean values (--steps evaluations of --rule, left Riemann in the paper). The paper's greedy
  search goes layer by layer: one pass scales the layer's whole row and the neurons chosen before,
  and each candidate is scored by the JAS form (--jas) of the chosen neurons plus it computed from
  that pass (an approximation of the path's JAS, not the JAS it ends with). --search beam keeps
  --beam partial paths per layer; --search effect keeps, per layer, the neuron whose removal with the
  path so far lowers the probability most (--candidates best by attribution, ablated one by one).
  Every path, and the baselines' (activation, influence, ig-layer, random, or other searches:
  greedy, beam, effect), gets the same scores: JAS in both forms, the completeness gap, and the
  change of the target probability when the path is removed (set to 0) or enhanced (doubled).

Distilled models (DeiT, a class and a distillation head averaged): F is taken from the averaged
  logits by default; --head cls or --head dist explains one head (dist reads the distillation row).
float16 models are analysed in float32 with their float16 weights converted exactly (one notice).

Outputs in --out (default ./vitpath-out/trace-path-<time>):
  report.json     everything, schema versioned (print the schema with --schema)
  paths.csv       image, method, layer, neuron, activation, score
  images.csv      one row per image and method: JAS (both forms), completeness gap, remove/enhance
  classes.csv     class, layer, neuron, count, share, preferred, class_images, path_shared per target class
  similarity.csv  class-to-class cosine similarity of those counts (the classes that have images)
  classes.svg, similarity.svg, ratios.svg, path-<i>.svg (--plot-images N): pictures, each with its
                  vega-lite spec (.vl.json) beside it
  progress.jsonl  one line per finished image; --resume continues from it
report.json is written last: a folder without it holds an unfinished run. While a run writes into
--out, the folder is locked (.vitpath.lock): a second run on it stops with exit 2. A run that fails
or is interrupted before finishing an image leaves nothing that blocks a plain rerun.

Interrupting (Ctrl-C or SIGTERM) prints "interrupted after N of M images; continue with --resume
--out DIR" and exits 130 (SIGINT) or 143 (SIGTERM); finished images are kept in progress.jsonl.
Unreadable images stop the run naming the file (exit 2); --skip-bad-images leaves them out
instead, names each on stderr and lists them in report.json (results.skipped). With labels for
only some images, a notice says how many: accuracy figures are over the labelled ones.

CPU use: --threads N runs N single-threaded ONNX Runtime sessions in worker threads (at most 8;
  more threads are split among them), each taking an equal share of every batch; 0 (the default)
  uses every core; --threads 1 runs one session on the main thread. Results do not depend on it
  beyond float rounding (~1e-5).

Memory: every gradient session holds the weights (about twice their size) and each sample of a run
  its activations (about 100 MB on ViT-S/16, 200 MB on ViT-B/16), so big models run one sample per
  session. --max-memory 6GB plans for a budget: fewer samples per run, then fewer sessions
  (their threads go intra-op), until the estimated peak fits; the plan is printed and kept in
  report.json (runtime.memory). It is an estimate, not a limit: ask a scheduler for ~20% more.
  Default budget: 60% of the machine's memory.

Examples:
  vitpath demo                                            the built-in digits model and images
  vitpath trace-path vit.onnx --images val/ --limit 100   first 100 images of an ImageFolder tree
  vitpath trace-path vit.onnx --images imgs/ --labels labels.csv --baselines activation,random
  vitpath trace-path vit.onnx --images val/ --shard 3/8 --out run3   one job of an 8-way job array
  vitpath trace-path vit.onnx --images val/ --shard auto --out run/$SLURM_ARRAY_TASK_ID   (sbatch --array=0-7)
  vitpath merge run/all run/*                              one report from the shards' folders (docs/cluster.md)
  vitpath trace-path vit.onnx --images val/ --search effect --baselines greedy,ig-layer   compare searches
  vitpath trace-path vit.onnx --images val/ --steps auto --plot-images 3   cheapest accurate rule, 3 path diagrams
  vitpath trace-path vit.onnx --images val/ --json | jq '.results.summary'

Exit codes: 0 ok, 1 usage (also --shard auto outside a Slurm array or Kubernetes Indexed Job), 2 bad
            model/images/labels or an --out that cannot be written or is in use, 3 unsupported model or operator, 4 runtime failure, 130/143 interrupted.`;

interface TraceFlags extends DataFlags {
  output?: string;
  target: string;
  objective: 'prob' | 'logit';
  steps: number | 'auto';
  maxError?: number;
  rule: QuadratureRule;
  jas: 'product' | 'sum';
  search: SearchStrategy;
  score?: SearchScore;
  beam: number;
  candidates: number;
  prefilter: Prefilter;
  plotImages: number;
  baselines: string;
  topK: number;
  token?: string;
  head?: HeadChoice;
  layers?: string;
  shard?: Shard | 'auto';
  shardCount?: number;
  resume: boolean;
  cacheDir?: string;
  maxMemory?: number;
}

function parseShard(v: string): Shard | 'auto' {
  try {
    return parseShardSpec(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** The resolved shard without its source; --shard auto says on stderr which shard it took. */
function shardOf(r: ResolvedShard | undefined, quiet: boolean): Shard | undefined {
  if (!r) return undefined;
  if (r.source !== 'explicit' && !quiet) process.stderr.write(`vitpath: --shard auto: shard ${r.index}/${r.count} (from the ${r.source === 'slurm' ? 'Slurm job array' : 'Kubernetes Indexed Job'})\n`);
  return { index: r.index, count: r.count };
}

function parseBaselines(v: string): (BaselineName | SearchBaseline)[] {
  if (v === 'none' || v === '') return [];
  if (v === 'all') return [...BASELINES];
  const known = [...BASELINES, ...SEARCH_BASELINES] as string[];
  const list = v.split(',').map((s) => s.trim());
  for (const b of list) if (!known.includes(b)) throw usageError(`--baselines: unknown baseline "${b}"; choose from ${known.join(', ')}, all or none`);
  return [...new Set(list)] as (BaselineName | SearchBaseline)[];
}

function parseSteps(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  return intArg('--steps', 1, 10000)(v);
}

function parseMaxError(v: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`--max-error takes a positive number, e.g. 0.01 (got "${v}").`);
  return x;
}

function parseToken(v: string | undefined): 'cls' | 'mean' | number | undefined {
  if (v === undefined) return undefined;
  if (v === 'cls' || v === 'mean') return v;
  if (/^\d+$/.test(v)) return Number(v);
  throw usageError(`--token takes cls, mean or a token index (got "${v}")`);
}

function parseTarget(v: string): TracePathOptions['target'] {
  if (v === 'auto' || v === 'label' || v === 'pred') return v;
  if (/^\d+$/.test(v)) return Number(v);
  throw usageError(`--target takes label, pred, auto or a class index (got "${v}")`);
}

export function registerTracePath(program: Command): void {
  const cmd = program
    .command('trace-path')
    .description('Find the influential neuron path of each image (JAS, layer-progressive search), compare it with baselines, remove/enhance it, aggregate per class.')
    .argument('[model]', 'the ViT as .onnx (run `vitpath demo` to try the built-in model)')
    .option('--output <name>', 'graph output holding the logits (default: the [batch, classes] output)')
    .option('--target <which>', 'class to explain: auto (label if known, else prediction), label, pred, or a class index', 'auto')
    .addOption(new Option('--objective <f>', 'F to attribute: softmax probability of the target (the paper) or its logit').choices(['prob', 'logit']).default('prob'))
    .addOption(new Option('--steps <m>', 'steps (evaluations) of every integrated gradient, or auto: the cheapest rule and steps whose completeness error on the first images is at most --max-error').argParser(parseSteps).default(20))
    .addOption(new Option('--rule <rule>', 'integration rule of the integrated gradients: left (the paper\'s Riemann sum), right, midpoint, trapezoid, gauss (Gauss-Legendre)').choices([...RULES]).default('left'))
    .addOption(new Option('--max-error <e>', 'with --steps auto: relative completeness error to reach (default: what left with 20 steps gives on the same images)').argParser(parseMaxError))
    .addOption(new Option('--search <strategy>', 'how the path is found: greedy (the paper\'s, layer by layer), beam (keep --beam partial paths), effect (greedy on the measured removal effect)').choices(['greedy', 'beam', 'effect']).default('greedy'))
    .addOption(new Option('--score <what>', 'what the search maximises: product or sum (JAS forms), effect (drop of F when the path is removed) (default: --jas, effect for --search effect)').choices(['product', 'sum', 'effect']))
    .addOption(new Option('--beam <B>', 'partial paths kept per layer by --search beam').argParser(intArg('--beam', 1, 1000)).default(4))
    .addOption(new Option('--candidates <C>', 'effect score: neurons ablated per layer, the best C by attribution').argParser(intArg('--candidates', 1, 1000000)).default(16))
    .addOption(new Option('--prefilter <how>', 'effect score: attribution choosing the candidates: taylor (activation x gradient, 1 sample) or ig (integrated gradients, --steps samples)').choices(['taylor', 'ig']).default('taylor'))
    .addOption(new Option('--jas <form>', 'JAS form the greedy/beam search ranks by when --score is not given: product (official code) or sum').choices(['product', 'sum']).default('product'))
    .option('--baselines <list>', `comma list of ${BASELINES.join(', ')}, or other searches ${SEARCH_BASELINES.join(', ')}; all (= the first four) / none`, 'all')
    .addOption(new Option('--plot-images <N>', 'draw the path diagram of the first N images (path-<index>.svg)').argParser(intArg('--plot-images', 0, 1000)).default(0))
    .addOption(new Option('--top-k <k>', `candidates recorded per layer (at least ${MIN_TOP_K})`).argParser(intArg('--top-k', MIN_TOP_K, 100000)).default(MIN_TOP_K))
    .option('--token <t>', 'neuron row: cls, mean (the average of the rows a mean-pooled head reads; the patch rows otherwise) or a token index (default follows the head)')
    .addOption(new Option('--head <h>', 'distilled models (DeiT): explain the average of both heads (the model output), the class-token head or the distillation-token head').choices(['avg', 'cls', 'dist']))
    .option('--layers <list>', 'blocks to search, e.g. 0-5 or 0,2,4 (default all)')
    .addOption(new Option('--shard <K/N|auto>', 'process every N-th image starting at K (job arrays; vitpath merge joins the shards); auto: K and N from a Slurm job array or a Kubernetes Indexed Job').argParser(parseShard))
    .addOption(new Option('--shard-count <N>', 'with --shard auto in a Kubernetes Indexed Job: the number of shards (the Job\'s completions)').argParser(intArg('--shard-count', 1)))
    .option('--resume', 'continue an interrupted run in --out from its progress.jsonl', false)
    .option('--cache-dir <dir>', 'keep generated gradient graphs here and reuse them across runs');
  addMaxMemoryOption(cmd, 'sessions and samples per run', "60% of the machine's memory");
  addDataOptions(cmd);
  addSkipBadImagesOption(cmd);
  addCommonOptions(cmd, { batch: 16 });
  addSchemaOption(cmd);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (modelArg: string | undefined, flags: TraceFlags, c: Command) => {
    const start = startModelCommand('trace-path', modelArg, flags.images, c.opts(), { model: 'trace-path needs a model: `vitpath trace-path model.onnx --images DIR`. To try it on the built-in digits model and images, run `vitpath demo`.', images: 'trace-path needs --images (a folder, list, image or IDX file). To try it on built-in images, run `vitpath demo`.' });
    if (!start) return;
    const { model, images, common } = start;
    if (flags.resume && !common.out) throw usageError('--resume needs --out naming the folder of the run to continue.');
    const opts: TracePathOptions = {
      model,
      images,
      labels: flags.labels,
      output: flags.output,
      target: parseTarget(flags.target),
      objective: flags.objective,
      steps: flags.steps,
      rule: flags.rule,
      maxError: flags.maxError,
      jas: flags.jas,
      search: flags.search,
      score: flags.score,
      beam: flags.beam,
      candidates: flags.candidates,
      prefilter: flags.prefilter,
      plotImages: flags.plotImages,
      baselines: parseBaselines(flags.baselines),
      topK: flags.topK,
      token: parseToken(flags.token),
      head: flags.head,
      layers: flags.layers ? parseLayerList(flags.layers) : undefined,
      batch: common.batch,
      seed: common.seed,
      limit: common.limit,
      shard: shardOf(resolveShard(flags.shard, flags.shardCount), common.quiet),
      resume: flags.resume,
      out: common.out,
      force: common.force,
      ...runtimeOptionsOf(common),
      provider: common.provider,
      deviceId: common.deviceId,
      threads: common.threads,
      preprocess: preprocessOverridesOf(flags),
      cacheDir: flags.cacheDir,
      ...(flags.maxMemory !== undefined ? { maxMemory: flags.maxMemory } : {}),
      ...(flags.skipBadImages ? { skipBadImages: true } : {}),
    };
    await runTracePathCli(opts, common);
  });
}

/** Run the service with progress on stderr and print the summary (or the JSON report). */
export async function runTracePathCli(
  opts: TracePathOptions,
  flags: { json: boolean; quiet: boolean },
  as: { title: string; resumable: boolean } = { title: 'trace-path', resumable: true },
): Promise<Envelope<TraceResults>> {
  const resume = as.resumable ? (dir: string) => `--resume --out ${dir}` : undefined;
  const { report } = await runReportCommand({ label: as.title, flags, resume, render: renderTraceSummary }, (hooks) => tracePath(opts, hooks));
  return report;
}

const fmt = (x: number | null, d = 4) => (x === null || !Number.isFinite(x) ? '-' : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(d));

export function renderTraceSummary(report: Envelope<TraceResults>, colour: boolean): string {
  const r = report.results;
  const style = colour ? {} : { head: [], border: [] };
  const t = new Table({
    head: ['method', 'mean JAS\n(product)', 'mean JAS\n(sum)', 'remove ratio\nmean / median', 'enhance ratio\nmean / median', 'top-1 flips\nby remove', 'acc. change\nremove / enh.'],
    style,
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const row = (s: MethodSummary) => [
    s.method === 'path' ? 'path (ours)' : s.method,
    fmt(s.meanJasProduct),
    fmt(s.meanJasSum),
    `${fmt(s.meanRemoveRatio, 3)} / ${fmt(s.medianRemoveRatio, 3)}`,
    `${fmt(s.meanEnhanceRatio, 3)} / ${fmt(s.medianEnhanceRatio, 3)}`,
    `${(s.removeTop1Changed * 100).toFixed(1)}%`,
    s.removeAccuracyDeviation === null ? '-' : `${(s.removeAccuracyDeviation * 100).toFixed(1)} / ${(s.enhanceAccuracyDeviation! * 100).toFixed(1)} pt`,
  ];
  for (const s of r.summary) t.push(row(s));
  const p = r.summary.find((s) => s.method === 'path')!;
  const labelled = r.images.filter((im) => im.label !== null).length;
  const head = [
    `trace-path: ${r.images.length} image${r.images.length === 1 ? '' : 's'}, ${r.settings.layers.length} layers, ${r.settings.steps} steps, JAS ${r.settings.jas}, token ${r.settings.token}, provider ${report.runtime?.used ?? '?'}` +
      (r.accuracy !== null ? `, clean accuracy ${(r.accuracy * 100).toFixed(2)}%` : ''),
    `completeness: mean |JAS(sum) - (F(clean) - F(path zeroed))| = ${fmt(p.meanCompletenessError)} (mean gap ${fmt(p.meanCompletenessGap)})`,
  ];
  const first = r.images[0];
  if (first) {
    const fp = first.methods.find((m) => m.method === 'path')!;
    head.push(`example: ${first.id} (target ${first.target}, p=${fmt(first.pBase, 3)}): path ${fp.path.map((n, i) => `L${r.settings.layers[i]}:${n}`).join(' -> ')}`);
  }
  if (r.accuracy !== null && labelled < r.images.length) head.push(`accuracy figures (clean accuracy, acc. change) are over the ${labelled} labelled images of the ${r.images.length}`);
  if (r.skipped?.length) head.push(`skipped ${r.skipped.length} unreadable image${r.skipped.length === 1 ? '' : 's'} (results.skipped in report.json)`);
  return [...head, t.toString(), ...classLines(r, colour)].join('\n');
}

/** Classes shown in the summary's class table at most (the rest are in classes.csv and report.json). */
export const SUMMARY_CLASSES = 20;

/** Per class: images, preferred path, images sharing it, share of images with the preferred neuron per layer. */
function classLines(r: TraceResults, colour: boolean): string[] {
  const rows = r.classes.images.map((n, c) => ({ c, n })).filter((x) => x.n > 0);
  if (rows.length === 0) return [];
  const style = colour ? {} : { head: [], border: [] };
  const t = new Table({
    head: ['class', 'images', 'preferred path', 'images with\nthat path', 'share with the preferred\nneuron, per layer'],
    style,
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const { c, n } of rows.slice(0, SUMMARY_CLASSES)) {
    const pref = r.classes.preferred[c]!;
    const share = r.classes.preferredShare[c]!;
    t.push([String(c), String(n), pref.map((j, li) => `L${r.settings.layers[li]}:${j}`).join(' '), `${r.classes.pathShared[c]} (${((r.classes.pathShared[c]! / n) * 100).toFixed(0)}%)`, share.map((x) => x.toFixed(2)).join(' ')]);
  }
  const more = rows.length > SUMMARY_CLASSES ? [`(${rows.length - SUMMARY_CLASSES} more classes in classes.csv)`] : [];
  return [`classes (by target): the preferred path takes each layer's most frequent path neuron`, t.toString(), ...more];
}
