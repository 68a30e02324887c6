// Run the conformance parts over the test data: I/O on every test model, autodiff on the operator
// tests whose ops all have gradient rules, shape folding on the shape-op tests when a folder is given.
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { DEFAULT_DATA_ROOT, dataRoot, listCases, opLabel, type TestCase } from './suite.js';
import { checkIo, loadCase, readDigests } from './io.js';
import { checkAutodiff, FD } from './autodiff.js';
import { checkFolding, type Folder } from './fold.js';
import type { CaseResult } from './outcome.js';
import type { Report } from './results.js';

export type Part = 'io' | 'autodiff' | 'fold';

/**
 * Suites the autodiff and folding parts cover. pytorch-converted and pytorch-operator are opset 6,
 * below the opsets 9..21 vitpath is built for, and ONNX Runtime has no opset-6 Add/Mul kernels for the
 * projection loss; they take part in the I/O checks only.
 */
export const GRAPH_SUITES: readonly string[] = ['node', 'simple'];
export const PARTS: readonly Part[] = ['io', 'autodiff', 'fold'];

export interface RunOptions {
  root?: string;
  parts?: readonly Part[];
  /** Only tests whose "suite/name" matches. */
  filter?: RegExp;
  /** Autodiff: checked elements per input (default 64). */
  maxElems?: number;
  /** The shape folder to check; without it the folding part is reported as not run. */
  folder?: Folder;
  /** Why there is no folder (for the report). */
  folderMissing?: string;
  /** test/conformance/decoded-sha256.json (onnx.numpy_helper digests). */
  digestsFile?: string;
  /** Called after each case (progress). */
  onResult?: (part: Part, r: CaseResult) => void;
}

export interface RunResult {
  report: Report;
  seconds: Record<Part, number>;
  cases: number;
}

