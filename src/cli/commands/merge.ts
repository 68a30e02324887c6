// `vitpath merge OUT DIR...`: one trace-path report from the output folders of a job array's shards
// (trace-path --shard K/N or --shard auto), written as a single trace-path run writes its report.
import { Option, type Command } from 'commander';
import { nonEmpty } from '../options.js';
import { runReportCommand } from '../runReport.js';
import { mergeShards } from '../../services/merge.js';
import { usageError } from '../../errors.js';
import { renderTraceSummary } from './tracePath.js';
import type { Envelope } from '../../report/envelope.js';
import type { TraceResults } from '../../services/traceSchema.js';

const HELP_AFTER = `
Each DIR is the --out folder of one finished \`vitpath trace-path ... --shard K/N\` (or --shard auto)
run; OUT is the folder for the merged report (or give it as -o/--out OUT, then every argument is a
shard folder). The shards may be given in any order (a shell glob is fine).

What merge checks before it writes anything (each failure: exit 2, naming the folder and the fix):
  - every DIR holds a finished trace-path report: report.json present, no run writing the folder
    (.vitpath.lock), progress.jsonl agreeing with report.json (a later --force/--resume run that did
    not finish is caught); an unfinished shard is finished with its command plus --resume --out DIR
  - same model (sha256), settings, preprocessing, image source, options and vitpath version (this
    one) in every shard; --threads, --batch, --provider, --device-id, --cache-dir, --max-samples,
    --plot-images, --labels' path and --out may differ
  - shards 0..N-1 of one split, each exactly once (overlap and missing shards are refused), each
    holding all of its share of the images, no image in two shards
  - not run with --limit (each shard would take the first images of its own share, which no
    single run takes)
  - not run with --steps auto (each shard calibrates on its own images; pass the chosen --rule and
    --steps to the whole array instead)
  - probe-layers reports are refused: its linear probes are fitted on all images together and its
    dead-neuron fractions need every image, so shards do not add up exactly; run probe-layers as
    one job (it is far cheaper than trace-path)

Then it writes to OUT the files a single trace-path run over all images writes (report.json,
paths.csv, images.csv, classes.csv, similarity.csv, the charts; report.json last, OUT locked while
it writes): the images in input order, and the method summaries, accuracy, per-class path
frequencies, preferred paths and class similarity recomputed over all of them. They equal the single
run's files apart from timings and run metadata: timings are the shards' worker time summed (plus a
"merge" phase), imagesPerSecond is all images over the shards' summed tracing time, and
options.mergedFrom lists each shard (folder, shard, images, provider, timings). OUT gets no
progress.jsonl: a merged report is finished, there is nothing to --resume.

Examples:
  vitpath merge run/all run/shard-*             Slurm arrays and Kubernetes Indexed Jobs: docs/cluster.md
  vitpath merge -o run/all run/shard-* --json | jq '.results.summary'

Exit codes: 0 ok, 1 usage (no shard folders, OUT among them, OUT holding reports without --force),
            2 shards that do not belong together, missing, overlapping, unfinished or unreadable
            shards, a probe-layers or other non-trace-path report, an OUT that cannot be written or
            is in use, 130/143 interrupted.`;

interface MergeFlags {
  out?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

export function registerMerge(program: Command): void {
  const cmd = program
    .command('merge')
    .description('Merge the output folders of trace-path shards (--shard K/N or auto) into one trace-path report.')
    .usage('[options] OUT DIR...   (or: -o OUT DIR...)')
    .argument('[out]', 'folder for the merged report (omit it when -o/--out names it)')
    .argument('[dirs...]', "the shards' --out folders")
    .addOption(new Option('-o, --out <dir>', 'folder for the merged report (then every argument is a shard folder)').argParser(nonEmpty('--out')))
    .option('-f, --force', 'overwrite report files that already exist in the merged report\'s folder', false)
    .option('--json', 'print the merged JSON report alone on stdout (the summary moves to stderr)', false)
    .option('-q, --quiet', 'no notices or summary on stderr', false);
  cmd.addHelpText('after', HELP_AFTER);
  cmd.action(async (first: string | undefined, rest: string[], flags: MergeFlags) => {
    const args = [...(first !== undefined ? [first] : []), ...rest];
    const out = flags.out ?? args.shift();
    if (out === undefined) throw usageError("merge needs the merged report's folder and the shards' folders: vitpath merge OUT DIR... (see vitpath merge --help).");
    if (args.length === 0) throw usageError(`merge needs the shards' folders after ${flags.out !== undefined ? '--out' : 'OUT'}: vitpath merge OUT DIR... (see vitpath merge --help).`);
    let shards = 0;
    await runReportCommand<Envelope<TraceResults>>(
      {
        label: 'merge',
        flags,
        render: (report, colour) => `merged ${shards} shards\n` + renderTraceSummary(report, colour),
      },
      async (hooks) => {
        const r = await mergeShards({ out, dirs: args, force: flags.force }, hooks);
        shards = r.shards;
        return r;
      },
    );
  });
}
