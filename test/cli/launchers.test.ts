// The CLI runs however it is launched: through a symlinked bin (what npm puts in
// node_modules/.bin and a global prefix's bin/), through npx in the project, and from an
// `npm pack` tarball installed into a temporary prefix, as a user's `npm install -g` does (the
// tarball holding only what the installed CLI needs).
// A launcher that loads the CLI without running it prints nothing and exits 0, so every case
// checks the output and the reports, not only the exit code.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, collect, ensureBuilt, runVitpath, type CliRun } from '../helpers/cli.js';
import { TOOL_VERSION } from '../../src/version.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-launch-'));
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Why npm cannot run here, or null when it can (the npm tests skip with that reason). */
function npmProblem(): string | null {
  const r = spawnSync('npm', ['--version'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `npm cannot run: ${r.error.message}`;
  if (r.status !== 0) return `npm --version exited ${r.status}: ${r.stderr.trim().split('\n')[0]}`;
  return null;
}
const NPM = npmProblem();
const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

function npm(args: string[], cwd: string): Promise<CliRun> {
  return collect(spawn('npm', args, { cwd, env: npmEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The demo on one image through `command`, in a fresh folder: its summary and report.json. */
async function demoThrough(command: string, cwdName: string): Promise<void> {
  const cwd = path.join(tmp, cwdName);
  fs.mkdirSync(cwd, { recursive: true });
  const version = await runVitpath(['--version'], { command, cwd });
  expect(version.code, version.stderr).toBe(0);
  expect(version.stdout.trim()).toBe(TOOL_VERSION);
  const r = await runVitpath(['demo', '--limit', '1', '--threads', '1'], { command, cwd });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/trace-path: 1 image, 4 layers, 20 steps/);
  const report = JSON.parse(fs.readFileSync(path.join(cwd, 'vitpath-out/demo/report.json'), 'utf8'));
  expect(report.command).toBe('trace-path');
  expect(report.results.images).toHaveLength(1);
}

describe('launchers', () => {
  it('a symlinked bin, and a symlink to that symlink', async () => {
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(BIN, path.join(bin, 'vitpath'));
    fs.symlinkSync(path.join(bin, 'vitpath'), path.join(bin, 'vp'));
    await demoThrough(path.join(bin, 'vitpath'), 'via-symlink');
    const r = await runVitpath(['--version'], { command: path.join(bin, 'vp'), cwd: tmp });
    expect(r.stdout.trim()).toBe(TOOL_VERSION);
  }, 120_000);

  it.skipIf(NPM !== null)(`npx vitpath in the project${NPM ? ` (skipped: ${NPM})` : ''}`, async () => {
    const r = await collect(spawn('npx', ['--no', '--', 'vitpath', '--version'], { cwd: ROOT, env: npmEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(TOOL_VERSION);
  }, 120_000);

  it.skipIf(NPM !== null)(`an npm pack tarball installed with npm install -g --prefix${NPM ? ` (skipped: ${NPM})` : ''}`, async () => {
    const pack = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], ROOT);
    expect(pack.code, pack.stderr).toBe(0);
    const packed = (JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
    const tarball = path.join(tmp, packed.filename);
    expect(fs.existsSync(tarball)).toBe(true);
    // Only what the installed CLI needs (package.json "files"): the launcher, the compiled modules,
    // the demo's model with its provenance and its 40 digits, and the README (LICENSE when there is one).
    const files = packed.files.map((f) => f.path);
    const shipped = /^(package\.json|README\.md|LICENSE(\.md)?|bin\/vitpath\.js|dist\/.+\.js|fixtures\/models\/digits-vit\.(onnx|json)|fixtures\/digits\/\d\/[^/]+\.png)$/;
    expect(files.filter((f) => !shipped.test(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('fixtures/digits/'))).toHaveLength(40);
    for (const f of ['bin/vitpath.js', 'dist/cli/main.js', 'fixtures/models/digits-vit.onnx', 'fixtures/models/digits-vit.json', 'README.md']) expect(files).toContain(f);
    // Dependencies come from the npm cache that `npm ci` filled (the registry only on a miss);
    // the install scripts are not needed: the CPU build of ONNX Runtime ships in its package.
    const prefix = path.join(tmp, 'prefix');
    const inst = await npm(['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], tmp);
    expect(inst.code, inst.stderr).toBe(0);
    const installed = path.join(prefix, process.platform === 'win32' ? 'vitpath.cmd' : 'bin/vitpath');
    expect(fs.lstatSync(installed).isSymbolicLink() || process.platform === 'win32').toBe(true);
    await demoThrough(installed, 'via-global-install');
  }, 600_000);
});
