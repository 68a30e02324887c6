// Tables of conformance outcomes: counts per op and per gradient-rule family, every refusal, oracle
// gap and failure by test, rendered as test/conformance/RESULTS.md.
import { type CaseResult, type Outcome } from './outcome.js';

/** The rules/ module (family) each op's gradient rule lives in; a test keeps this in step with the registry. */
export const RULE_FAMILIES: Record<string, string[]> = {
  elementwise: ['Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sum', 'Mean', 'Max', 'Min', 'Clip'],
  unary: ['Sqrt', 'Reciprocal', 'Exp', 'Log', 'Tanh', 'Sigmoid', 'Relu', 'Erf', 'Abs'],
  activation: ['Gelu', 'LeakyRelu'],
  pow: ['Pow'],
  matmul: ['MatMul'],
  gemm: ['Gemm'],
  conv: ['Conv'],
  softmax: ['Softmax', 'LogSoftmax'],
  norm: ['LayerNormalization', 'BatchNormalization'],
  reduce: ['ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp'],
  reduce_max: ['ReduceMax', 'ReduceMin'],
  identity: ['Identity', 'Cast'],
  transpose: ['Transpose'],
  reshape: ['Reshape', 'Flatten', 'Shape', 'Size', 'ConstantOfShape', 'EyeLike', 'RandomNormalLike', 'RandomUniformLike', 'NonZero', 'ArgMax', 'ArgMin', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf'],
  squeeze: ['Squeeze', 'Unsqueeze'],
  expand: ['Expand'],
  where: ['Where'],
  concat: ['Concat'],
  split: ['Split'],
  slice: ['Slice'],
  gather: ['Gather'],
  range: ['Range'],
};

const familyOfOp = new Map(Object.entries(RULE_FAMILIES).flatMap(([f, ops]) => ops.map((o) => [o, f] as const)));

/** The rule family of a table op label ("Softmax", "Softmax (expanded)"); expanded bodies form their own group. */
export function familyOf(op: string): string {
  if (op.endsWith(' (expanded)')) return 'expanded function bodies';
  return familyOfOp.get(op) ?? 'other';
}

export type Counts = Record<Outcome, number> & { cases: number };

export function count(rs: readonly CaseResult[]): Counts {
  const c = { cases: rs.length, pass: 0, refused: 0, fail: 0, oracle: 0 } as Counts;
  for (const r of rs) c[r.outcome]++;
  return c;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(x);
  }
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b)));
}

const cell = (s: string) => s.replace(/\|/g, '\\|');
const err = (x: number | undefined) => (x === undefined ? '—' : x === 0 ? '0' : x.toExponential(1));
const worstOf = (rs: readonly CaseResult[], p: 'float64' | 'float32') => {
  const xs = rs.filter((r) => r.outcome !== 'refused' && r.precision === p && r.maxRelErr !== undefined).map((r) => r.maxRelErr!);
  return xs.length ? Math.max(...xs) : undefined;
};

export interface Report {
  io?: CaseResult[];
  autodiff?: CaseResult[];
  fold?: CaseResult[];
  /** Why folding was not run, when it was not. */
  foldMissing?: string;
  /** Header lines: data source, runtime, tolerances, timing. */
  about: string[];
  /** What the counts depend on; written as a comment so tests compare only like with like. */
  meta?: ResultsMeta;
}

export interface ResultsMeta {
  data: string;
  ort: string;
  maxElems: number;
}

const META = /^<!-- conformance: data=(.*); onnxruntime-node=(.*); max-elems=(\d+) -->$/m;

export function parseMeta(md: string): ResultsMeta | undefined {
  const m = META.exec(md);
  return m ? { data: m[1]!, ort: m[2]!, maxElems: Number(m[3]) } : undefined;
}

/** The per-op rows (op -> counts) of the table under `## <heading>` in a rendered RESULTS.md. */
export function parseOpCounts(md: string, heading: string): Map<string, Counts> {
  const out = new Map<string, Counts>();
  const at = md.indexOf(`\n## ${heading}\n`);
  if (at < 0) return out;
  const lines = md.slice(at + 1).split('\n').slice(1);
  for (const line of lines) {
    if (line.startsWith('## ')) break;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    if (cells.length < 6 || !/^\d+$/.test(cells[1]!)) continue;
    const [op, cases, pass, refused, fail, oracle] = cells as [string, string, string, string, string, string];
    out.set(op.replace(/\\\|/g, '|'), { cases: +cases, pass: +pass, refused: +refused, fail: +fail, oracle: +oracle });
  }
  return out;
}

/** Per-op counts of a list of results, keyed like the RESULTS.md tables. */
export function opCounts(rs: readonly CaseResult[]): Map<string, Counts> {
  return new Map([...groupBy(rs, (x) => x.op)].map(([op, xs]) => [op, count(xs)]));
}

