// `npm run bench`: every benchmark in bench/, one after another, each in its own Node process
// (with --expose-gc) so that timings and peak memory do not leak between them. Each writes its
// own results file (bench/<name>.results.json). Pass names to run a subset:
//   npm run bench -- trace-path gradients
// OPT_IN benches run only when named (they take long or need more than the defaults): e.g.
//   npm run bench -- trace-scale
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BENCHES = ['eval', 'gradients', 'probe-layers', 'prune', 'quantize', 'runtime-progress', 'trace-path-mnist', 'trace-path'];
/** Run only when named: trace-scale's default cases (vit-mnist before/after, PyTorch loop) take many minutes; its ViT-S/B cases are chosen with its own --cases. */
export const OPT_IN = ['trace-scale'];

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !BENCHES.includes(w) && !OPT_IN.includes(w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; choose from ${[...BENCHES, ...OPT_IN].join(', ')} (${OPT_IN.join(', ')} only when named)\n`);
  process.exit(1);
}
let failed = 0;
for (const name of wanted.length ? wanted : BENCHES) {
  const file = path.join(here, `${name}.js`);
  if (!fs.existsSync(file)) {
    process.stderr.write(`bench ${name}: ${file} not found (run npm run build:tools)\n`);
    failed++;
    continue;
  }
  process.stderr.write(`\n== bench ${name} ==\n`);
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--expose-gc', file], { stdio: 'inherit' });
  process.stderr.write(`== bench ${name}: exit ${r.status}, ${((performance.now() - t) / 1000).toFixed(0)} s ==\n`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
