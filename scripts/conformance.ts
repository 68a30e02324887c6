// `npm run conformance`: vitpath against ONNX's own backend test data (apt-get install
// libonnx-testdata): I/O round trips and .pb tensors vs ONNX Runtime on every test model, gradient
// rules vs finite differences on every operator test they cover, shape folding when a folder exists.
// Writes test/conformance/RESULTS.md; exit 5 when any case fails, 2 when the data is missing.
//
//   npm run conformance                                   # everything, rewrites RESULTS.md
//   npm run conformance -- --only autodiff --filter softmax --verbose --no-write
//   node dist-tools/scripts/conformance.js --data DIR     # another copy of the data (or VITPATH_ONNX_TESTDATA)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dataPresent, dataRoot } from './conformance/suite.js';
import { PARTS, runConformance, type Part } from './conformance/run.js';
import { count, renderResults } from './conformance/results.js';
import { DIGESTS_FILE, FOLDER, FOLDER_MISSING, RESULTS_FILE, ROOT } from './conformance/wiring.js';
import { writeFileAtomic } from '../src/fs/atomic.js';

const USAGE = `usage: node dist-tools/scripts/conformance.js [--data DIR] [--only io,autodiff,fold] [--filter REGEX] [--max-elems N] [--verbose] [--no-write]`;

function parseArgs(argv: string[]) {
  const o = { data: dataRoot(), parts: [...PARTS] as Part[], filter: undefined as RegExp | undefined, maxElems: 64, verbose: false, write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--data') o.data = next();
    else if (a === '--only') {
      o.parts = next().split(',') as Part[];
      const bad = o.parts.filter((p) => !PARTS.includes(p));
      if (bad.length) throw new Error(`--only: unknown part ${bad.join(', ')}; choose from ${PARTS.join(', ')}`);
    } else if (a === '--filter') o.filter = new RegExp(next());
    else if (a === '--max-elems') o.maxElems = Number(next());
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!(o.maxElems >= 1)) throw new Error('--max-elems must be a positive integer');
  return o;
}

async function main(): Promise<number> {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`conformance: ${(e as Error).message}\n${USAGE}\n`);
    return 1;
  }
  if (!dataPresent(o.data)) {
    process.stderr.write(`conformance: no ONNX test data at ${o.data}; install it with \`sudo apt-get install libonnx-testdata\` (Debian/Ubuntu) or pass --data DIR.\n`);
    return 2;
  }
  const partial = o.filter !== undefined || o.parts.length !== PARTS.length || o.maxElems !== 64;
  const t0 = performance.now();
  const { report, seconds, cases } = await runConformance({
    root: o.data,
    parts: o.parts,
    filter: o.filter,
    maxElems: o.maxElems,
    folder: FOLDER,
    folderMissing: FOLDER_MISSING,
    digestsFile: DIGESTS_FILE,
    onResult: (part, r) => {
      if (o.verbose || r.outcome === 'fail') process.stderr.write(`${part.padEnd(8)} ${r.outcome.padEnd(7)} ${r.suite}/${r.name}: ${r.detail}\n`);
    },
  });
  const total = (performance.now() - t0) / 1000;
  const timing = PARTS.filter((p) => o.parts.includes(p)).map((p) => `${p} ${seconds[p].toFixed(1)} s`).join(', ');
  report.about.push('', `This run: ${cases} test models in ${total.toFixed(1)} s (${timing}).`);
  for (const [part, rs] of [['io', report.io], ['autodiff', report.autodiff], ['fold', report.fold]] as const) {
    if (!rs) continue;
    const c = count(rs);
    process.stderr.write(`${part}: ${c.cases} cases, ${c.pass} pass, ${c.refused} refused, ${c.fail} fail, ${c.oracle} oracle gaps\n`);
  }
  if (report.foldMissing) process.stderr.write(`fold: ${report.foldMissing}\n`);
  const failed = [...(report.io ?? []), ...(report.autodiff ?? []), ...(report.fold ?? [])].filter((r) => r.outcome === 'fail').length;
  if (o.write) {
    if (partial) process.stderr.write(`not writing ${path.relative(ROOT, RESULTS_FILE)}: this was a partial run (--only/--filter/--max-elems)\n`);
    else {
      fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
      writeFileAtomic(RESULTS_FILE, renderResults(report) + '\n');
      process.stderr.write(`wrote ${path.relative(ROOT, RESULTS_FILE)}\n`);
    }
  }
  return failed ? 5 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`conformance: ${(e as Error).stack ?? e}\n`);
    process.exit(4);
  },
);
