// Running the built CLI as a user would, for end-to-end tests: spawn `node bin/vitpath.js ...`
// with colours and debug traces off, and build dist/ first when it is missing. Children are
// spawned asynchronously: a blocking spawnSync would stall the test worker's event loop for the
// whole run, and under load vitest's worker RPC then times out ("Timeout calling onTaskUpdate").
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin/vitpath.js');

export interface CliRun {
  code: number | null;
  /** The signal that ended the process, if any. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** Extra environment variables (over the test defaults). */
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group id (tests that need a non-root user for permission checks). */
  uid?: number;
  gid?: number;
  /** The executable to run instead of `node bin/vitpath.js` (e.g. a symlinked or installed bin). */
  command?: string;
}

/** The environment the CLI runs with in tests: no colours, plain progress, no debug traces. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1', CI: '1', VITPATH_DEBUG: '', ...extra };
}

/** Start the CLI with `args` (stdout/stderr piped); see runVitpath to wait for it. */
export function spawnVitpath(args: string[], opts: RunOptions = {}): ChildProcess {
  const [cmd, argv] = opts.command ? [opts.command, args] : [process.execPath, [BIN, ...args]];
  const so: SpawnOptions = { cwd: opts.cwd ?? ROOT, env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] };
  if (opts.uid !== undefined) so.uid = opts.uid;
  if (opts.gid !== undefined) so.gid = opts.gid;
  return spawn(cmd, argv, so);
}

/** Wait for a spawned CLI and collect its output. */
export function collect(child: ChildProcess): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Run the CLI with `args` in `cwd` (default the project root). */
export function runVitpath(args: string[], opts: RunOptions = {}): Promise<CliRun> {
  return collect(spawnVitpath(args, opts));
}

/** `npm test` builds first (pretest); when a test file runs alone, build only if dist/ lacks `probe`. */
export function ensureBuilt(probe = 'dist/cli/main.js'): void {
  if (!fs.existsSync(path.join(ROOT, probe))) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}

/** Poll `check` every `everyMs` until it returns true (or fail after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
