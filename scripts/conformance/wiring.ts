// Where the conformance run reads and writes (repository-relative), and the shape folder under test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { foldShapes } from '../../src/onnx/rewrite/foldShapes.js';
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
 * The shape folder under test (src/onnx/rewrite/foldShapes.ts, with its default inference: declared
 * input dims, a symbolic leading dim read as the batch size). `npm run conformance` and
 * test/conformance/conformance.test.ts check it; set it to undefined to skip the folding part.
 */
export const FOLDER: Folder | undefined = (model) => {
  const r = foldShapes(model);
  return { model: r.model, removed: r.removed, left: r.refused };
};
export const FOLDER_MISSING = 'not run: no shape folder is wired in scripts/conformance/wiring.ts.';
