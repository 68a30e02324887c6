// Tabulates the worst finite-difference error per math gradient rule into RESULTS-math.md.
// Usage: rm -rf /tmp/gc && VITPATH_GRADCHECK_LOG=/tmp/gc npx vitest run <math rule tests>
//        && npx vite-node test/autodiff/results-math.ts /tmp/gc > test/autodiff/RESULTS-math.md
import fs from 'node:fs';
import path from 'node:path';

interface Row {
  rule: string;
  label: string;
  dtype: 'float32' | 'float64';
  maxRelErr: number;
}

const dir = process.argv[2];
if (!dir || !fs.existsSync(dir)) {
  process.stderr.write('usage: vite-node test/autodiff/results-math.ts <VITPATH_GRADCHECK_LOG folder>\n');
  process.exit(1);
}
const rows: Row[] = [];
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
  for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line.trim()) rows.push(JSON.parse(line) as Row);
}
const rules = [...new Set(rows.map((r) => r.rule))].sort();
const fmt = (x: number | undefined) => (x === undefined ? '—' : x === 0 ? '0' : x.toExponential(1));
const worst = (rs: Row[]) => rs.reduce<Row | undefined>((w, r) => (!w || r.maxRelErr > w.maxRelErr ? r : w), undefined);
const out: string[] = [];
out.push('# Gradient rules for math ops: worst finite-difference error');
out.push('');
out.push('Produced by `test/autodiff/results-math.ts` from the gradient checks in');
out.push('test/autodiff/{unary,activation,gemm,softmax,norm,pow,reduce,reduce_max,elementwise_variadic}.test.ts');
out.push('(`VITPATH_GRADCHECK_LOG=<dir> npx vitest run ...`). Error = max over checked elements of');
out.push('|analytic - numeric| / max(|analytic|, |numeric|, 1e-3 max|gradient|); central differences with');
out.push('step 1e-6 (float64) or 1e-2 (float32; see F32_STEP in test/autodiff/math-model.ts).');
out.push('Bounds asserted by the tests: float64 < 1e-6, float32 < 1e-3; two justified exceptions: Gelu tanh in');
out.push('float64 < 5e-6 (ORT\'s float64 forward is itself ~1e-7 off the exact formula) and Pow with a float32');
out.push('exponent on a float64 base < 1e-4. A row counts as float32 when any checked input is float32.');
out.push('');
out.push('| rule | checks | worst float64 | worst float32 | worst case |');
out.push('|---|---:|---:|---:|---|');
for (const rule of rules) {
  const rs = rows.filter((r) => r.rule === rule);
  const w64 = worst(rs.filter((r) => r.dtype === 'float64'));
  const w32 = worst(rs.filter((r) => r.dtype === 'float32'));
  const w = worst(rs)!;
  out.push(`| ${rule} | ${rs.length} | ${fmt(w64?.maxRelErr)} | ${fmt(w32?.maxRelErr)} | ${w.label} (${w.dtype}) |`);
}
process.stdout.write(out.join('\n') + '\n');
