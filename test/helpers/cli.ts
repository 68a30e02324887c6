// Running the built CLI as a user would, for end-to-end tests: spawn `node bin/vitpath.js ...`
// with colours and debug traces off, and build dist/ first when it is missing.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin/vitpath.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const CLI_ENV = { ...process.env, NO_COLOR: '1', CI: '1', VITPATH_DEBUG: '' };

/** Run the CLI with `args` in `cwd` (default the project root). */
export function runVitpath(args: string[], opts: { cwd?: string } = {}): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', env: CLI_ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** runVitpath without blocking the test worker's event loop (long runs: vitest's worker RPC keeps answering). */
export function runVitpathAsync(args: string[], opts: { cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: CLI_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `npm test` builds first (pretest); when a test file runs alone, build only if dist/ lacks `probe`. */
export function ensureBuilt(probe = 'dist/cli/main.js'): void {
  if (!fs.existsSync(path.join(ROOT, probe))) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}
