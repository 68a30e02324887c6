// Summarize per-case gradcheck errors (rule<TAB>case<TAB>err lines from $VITPATH_GRAD_RESULTS) into the table of RESULTS-shape.md.
import { readFileSync } from 'node:fs';
const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => l.split('\t'));
const by = new Map();
for (const [rule, label, err] of rows) {
  const e = Number(err);
  const r = by.get(rule) ?? { n: 0, worst: -1, label: '', dyn: null };
  r.n++;
  if (e > r.worst) { r.worst = e; r.label = label; }
  if (label.includes('dynamic')) r.dyn = Math.max(r.dyn ?? 0, e);
  by.set(rule, r);
}
const f = (x) => (x === null ? '—' : x === 0 ? '0' : x.toExponential(1));
console.log('| rule | cases | precision | worst max rel. error | worst case | worst dynamic-batch case |');
console.log('|---|---|---|---|---|---|');
for (const [rule, r] of by) console.log(`| ${rule} | ${r.n} | ${rule === 'Conv' || rule.startsWith('Shape') ? 'float32' : 'float64'} | ${f(r.worst)} | ${r.label} | ${f(r.dyn)} |`);
