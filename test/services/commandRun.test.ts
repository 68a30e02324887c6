// The shared command run: claiming --out (report files, lock, free space), report.json written last
// and removed first, cleanup of a failed write, of a run that finished nothing, and of the folder
// it created; the lock file itself (exclusive, stale takeover, release only of one's own lock).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { abandonActiveRuns, checkFreeSpace, CommandRun, outputModelInfo, runCommand } from '../../src/services/commandRun.js';
import { LOCK_FILE, OutLock, processAlive } from '../../src/report/lock.js';
import { makeEnvelope, envelopeSchema } from '../../src/report/envelope.js';
import { sha256Hex } from '../../src/onnx/model.js';
import { ExitCode, VitpathError } from '../../src/errors.js';

let cwd: string;
beforeEach(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'vp-run-'));
});
afterEach(() => fs.rmSync(cwd, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<VitpathError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(VitpathError);
  return e as VitpathError;
}

const FILES = ['report.json', 'a.csv', 'b.csv'];

describe('the --out lock', () => {
  it('is exclusive while held, released by its holder, and says who holds it', () => {
    const dir = path.join(cwd, 'x');
    fs.mkdirSync(dir);
    const a = OutLock.acquire(dir, 'trace-path');
    const info = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'));
    expect(info).toMatchObject({ pid: process.pid, host: os.hostname(), command: 'trace-path' });
    let err: unknown;
    try {
      OutLock.acquire(dir, 'probe-layers');
    } catch (e) {
      err = e;
    }
    expect((err as VitpathError).exitCode).toBe(ExitCode.BAD_INPUT);
    expect((err as VitpathError).message).toContain(`is in use by another vitpath run (trace-path, pid ${process.pid}`);
    a.release();
    a.release(); // twice is fine
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    OutLock.acquire(dir, 'probe-layers').release();
  });

  it('takes over a stale lock (dead process on this host) and never removes a lock that is not its own', () => {
    const dir = path.join(cwd, 'y');
    fs.mkdirSync(dir);
    let pid = 999_999;
    while (processAlive(pid)) pid--;
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), command: 'x', startedAt: 'then' }));
    const notes: string[] = [];
    const l = OutLock.acquire(dir, 'trace-path', (n) => notes.push(n));
    expect(notes[0]).toMatch(/removed a stale lock/);
    // Someone else's lock in its place (e.g. after a manual delete and a new run) is left alone.
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), command: 'other', startedAt: 'now' }));
    l.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(true);
  });

  it('a lock from another host is never stale', () => {
    const dir = path.join(cwd, 'z');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example', command: 'trace-path', startedAt: 'then' }));
    expect(() => OutLock.acquire(dir, 'trace-path')).toThrow(/in use by another vitpath run \(trace-path, pid 1 on elsewhere\.example/);
  });
});