function countRow(label: string, rs: readonly CaseResult[], extra: string[] = []): string {
  const c = count(rs);
  return `| ${cell(label)} | ${c.cases} | ${c.pass} | ${c.refused} | ${c.fail} | ${c.oracle} |${extra.map((e) => ` ${e} |`).join('')}`;
}

export function renderResults(r: Report): string {
  const out: string[] = ['# Conformance against ONNX\'s operator test suite', ''];
  if (r.meta) out.push(`<!-- conformance: data=${r.meta.data}; onnxruntime-node=${r.meta.ort}; max-elems=${r.meta.maxElems} -->`, '');
  out.push(...r.about, '');
  out.push('Outcomes: **pass** (vitpath matches the oracle), **refused** (vitpath stops with an exit-3 message that names');
  out.push('the attribute, dtype or value kind it does not cover), **fail** (a wrong result or an unexpected error), **oracle**');
  out.push('(ONNX Runtime cannot run the original model, or disagrees with the test\'s expected outputs while vitpath\'s reading of');
  out.push('them is confirmed by onnx.numpy_helper: nothing trustworthy to compare with; every such test is listed below).');
  out.push('');
  out.push('## Summary', '', '| part | cases | pass | refused | fail | oracle |', '|---|---:|---:|---:|---:|---:|');
  if (r.io) out.push(countRow('I/O (round trip, .pb tensors, ONNX Runtime)', r.io));
  if (r.autodiff) out.push(countRow('autodiff (gradient vs finite differences)', r.autodiff));
  if (r.fold) out.push(countRow('shape folding (folded graph vs expected outputs)', r.fold));
  out.push('');
  if (r.foldMissing) out.push(`Shape folding: ${r.foldMissing}`, '');

  if (r.autodiff) {
    out.push('## Autodiff by rule family', '');
    out.push('| family | cases | pass | refused | fail | oracle | float64 | float32 | worst float64 | worst float32 |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [fam, rs] of groupBy(r.autodiff, (x) => familyOf(x.op))) {
      const n64 = rs.filter((x) => x.precision === 'float64' && x.outcome !== 'refused').length;
      const n32 = rs.filter((x) => x.precision === 'float32' && x.outcome !== 'refused').length;
      out.push(countRow(fam, rs, [String(n64), String(n32), err(worstOf(rs, 'float64')), err(worstOf(rs, 'float32'))]));
    }
    out.push('', '## Autodiff by op', '');
    out.push('| op | cases | pass | refused | fail | oracle | precision | worst rel. error |', '|---|---:|---:|---:|---:|---:|---|---:|');
    for (const [op, rs] of groupBy(r.autodiff, (x) => x.op)) {
      const precs = [...new Set(rs.filter((x) => x.outcome !== 'refused').map((x) => x.precision ?? ''))].filter(Boolean).sort().reverse().join(', ') || '—';
      const worst = Math.max(-1, ...rs.filter((x) => x.maxRelErr !== undefined && x.outcome !== 'refused').map((x) => x.maxRelErr!));
      out.push(countRow(op, rs, [precs, err(worst < 0 ? undefined : worst)]));
    }
    out.push('');
  }
  if (r.fold) {
    out.push('## Shape folding by op', '', '| op | cases | pass | refused | fail | oracle | cases folding a node | nodes folded |', '|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [op, rs] of groupBy(r.fold, (x) => x.op)) {
      const folding = rs.filter((x) => (x.folded ?? 0) > 0);
      out.push(countRow(op, rs, [String(folding.length), String(folding.reduce((a, x) => a + x.folded!, 0))]));
    }
    out.push('');
  }
  if (r.io) {
    out.push('## I/O by op', '', '| op | cases | pass | refused | fail | oracle |', '|---|---:|---:|---:|---:|---:|');
    for (const [op, rs] of groupBy(r.io, (x) => x.op)) out.push(countRow(op, rs));
    out.push('');
  }
  const parts: [string, CaseResult[] | undefined][] = [
    ['autodiff', r.autodiff],
    ['fold', r.fold],
    ['I/O', r.io],
  ];
  for (const outcome of ['fail', 'refused', 'oracle'] as Outcome[]) {
    const rows = parts.flatMap(([part, rs]) => (rs ?? []).filter((x) => x.outcome === outcome).map((x) => ({ part, x })));
    const title = { fail: 'Failures', refused: 'Refusals', oracle: 'Oracle gaps' }[outcome as 'fail' | 'refused' | 'oracle'];
    out.push(`## ${title}`, '');
    if (!rows.length) {
      out.push('None.', '');
      continue;
    }
    out.push('| part | test | message |', '|---|---|---|');
    for (const { part, x } of rows) out.push(`| ${part} | ${x.suite}/${x.name} | ${cell(x.detail)} |`);
    out.push('');
  }
  return out.join('\n');
}

