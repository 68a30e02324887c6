// Shared by the conformance tests: whether ONNX's backend test data is installed, and the committed
// RESULTS.md counts to compare a fresh run with (only when data, runtime and settings are the same).
import * as fs from 'node:fs';
import { expect } from 'vitest';
import { dataPresent, dataRoot } from '../../scripts/conformance/suite.js';
import { opCounts, parseMeta, parseOpCounts, type ResultsMeta } from '../../scripts/conformance/results.js';
import { RESULTS_FILE } from '../../scripts/conformance/wiring.js';
import type { CaseResult } from '../../scripts/conformance/outcome.js';

export const PRESENT = dataPresent();
/** The one line a run without the data shows (as the title of the skipped test). */
export const SKIP_LINE = `skipped: no ONNX test data at ${dataRoot()} (apt-get install libonnx-testdata)`;
/** The conformance tests run the whole suite in-process: minutes of headroom on a busy 2-core machine. */
export const TIMEOUT = 600_000;

/** Every failure as one line, so a failing assertion shows them all. */
export function failures(rs: readonly CaseResult[]): string[] {
  return rs.filter((r) => r.outcome === 'fail').map((r) => `${r.suite}/${r.name}: ${r.detail}`);
}

/**
 * When the committed RESULTS.md was produced from the same data, ONNX Runtime and settings, a fresh
 * run must give the same per-op counts (a rule that starts refusing, or a test that stops being an
 * autodiff case, shows here even though nothing "fails"). Returns false when there is nothing to compare.
 */
export function expectCountsAsCommitted(heading: string, rs: readonly CaseResult[], meta: ResultsMeta): boolean {
  if (!fs.existsSync(RESULTS_FILE)) return false;
  const md = fs.readFileSync(RESULTS_FILE, 'utf8');
  const committed = parseMeta(md);
  if (!committed || committed.data !== meta.data || committed.ort !== meta.ort || committed.maxElems !== meta.maxElems) return false;
  const want = Object.fromEntries(parseOpCounts(md, heading));
  const got = Object.fromEntries(opCounts(rs));
  expect(got, `${heading}: counts differ from test/conformance/RESULTS.md; rerun \`npm run conformance\` and commit the table`).toEqual(want);
  return true;
}