describe('CommandRun', () => {
  it('claims --out: report files refused without --force (exit 1), the folder locked until the run ends', async () => {
    const out = path.join(cwd, 'run');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'a.csv'), 'old\n');
    const refused = await rejection(runCommand('t', {}, async (run) => run.claim({ out, files: FILES })));
    expect(refused.exitCode).toBe(ExitCode.USAGE);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
    let claimedDir = '';
    const files = await runCommand('t', { claimed: (d) => (claimedDir = d) }, async (run) => {
      run.claim({ out, force: true, files: FILES });
      expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(true);
      return run.writeReports({ ok: 1 }, (o) => {
        o.writeCsv('a.csv', [{ x: 1 }]);
        o.writeCsv('b.csv', [{ y: 2 }]);
      });
    });
    expect(claimedDir).toBe(out);
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['a.csv', 'b.csv', 'report.json']);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  it('writes report.json last and removes an earlier one first; a failed write takes back the files it wrote', async () => {
    const out = path.join(cwd, 'w');
    const order: string[] = [];
    await runCommand('t', {}, async (run) => {
      run.claim({ out, files: FILES });
      await run.writeReports({ n: 1 }, (o) => {
        o.writeCsv('a.csv', [{ x: 1 }]);
        order.push(...fs.readdirSync(out).filter((f) => !f.startsWith('.')));
      });
    });
    expect(order).toEqual(['a.csv']); // report.json did not exist yet while the others were written
    // A second run (--force) whose second CSV fails: the old report.json went first, the new
    // a.csv is removed again, and the error goes on.
    const e = await rejection(
      runCommand('t', {}, async (run) => {
        run.claim({ out, force: true, files: FILES });
        await run.writeReports({ n: 2 }, (o) => {
          expect(fs.existsSync(path.join(out, 'report.json'))).toBe(false);
          o.writeCsv('a.csv', [{ x: 2 }]);
          throw new VitpathError(ExitCode.BAD_INPUT, 'disk full');
        });
      }),
    );
    expect(e.message).toBe('disk full');
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('a run that finished no item removes its progress log and the folder it created; one with items keeps the log', async () => {
    const parent = path.join(cwd, 'deep');
    const out = path.join(parent, 'er', 'run');
    await rejection(
      runCommand('t', {}, async (run) => {
        run.claim({ out, files: FILES, log: 'progress.jsonl' });
        run.openLog().append({ kind: 'run' });
        run.progress(0, 3);
        throw new VitpathError(ExitCode.BAD_INPUT, 'bad image');
      }),
    );
    expect(fs.existsSync(parent)).toBe(false); // every folder it created, and only those
    expect(fs.existsSync(cwd)).toBe(true);

    await rejection(
      runCommand('t', {}, async (run) => {
        run.claim({ out, files: FILES, log: 'progress.jsonl' });
        const log = run.openLog();
        log.append({ kind: 'run' });
        log.append({ kind: 'image', id: 'a' });
        run.progress(1, 3);
        throw new VitpathError(ExitCode.BAD_INPUT, 'bad image');
      }),
    );
    expect(fs.readdirSync(out)).toEqual(['progress.jsonl']);

    // Resuming that log and failing before saying what it holds: the log is kept.
    await rejection(
      runCommand('t', {}, async (run) => {
        run.claim({ out, resume: true, files: FILES, log: 'progress.jsonl' });
        run.openLog({ resume: true });
        throw new VitpathError(ExitCode.USAGE, 'different options');
      }),
    );
    expect(fs.readFileSync(path.join(out, 'progress.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('abandonActiveRuns (Ctrl-C) releases the locks of the runs in progress', async () => {
    const out = path.join(cwd, 'sig');
    const run = new CommandRun('t');
    run.claim({ out, files: FILES, log: 'progress.jsonl' });
    run.openLog().append({ kind: 'run' });
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(true);
    expect(abandonActiveRuns()).toBe(1);
    expect(fs.existsSync(out)).toBe(false); // nothing finished: nothing left
    expect(abandonActiveRuns()).toBe(0);
  });

  it('a full file system is refused before any work (exit 2 naming the folder)', () => {
    expect(() => checkFreeSpace(cwd, Number.MAX_SAFE_INTEGER)).toThrow(new RegExp(`cannot write in the output folder \\(\\d+ bytes free\\) ${cwd}: no space left on the device \\(ENOSPC\\)`));
    checkFreeSpace(cwd, 1);
  });

  it('the envelope records an output model (path, sha256, size) beside the input model, and only when there is one', () => {
    const f = path.join(cwd, 'model.onnx');
    fs.writeFileSync(f, Buffer.from('not really a model'));
    const info = outputModelInfo(f, 'out/model.onnx');
    expect(info).toEqual({ path: 'out/model.onnx', sha256: sha256Hex(fs.readFileSync(f)), sizeBytes: 18 });
    const base = {
      command: 'prune',
      options: {},
      model: { path: 'in.onnx', sha256: info.sha256, layout: null },
      runtime: null,
      timings: { startedAt: new Date(0).toISOString(), finishedAt: new Date(0).toISOString(), totalMs: 0, phases: {} },
      results: {},
    };
    const withOut = makeEnvelope({ ...base, outputModel: info });
    expect(Object.keys(withOut)).toEqual(['schemaVersion', 'tool', 'command', 'options', 'model', 'outputModel', 'runtime', 'timings', 'results']);
    expect(envelopeSchema().parse(withOut).outputModel).toEqual(info);
    expect('outputModel' in makeEnvelope(base)).toBe(false);
  });
});
