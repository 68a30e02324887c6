import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultOutDir, prepareOutDir, timestampForName } from '../../src/report/outdir.js';
import { VitpathError } from '../../src/errors.js';

let cwd: string;
beforeEach(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'vp-out-'));
});
afterEach(() => fs.rmSync(cwd, { recursive: true, force: true }));

function failsWith(code: number, f: () => unknown): VitpathError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    expect((e as VitpathError).exitCode).toBe(code);
    return e as VitpathError;
  }
  throw new Error(`expected exit code ${code}`);
}
const usage = (f: () => unknown) => failsWith(1, f);

describe('output folder', () => {
  const now = new Date(2026, 10, 27, 9, 5, 7);

  it('defaults to ./vitpath-out/<command>-<timestamp>, never reusing a folder', () => {
    expect(timestampForName(now)).toBe('20261127-090507');
    const a = prepareOutDir({ command: 'trace-path', cwd, now });
    expect(a.dir).toBe(path.join(cwd, 'vitpath-out', 'trace-path-20261127-090507'));
    expect(fs.statSync(a.dir).isDirectory()).toBe(true);
    const b = prepareOutDir({ command: 'trace-path', cwd, now });
    expect(b.dir).toBe(a.dir + '-2');
    expect(defaultOutDir('trace-path', now, cwd)).toBe(a.dir + '-3');
  });

  it('writes JSON, CSV and text files atomically and lists them', () => {
    const o = prepareOutDir({ command: 'probe', out: 'res', cwd });
    o.writeJson('report.json', { a: 1 });
    o.writeCsv('layers.csv', [{ layer: 0, acc: 0.5 }]);
    o.writeText('notes/readme.txt', 'hi');
    expect(JSON.parse(fs.readFileSync(path.join(cwd, 'res', 'report.json'), 'utf8'))).toEqual({ a: 1 });
    expect(fs.readFileSync(path.join(cwd, 'res', 'layers.csv'), 'utf8')).toBe('layer,acc\n0,0.5\n');
    expect(o.files).toEqual(['layers.csv', 'notes/readme.txt', 'report.json']);
    expect(fs.readdirSync(path.join(cwd, 'res')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // the same run may rewrite its own file (e.g. a checkpointed summary)
    o.writeJson('report.json', { a: 2 });
    expect(JSON.parse(fs.readFileSync(o.path('report.json'), 'utf8'))).toEqual({ a: 2 });
  });

  it('refuses to overwrite an existing report without --force, naming the file', () => {
    const dir = path.join(cwd, 'res');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'report.json'), 'old');
    const e = usage(() => prepareOutDir({ command: 'probe', out: dir }, ['report.json', 'layers.csv']));
    expect(e.message).toContain(path.join(dir, 'report.json'));
    expect(e.message).toContain('--force');
    // declared late: refused at write time, old content untouched
    const o = prepareOutDir({ command: 'probe', out: dir }, ['layers.csv']);
    usage(() => o.writeJson('report.json', { a: 1 }));
    expect(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).toBe('old');
    // with --force it is replaced
    const f = prepareOutDir({ command: 'probe', out: dir, force: true }, ['report.json']);
    f.writeJson('report.json', { a: 1 });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'))).toEqual({ a: 1 });
  });

  it('progress log: refused without --force, kept and read back with --resume', () => {
    const o = prepareOutDir({ command: 'trace-path', out: 'run', cwd });
    const log = o.openLog<{ i: number }>('progress.jsonl');
    log.append({ i: 0 });
    log.close();
    o.writeJson('report.json', {});
    const again = prepareOutDir({ command: 'trace-path', out: 'run', cwd });
    usage(() => again.openLog('progress.jsonl'));
    usage(() => prepareOutDir({ command: 'trace-path', cwd, resume: true }));
    const r = prepareOutDir({ command: 'trace-path', out: path.join(cwd, 'run'), resume: true }, ['report.json']);
    const l2 = r.openLog<{ i: number }>('progress.jsonl', { resume: true });
    expect(l2.previous).toEqual([{ i: 0 }]);
    l2.close();
    r.writeJson('report.json', { resumed: true });
  });

  it('rejects an --out that is a file or lies under a file (exit 2), and names that escape the folder', () => {
    fs.writeFileSync(path.join(cwd, 'afile'), '');
    expect(failsWith(2, () => prepareOutDir({ command: 'x', out: 'afile', cwd })).message).toMatch(/is a file, not a folder/);
    const under = failsWith(2, () => prepareOutDir({ command: 'x', out: 'afile/sub', cwd }));
    expect(under.message).toContain(path.join(cwd, 'afile/sub'));
    expect(under.message).toMatch(/ENOTDIR|ENOENT/);
    const o = prepareOutDir({ command: 'x', out: 'd', cwd });
    usage(() => o.writeText('../escape.txt', 'no'));
    expect(fs.existsSync(path.join(cwd, 'escape.txt'))).toBe(false);
  });
});