function packageVersion(name: string): string {
  try {
    const req = createRequire(import.meta.url);
    return (req(`${name}/package.json`) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** The installed libonnx-testdata package version (dpkg), or '' where dpkg cannot tell. */
export function dataVersion(): string {
  try {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'libonnx-testdata'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : '';
  } catch {
    return '';
  }
}

export async function runConformance(o: RunOptions = {}): Promise<RunResult> {
  const root = o.root ?? dataRoot();
  const parts = o.parts ?? PARTS;
  const cases = listCases(root).filter((c) => !o.filter || o.filter.test(`${c.suite}/${c.name}`));
  const digests = o.digestsFile ? readDigests(o.digestsFile) : undefined;
  // Op labels: one-node tests name their op; expanded bodies borrow the op of their one-node siblings.
  const opsOf = new Map<TestCase, string[]>();
  // Decoding is synchronous: yield now and then so a host process (vitest's worker RPC) stays responsive.
  const breathe = (i: number) => (i % 25 === 0 ? new Promise<void>((r) => setImmediate(r)) : undefined);
  for (const [i, c] of cases.entries()) {
    await breathe(i);
    try {
      opsOf.set(c, [...new Set(loadCase(c).proto.graph!.node.map((n) => n.opType))]);
    } catch {
      opsOf.set(c, []);
    }
  }
  const single = new Set(cases.filter((c) => c.suite === 'node' && opsOf.get(c)!.length === 1).map((c) => opsOf.get(c)![0]!));
  const all = listCases(root);
  const byKey = new Map(all.map((c) => [`${c.suite}/${c.name}`, c]));
  const label = (c: TestCase) => opLabel(c, opsOf.get(c)!, single);

  const seconds: Record<Part, number> = { io: 0, autodiff: 0, fold: 0 };
  const version = root === DEFAULT_DATA_ROOT ? dataVersion() : '';
  const report: Report = { about: [], meta: { data: version ? `libonnx-testdata ${version}` : `unknown data at ${root}`, ort: packageVersion('onnxruntime-node'), maxElems: o.maxElems ?? 64 } };
  if (parts.includes('io')) {
    const t = performance.now();
    report.io = [];
    for (const c of cases) {
      const r = await checkIo(c, label(c), digests);
      report.io.push(r);
      o.onResult?.('io', r);
    }
    seconds.io = (performance.now() - t) / 1000;
  }
  if (parts.includes('autodiff')) {
    const t = performance.now();
    report.autodiff = [];
    for (const c of cases.filter((x) => GRAPH_SUITES.includes(x.suite))) {
      const r = await checkAutodiff(c, label(c), { maxElems: o.maxElems, expandedTwin: (x) => byKey.get(`${x.suite}/${x.name}_expanded`) });
      if (!r) continue;
      report.autodiff.push(r);
      o.onResult?.('autodiff', r);
    }
    seconds.autodiff = (performance.now() - t) / 1000;
  }
  if (parts.includes('fold')) {
    if (o.folder) {
      const t = performance.now();
      report.fold = [];
      for (const c of cases.filter((x) => GRAPH_SUITES.includes(x.suite))) {
        for (const mode of ['declared', 'symbolic'] as const) {
          const r = await checkFolding(c, label(c), o.folder, mode);
          if (!r) continue;
          report.fold.push(r);
          o.onResult?.('fold', r);
        }
      }
      seconds.fold = (performance.now() - t) / 1000;
    } else report.foldMissing = o.folderMissing ?? 'not run (no folder given).';
  }
  const maxElems = o.maxElems ?? 64;
  report.about = [
    `Generated by \`npm run conformance\` (scripts/conformance.ts); do not edit by hand. Data: ${report.meta!.data} under ${root}`,
    `(${cases.length} test models: node, pytorch-converted, pytorch-operator, simple; \`real/\` holds only download links). Oracle: onnxruntime-node`,
    `${packageVersion('onnxruntime-node')} on CPU, Node ${process.version}.`,
    '',
    '- **I/O**: model.onnx decodes and re-encodes byte for byte through src/onnx; every input/output .pb decodes through',
    '  src/onnx/tensor.ts and re-encodes byte for byte; the decoded values hash to the digest onnx.numpy_helper gives',
    '  (test/conformance/decoded-sha256.json, from scripts/reference/onnx_testdata_digest.py); ONNX Runtime, fed the decoded',
    '  inputs, reproduces the decoded expected outputs (|got - want| <= atol + rtol |want|; rtol 1e-3, atol 1e-5 float32,',
    '  1e-7 float64, 1e-3 float16; integers exact).',
    '- **Autodiff**: every test of the node/ and simple/ suites whose nodes all have gradient rules',
    '  (src/onnx/autodiff/rules; random ops excluded) and that has a float input and a float output. pytorch-*/ are',
    '  opset 6, below the opsets 9..21 vitpath is built for, and ONNX Runtime lacks opset-6 Add/Mul kernels for the loss:',
    '  they take part in I/O only. Integer/bool inputs are frozen as initializers; the loss is a fixed random projection',
    '  sum_k <W_k, y_k> of every float output; vitpath\'s gradient graph of it w.r.t. every float input,',
    '  run in ONNX Runtime, is compared at the test\'s own input values with central differences of the forward model (the',
    `  projection taken in float64), on up to ${maxElems} evenly spread elements per input. Error = |g - d| / max(|g|, |d|, 1e-3 max|g|).`,
    `  float64 (step ${FD.float64.step} max(1,|x|), tolerance ${FD.float64.tol}) wherever ONNX Runtime has the kernels — for`,
    '  LayerNormalization, whose float64 kernel ONNX Runtime lacks, the forward is ONNX\'s own function body for it (the',
    `  suite's _expanded twin) run in float64 —, float32 otherwise (step ${FD.float32.step} max(1,|x|), tolerance ${FD.float32.tol}, as the`,
    '  rule tests in test/autodiff use). A failing element is retried with Richardson extrapolation and smaller steps (larger',
    '  ones in float32 where the function is linear along it); at a kink (one-sided slopes that stay apart as the step',
    '  shrinks: Relu at 0, ties of Max/ReduceMin) the gradient must lie between the one-sided slopes. Where a perturbation',
    '  changes an output\'s shape (Range at a size boundary) or makes it NaN, the other side\'s one-sided difference is used.',
    '- **Shape folding**: node/ and simple/ tests with a shape op (Shape, Size, Gather, Slice, Concat, Unsqueeze, Squeeze,',
    '  Reshape, Expand, Range, ConstantOfShape, Flatten), integer inputs frozen as initializers and each output behind an',
    '  Identity (folders leave graph outputs computed), folded by src/onnx/rewrite/foldShapes.ts; the folded model must',
    '  reproduce the expected outputs in ONNX Runtime. Each test twice: with its declared input dims, and (marked',
    '  "[symbolic N]") with the leading dim of its float inputs declared symbolic, as a dynamic-batch export has it.',
  ];
  return { report, seconds, cases: cases.length };
}
