// Where the conformance run reads and writes (repository-relative), and the shape folder under test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Folder } from './fold.js';

/** The repository root: the nearest folder above this file with a package.json (works from dist-tools/ too). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export const ROOT = repoRoot();
export const RESULTS_FILE = path.join(ROOT, 'test/conformance/RESULTS.md');
export const DIGESTS_FILE = path.join(ROOT, 'test/conformance/decoded-sha256.json');

/**
 * The shape folder under test. Hook: none is wired yet (the folding rewrite is being built on
 * another branch); once src/onnx/rewrite has it, set e.g. `(m) => foldShapes(m)` here and both
 * `npm run conformance` and test/conformance/conformance.test.ts check it.
 */
export const FOLDER: Folder | undefined = undefined;
export const FOLDER_MISSING =
  'not run: no shape folder in src/onnx/rewrite yet. The check is written (scripts/conformance/fold.ts, `checkFolding(case, op, folder)`); set FOLDER in scripts/conformance/wiring.ts to run it.';
