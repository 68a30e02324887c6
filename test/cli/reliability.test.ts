// End-to-end reliability of the built CLI in the field: readers that close stdout or stderr early,
// stdout on a full device, an --out that cannot be written, a full disk while writing (simulated
// by test/helpers/failWrites.mjs), the --out lock, reruns after a failure, --skip-bad-images,
// partial labels, Ctrl-C/SIGTERM, ONNX Runtime's own log lines, and small usage rules.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, cliEnv, collect, ensureBuilt, runVitpath, spawnVitpath, waitFor, type CliRun } from '../helpers/cli.js';
import { LOCK_FILE } from '../../src/report/lock.js';

const MODEL = path.join(ROOT, 'fixtures/models/erf-ln-matmul.onnx');
const DIGITS_MODEL = path.join(ROOT, 'fixtures/models/digits-vit.onnx');
const DIGITS = path.join(ROOT, 'fixtures/digits');
const FAIL_WRITES = path.join(ROOT, 'test/helpers/failWrites.mjs');
const FAST = ['--steps', '4', '--threads', '1', '--provider', 'cpu', '--baselines', 'activation'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitpath-field-'));
fs.chmodSync(tmp, 0o755); // readable by the unprivileged user of the read-only test
const IMG_DIR = path.join(tmp, 'images');
fs.mkdirSync(IMG_DIR);
for (const f of fs.readdirSync(path.join(ROOT, 'fixtures/images'))) {
  if (/\.(png|csv)$/.test(f)) fs.copyFileSync(path.join(ROOT, 'fixtures/images', f), path.join(IMG_DIR, f));
}
const IMAGES = ['--images', IMG_DIR, '--labels', path.join(IMG_DIR, 'labels.csv')];

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => {
  for (const d of [path.join(tmp, 'ro')]) if (fs.existsSync(d)) fs.chmodSync(d, 0o755);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const vitpath = (...args: string[]) => runVitpath(args, { cwd: tmp });
const exists = (...p: string[]) => fs.existsSync(path.join(...p));
const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
const imageLines = (file: string) => (fs.existsSync(file) ? lines(file).filter((l) => JSON.parse(l).kind === 'image').length : 0);
function expectNoStack(r: CliRun): void {
  expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
}

describe('readers that go away', () => {
  it('stderr closed early (demo 2>&1 | head -1, as in the issue) does not stop the run: exit 0, every report written', async () => {
    // The default provider: on a machine without CUDA the first line is the CPU-fallback notice and
    // the progress line after it hits the closed pipe before any image is traced.
    const cwd = path.join(tmp, 'head1');
    fs.mkdirSync(cwd);
    const sh = `"${process.execPath}" "${BIN}" demo --limit 4 --threads 1 2>&1 | head -1; exit \${PIPESTATUS[0]}`;
    const r = await collect(spawn('bash', ['-c', sh], { cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    const out = path.join(cwd, 'vitpath-out/demo');
    for (const f of ['report.json', 'paths.csv', 'images.csv', 'classes.csv', 'similarity.csv']) expect(exists(out, f), f).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')).results.images).toHaveLength(4);
    expect(exists(out, LOCK_FILE)).toBe(false);
  }, 120_000);

  it('stderr closed from the start: the summary still reaches stdout and the reports are written', async () => {
    const out = path.join(tmp, 'noerr');
    const child = spawnVitpath(['trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '2', '--out', out], { cwd: tmp });
    child.stderr!.destroy();
    const r = await collect(child);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/trace-path: 2 images/);
    expect(exists(out, 'report.json')).toBe(true);
  }, 120_000);

  it('stdout closed early (--json | head -c 100) ends the output only: exit 0, reports written', async () => {
    const out = path.join(tmp, 'headc');
    const sh = `"${process.execPath}" "${BIN}" trace-path "${MODEL}" ${IMAGES.map((a) => `"${a}"`).join(' ')} ${FAST.join(' ')} --limit 2 --json -q --out "${out}" | head -c 100; exit \${PIPESTATUS[0]}`;
    const r = await collect(spawn('bash', ['-c', sh], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(100);
    expect(r.stderr).toBe('');
    expect(exists(out, 'report.json')).toBe(true);
  }, 120_000);

  it.skipIf(!fs.existsSync('/dev/full'))('stdout on a full device (> /dev/full): one plain line, exit 4, no stack trace', async () => {
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const child = spawn(process.execPath, [BIN, 'inspect', MODEL], { cwd: tmp, env: cliEnv(), stdio: ['ignore', fd, 'pipe'] });
      const r = await collect(child);
      expect(r.code).toBe(4);
      expect(r.stderr.trim().split('\n')).toEqual(['vitpath: error: cannot write the output to stdout: no space left on the device (ENOSPC).']);
    } finally {
      fs.closeSync(fd);
    }
  }, 60_000);
});

describe('an --out that cannot be written', () => {
  it('--out under a file: exit 2 naming the folder, before any inference', async () => {
    fs.writeFileSync(path.join(tmp, 'plainfile'), 'x');
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--out', path.join(tmp, 'plainfile', 'run'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(path.join(tmp, 'plainfile', 'run'));
    expect(r.stderr).not.toMatch(/img to do/); // no inference started
    expectNoStack(r);
  }, 60_000);

  // Permissions do not bind root: as root, the child runs as the unprivileged user "nobody".
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? { uid: 65534, gid: 65534 } : {};
  it.skipIf(process.platform === 'win32')('a read-only folder (as --out, or as the parent of --out): exit 2 with a plain message, nothing created', async () => {
    const ro = path.join(tmp, 'ro');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    for (const out of [ro, path.join(ro, 'run')]) {
      const r = await runVitpath(['trace-path', MODEL, ...IMAGES, ...FAST, '--out', out], { cwd: tmp, ...user });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`cannot write .*${out.replace(/[/.]/g, '\\$&')}: permission denied \\(EACCES\\); choose an --out folder you can write to`));
      expect(r.stderr).not.toMatch(/img to do/);
      expectNoStack(r);
    }
    expect(fs.readdirSync(ro)).toEqual([]);
  }, 60_000);
});

describe('a full disk while the run writes (simulated ENOSPC)', () => {
  const withFullDisk = (pattern: string, after: number, ...args: string[]) =>
    runVitpath(args, { cwd: tmp, env: { NODE_OPTIONS: `--import ${FAIL_WRITES}`, VITPATH_TEST_ENOSPC: pattern, VITPATH_TEST_ENOSPC_AFTER: String(after) } });

  it('report.json cannot be written: exit 2, plain message, no report left as if complete; --resume then finishes', async () => {
    const out = path.join(tmp, 'full-report');
    const r = await withFullDisk('report\\.json', 0, 'trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '3', '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write ${path.join(out, 'report.json')}: no space left on the device (ENOSPC); free some space or choose another --out folder.`);
    const rel = path.relative(tmp, out); // folders are shown relative to the working folder
    expect(r.stderr).toContain(`3 of 3 images are saved in ${rel}; after fixing the cause, continue with --resume --out ${rel}`);
    expectNoStack(r);
    // The CSVs this run wrote are gone again, report.json (the completion marker) is absent, the
    // images are kept in the progress log, the lock is released, no temporary file is left.
    expect(fs.readdirSync(out).sort()).toEqual(['progress.jsonl']);
    expect(imageLines(path.join(out, 'progress.jsonl'))).toBe(3);
    const again = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '3', '--out', out, '--resume', '-q');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')).results.images).toHaveLength(3);
  }, 120_000);

  it('a CSV fails after another was written, over an earlier complete run (--force): no report.json left', async () => {
    const out = path.join(tmp, 'full-csv');
    expect((await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '2', '--out', out, '-q')).code).toBe(0);
    const r = await withFullDisk('images\\.csv', 0, 'trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '3', '--out', out, '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write ${path.join(out, 'images.csv')}`);
    expect(exists(out, 'report.json')).toBe(false); // the old one went first, the new one never came
    expect(exists(out, 'paths.csv')).toBe(false); // written by the failed run, removed again
  }, 120_000);

  it('the progress log fills up mid-run: exit 2 naming it, the finished images kept for --resume', async () => {
    const out = path.join(tmp, 'full-log');
    const r = await withFullDisk('progress\\.jsonl', 3, 'trace-path', MODEL, ...IMAGES, ...FAST, '--batch', '1', '--limit', '4', '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write ${path.join(out, 'progress.jsonl')}: no space left on the device (ENOSPC)`);
    expectNoStack(r);
    expect(imageLines(path.join(out, 'progress.jsonl'))).toBe(2); // header + 2 images went through
    expect(exists(out, 'report.json')).toBe(false);
    expect(exists(out, LOCK_FILE)).toBe(false);
  }, 120_000);
});

describe('the searches, rules and pictures of trace-path go through the same run', () => {
  const SEARCH = ['--search', 'beam', '--beam', '2', '--rule', 'gauss', '--steps', '2', '--plot-images', '1', '--threads', '1', '--provider', 'cpu', '--baselines', 'effect'];

  it('a picture that cannot be written: exit 2, nothing of the run left but its progress log; --resume finishes; a plain rerun is refused', async () => {
    const out = path.join(tmp, 'full-chart');
    const r = await runVitpath(['trace-path', MODEL, ...IMAGES, ...SEARCH, '--limit', '2', '--out', out], {
      cwd: tmp,
      env: { NODE_OPTIONS: `--import ${FAIL_WRITES}`, VITPATH_TEST_ENOSPC: 'path-0\\.svg', VITPATH_TEST_ENOSPC_AFTER: '0' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write ${path.join(out, 'path-0.svg')}: no space left on the device (ENOSPC)`);
    expectNoStack(r);
    // The CSVs and the other pictures written before it are removed again; the lock is released.
    expect(fs.readdirSync(out).sort()).toEqual(['progress.jsonl']);
    expect(imageLines(path.join(out, 'progress.jsonl'))).toBe(2);
    const again = await vitpath('trace-path', MODEL, ...IMAGES, ...SEARCH, '--limit', '2', '--out', out, '--resume', '-q');
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.results.settings).toMatchObject({ rule: 'gauss', steps: 2, search: { strategy: 'beam', beam: 2 } });
    expect(report.results.summary.map((m: { method: string }) => m.method)).toEqual(['path', 'effect']);
    for (const f of ['classes.svg', 'similarity.svg', 'ratios.svg', 'path-0.svg', 'path-0.vl.json']) expect(exists(out, f)).toBe(true);
    expect(exists(out, LOCK_FILE)).toBe(false);
    // The pictures are report files like the CSVs: without --force a new run refuses the folder.
    const plain = await vitpath('trace-path', MODEL, ...IMAGES, ...SEARCH, '--limit', '2', '--out', out);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/--force/);
  }, 240_000);
});

describe('the --out lock', () => {
  it('a folder held by a live run is refused (exit 2) with or without --force/--resume; a stale lock is taken over', async () => {
    const out = path.join(tmp, 'locked');
    fs.mkdirSync(out);
    // This test process is alive: its lock is real.
    const held = { pid: process.pid, host: os.hostname(), command: 'trace-path', startedAt: '2026-01-01T00:00:00.000Z' };
    fs.writeFileSync(path.join(out, LOCK_FILE), JSON.stringify(held));
    for (const extra of [[], ['--force'], ['--resume']]) {
      const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '1', '--out', out, ...extra);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${out} is in use by another vitpath run (trace-path, pid ${process.pid}, started 2026-01-01T00:00:00.000Z)`);
      expect(r.stderr).toContain(`delete ${path.join(out, LOCK_FILE)}`);
    }
    expect(fs.readdirSync(out)).toEqual([LOCK_FILE]); // nothing else was written
    // Every report command claims --out the same way (eval and probe-layers too).
    const ev = await vitpath('eval', MODEL, '--images', IMG_DIR, '--no-latency', '--threads', '1', '--provider', 'cpu', '--out', out);
    expect(ev.code, ev.stderr).toBe(2);
    expect(ev.stderr).toContain(`${out} is in use by another vitpath run`);
    // A lock whose process is gone is stale: taken over with a notice, released at the end.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    fs.writeFileSync(path.join(out, LOCK_FILE), JSON.stringify({ ...held, pid: dead.pid }));
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '1', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`removed a stale lock in ${out}`);
    expect(exists(out, LOCK_FILE)).toBe(false);
    expect(exists(out, 'report.json')).toBe(true);
  }, 120_000);
});

describe('a run that fails before finishing any image', () => {
  it('leaves nothing that blocks a plain rerun of the same command', async () => {
    const imgs = path.join(tmp, 'first-bad');
    fs.cpSync(IMG_DIR, imgs, { recursive: true });
    const bad = path.join(imgs, 'gray-16x16-noise.png'); // first in sorted order
    fs.writeFileSync(bad, 'not a png');
    const out = path.join(tmp, 'rerun');
    const args = ['trace-path', MODEL, '--images', imgs, '--labels', path.join(imgs, 'labels.csv'), ...FAST, '--out', out];
    const r = await vitpath(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    expect(exists(out)).toBe(false); // the folder it created is gone again
    fs.copyFileSync(path.join(IMG_DIR, 'gray-16x16-noise.png'), bad);
    const again = await vitpath(...args, '-q');
    expect(again.code, again.stderr).toBe(0);
  }, 120_000);
});

describe('--skip-bad-images', () => {
  const imgs = path.join(tmp, 'some-bad');
  beforeAll(() => {
    fs.cpSync(IMG_DIR, imgs, { recursive: true });
    fs.writeFileSync(path.join(imgs, 'gray-28x28-bar.png'), 'not a png');
    fs.writeFileSync(path.join(imgs, 'rgb-32x32-disc.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47])); // truncated
  });
  const args = () => ['--images', imgs, '--labels', path.join(imgs, 'labels.csv'), '--threads', '1', '--provider', 'cpu'];

  it('default: stops at the first unreadable image, naming it (exit 2)', async () => {
    const r = await vitpath('trace-path', MODEL, ...args(), ...FAST, '--out', path.join(tmp, 'skip-default'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot decode image .*gray-28x28-bar\.png.*or pass --skip-bad-images/);
  }, 120_000);

  it('trace-path: skips them, names each on stderr, lists and counts them in the report', async () => {
    const out = path.join(tmp, 'skip-trace');
    const r = await vitpath('trace-path', MODEL, ...args(), ...FAST, '--out', out, '--skip-bad-images', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.options.skipBadImages).toBe(true);
    expect(rep.results.images).toHaveLength(6);
    expect(rep.results.skipped.map((s: { id: string }) => s.id).sort()).toEqual(['gray-28x28-bar.png', 'rgb-32x32-disc.png']);
    for (const s of rep.results.skipped) expect(s.reason).toContain(path.join(imgs, s.id));
    expect(r.stderr).toMatch(/skipping an unreadable image: cannot decode image .*gray-28x28-bar\.png/);
    expect(r.stderr).toMatch(/skipping an unreadable image: cannot decode image .*rgb-32x32-disc\.png/);
    expect(r.stderr).toContain('skipped 2 unreadable images of 8');
  }, 120_000);

  it('probe-layers: the same, and the metrics are over the readable images', async () => {
    const out = path.join(tmp, 'skip-probe');
    const r = await vitpath('probe-layers', MODEL, ...args(), '--folds', '2', '--no-attribution', '--out', out, '--skip-bad-images', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.results.images.count).toBe(6);
    expect(rep.results.images.skipped).toHaveLength(2);
    expect(r.stderr).toContain('skipped 2 unreadable images of 8');
  }, 120_000);
});

describe('labels for only some images', () => {
  it('trace-path says how many are labelled, and the accuracy figures are over those', async () => {
    const part = path.join(tmp, 'part-labels.csv');
    fs.writeFileSync(part, lines(path.join(IMG_DIR, 'labels.csv')).slice(0, 6).join('\n') + '\n'); // header + 5
    const out = path.join(tmp, 'partial');
    const r = await vitpath('trace-path', MODEL, '--images', IMG_DIR, '--labels', part, ...FAST, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('trace-path: 5 of 8 images have labels; accuracy figures are over those 5 labelled images');
    expect(r.stdout).toContain('accuracy figures (clean accuracy, acc. change) are over the 5 labelled images of the 8');
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    const lab = rep.results.images.filter((im: { label: number | null }) => im.label !== null);
    expect(lab).toHaveLength(5);
    expect(rep.results.accuracy).toBe(lab.filter((im: { label: number; pred: number }) => im.pred === im.label).length / 5);
  }, 120_000);
});

describe('Ctrl-C and SIGTERM', () => {
  // A run slow enough to interrupt: one image per batch, many steps.
  const slow = (out: string) => ['trace-path', DIGITS_MODEL, '--images', DIGITS, '--batch', '1', '--steps', '100', '--baselines', 'none', '--threads', '1', '--out', out];

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal}: one line "interrupted after N of M images; continue with --resume --out DIR", exit ${code}, lock released`, async () => {
      const out = path.join(tmp, `sig-${signal}`);
      const log = path.join(out, 'progress.jsonl');
      const child = spawnVitpath(slow(out), { cwd: tmp });
      const done = collect(child);
      await waitFor(() => imageLines(log) >= 1, 90_000);
      if (signal === 'SIGINT') {
        // While it runs, a second run on the same folder is refused, even with --force.
        const second = await vitpath(...slow(out), '--force');
        expect(second.code).toBe(2);
        expect(second.stderr).toMatch(/is in use by another vitpath run \(trace-path, pid \d+/);
      }
      child.kill(signal);
      const r = await done;
      expect(r.code).toBe(code);
      const last = r.stderr.trim().split('\n').at(-1)!;
      const m = /^vitpath: interrupted after (\d+) of 40 images; continue with --resume --out (.+)$/.exec(last);
      expect(m, r.stderr).not.toBeNull();
      expect(Number(m![1])).toBe(imageLines(log));
      expect(m![2]).toBe(path.relative(tmp, out));
      expect(r.stderr.match(/interrupted/g)).toHaveLength(1);
      expect(exists(out, LOCK_FILE)).toBe(false);
      // The log is whole (one header, then image lines from this run only).
      const recs = lines(log).map((l) => JSON.parse(l));
      expect(recs.filter((x) => x.kind === 'run')).toHaveLength(1);
    }, 180_000);
  }
});

describe('ONNX Runtime errors', () => {
  // A model whose Reshape cannot take batch 2: ONNX Runtime fails inside run() and, unless told
  // otherwise, also prints its own red log line straight to the terminal (fd 2).
  const script = (host: 'thread' | 'worker') => `
    import { GraphBuilder, makeGraph, makeModel, tensorValueInfo } from '${ROOT}/dist/onnx/builder.js';
    import { DataType } from '${ROOT}/dist/onnx/proto.js';
    import { encodeModel } from '${ROOT}/dist/onnx/model.js';
    import { openSession } from '${ROOT}/dist/runtime/worker.js';
    const b = new GraphBuilder(17);
    const shape = b.initializer('shape', BigInt64Array.from([4n]), [1]);
    b.op('Reshape', ['x', shape], {}, 'y');
    const m = makeModel({ graph: makeGraph('g', b.nodes, [tensorValueInfo('x', DataType.FLOAT, ['N', 4])], [tensorValueInfo('y', DataType.FLOAT, [4])], b.initializers), opset: 17 });
    const s = await openSession(encodeModel(m), { provider: 'cpu', host: '${host}' });
    try { await s.run({ x: { data: new Float32Array(8), dims: [2, 4] } }); } catch (e) { process.stdout.write(e.exitCode + ' ' + e.message); }
    await s.release();
  `;
  for (const host of ['thread', 'worker'] as const) {
    it(`are reported once in vitpath's words, without ONNX Runtime's own log lines (${host} session)`, async () => {
      const file = path.join(tmp, `ort-error-${host}.mjs`);
      fs.writeFileSync(file, script(host));
      const r = await collect(spawn(process.execPath, [file], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^4 ONNX Runtime failed while running the model.*cannot be reshaped/);
      expect(r.stderr).toBe('');
    }, 60_000);
  }
});

describe('small usage rules', () => {
  it('--top-k below its minimum (5) is a usage error', async () => {
    const r = await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--top-k', '4', '--out', path.join(tmp, 'topk'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--top-k must be an integer from 5 to/);
    expect(exists(tmp, 'topk')).toBe(false);
  });

  it('probe-layers --schema works without a model', async () => {
    const r = await vitpath('probe-layers', '--schema');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).title).toMatch(/probe-layers report/);
  });

  it('vitpath with no command prints the help on stderr and exits 1', async () => {
    const r = await vitpath();
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: vitpath/);
    expect(r.stderr).toMatch(/130\/143 interrupted/);
  });

  it('CSV reports end their lines with LF only', async () => {
    const out = path.join(tmp, 'lf');
    expect((await vitpath('trace-path', MODEL, ...IMAGES, ...FAST, '--limit', '2', '--out', out, '-q')).code).toBe(0);
    for (const f of ['paths.csv', 'images.csv', 'classes.csv', 'similarity.csv']) {
      const text = fs.readFileSync(path.join(out, f), 'utf8');
      expect(text.includes('\r'), f).toBe(false);
      expect(text.endsWith('\n'), f).toBe(true);
    }
  }, 60_000);
});
