// The ONNX backend test data (Debian/Ubuntu package libonnx-testdata): where it lives, and one
// record per test model (suite, name, model file, input/output .pb files, the operator it tests).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where `apt-get install libonnx-testdata` puts the data. VITPATH_ONNX_TESTDATA overrides it. */
export const DEFAULT_DATA_ROOT = '/usr/share/libonnx-testdata/data';

/** The folders that hold test models (`real/` holds only download links, no model files). */
export const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;
export type SuiteName = (typeof SUITES)[number];

export interface TestCase {
  suite: SuiteName;
  /** Folder name, e.g. test_softmax_axis_0. */
  name: string;
  dir: string;
  model: string;
  /** input_0.pb, input_1.pb, ... of the first test_data_set, in index order. */
  inputs: string[];
  outputs: string[];
}

export function dataRoot(): string {
  return process.env.VITPATH_ONNX_TESTDATA || DEFAULT_DATA_ROOT;
}

/** True when the data folder holds at least the operator tests. */
export function dataPresent(root = dataRoot()): boolean {
  return fs.existsSync(path.join(root, 'node'));
}

const byIndex = (prefix: string) => (a: string, b: string) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3));

/** Every test model under `root`, suite by suite, sorted by name. Cases without model.onnx are left out. */
export function listCases(root = dataRoot()): TestCase[] {
  const out: TestCase[] = [];
  for (const suite of SUITES) {
    const sdir = path.join(root, suite);
    if (!fs.existsSync(sdir)) continue;
    for (const name of fs.readdirSync(sdir).sort()) {
      const dir = path.join(sdir, name);
      const model = path.join(dir, 'model.onnx');
      if (!fs.existsSync(model)) continue;
      const sets = fs.readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort();
      const set = sets.length ? path.join(dir, sets[0]!) : undefined;
      const files = set ? fs.readdirSync(set) : [];
      const inputs = files.filter((f) => /^input_\d+\.pb$/.test(f)).sort(byIndex('input_')).map((f) => path.join(set!, f));
      const outputs = files.filter((f) => /^output_\d+\.pb$/.test(f)).sort(byIndex('output_')).map((f) => path.join(set!, f));
      out.push({ suite, name, dir, model, inputs, outputs });
    }
  }
  return out;
}

/** ONNX op type -> the snake_case spelling ONNX test names use (LayerNormalization -> layer_normalization). */
export function snakeOp(op: string): string {
  return op.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

/** Abbreviations ONNX's test names use for some ops (test_nllloss_NC -> NegativeLogLikelihoodLoss). */
export const TEST_NAME_ALIASES: Record<string, string> = {
  nllloss: 'NegativeLogLikelihoodLoss',
  sce: 'SoftmaxCrossEntropyLoss',
  mvn: 'MeanVarianceNormalization',
};

/**
 * The operator a test exercises, for the results tables: the node's op type for a one-node operator
 * test; for an expanded function body (test_softmax_axis_0_expanded) the op whose one-node tests
 * share the longest name prefix, marked "(expanded)" (the test's own stem when no op matches); for
 * the other suites the suite name (the op, for a one-node model of simple/).
 */
export function opLabel(c: TestCase, nodeOps: readonly string[], singleOps: ReadonlySet<string>): string {
  if (c.suite === 'simple' && nodeOps.length === 1) return nodeOps[0]!;
  if (c.suite !== 'node') return c.suite;
  if (nodeOps.length === 1) return nodeOps[0]!;
  const stem = c.name.replace(/^test_/, '');
  let best = '';
  let bestLen = 0;
  for (const op of singleOps) {
    for (const spelling of [snakeOp(op), op.toLowerCase(), ...Object.keys(TEST_NAME_ALIASES).filter((k) => TEST_NAME_ALIASES[k] === op)]) {
      if ((stem === spelling || stem.startsWith(spelling + '_')) && spelling.length > bestLen) [best, bestLen] = [op, spelling.length];
    }
  }
  if (best) return `${best} (expanded)`;
  for (const [alias, op] of Object.entries(TEST_NAME_ALIASES)) if (stem.startsWith(alias + '_')) return `${op} (expanded)`;
  return stem.endsWith('_expanded') ? `${stem.replace(/_expanded$/, '')} (expanded)` : c.name;
}
