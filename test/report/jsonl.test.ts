import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonlLog, readJsonl, resumeKeys } from '../../src/report/jsonl.js';
import { VitpathError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vp-jsonl-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('JSON-lines progress log', () => {
  it('appends one line per record and reads them back', () => {
    const f = path.join(dir, 'progress.jsonl');
    const log = JsonlLog.open<{ image: string; score: number }>(f, { resume: false });
    log.append({ image: 'a.png', score: 1 });
    log.append({ image: 'b\n.png', score: 2 });
    log.close();
    expect(fs.readFileSync(f, 'utf8')).toBe('{"image":"a.png","score":1}\n{"image":"b\\n.png","score":2}\n');
    expect(readJsonl(f)).toEqual({ records: [{ image: 'a.png', score: 1 }, { image: 'b\n.png', score: 2 }], truncatedTail: false, validBytes: fs.statSync(f).size });
    expect(() => log.append({ image: 'c', score: 3 })).toThrow(/closed/);
  });

  it('resume tolerates a truncated last line, trims it, and appends after the good records', () => {
    const f = path.join(dir, 'progress.jsonl');
    const good = '{"image":"a","i":0}\n{"image":"b","i":1}\n';
    fs.writeFileSync(f, good + '{"image":"c","i"');
    const read = readJsonl<{ image: string }>(f);
    expect(read.records.map((r) => r.image)).toEqual(['a', 'b']);
    expect(read.truncatedTail).toBe(true);
    expect(read.validBytes).toBe(Buffer.byteLength(good));

    const log = JsonlLog.open<{ image: string; i: number }>(f, { resume: true });
    expect(log.previous.map((r) => r.image)).toEqual(['a', 'b']);
    expect(log.truncatedTail).toBe(true);
    expect([...resumeKeys(log.previous, (r) => r.image)]).toEqual(['a', 'b']);
    log.append({ image: 'c', i: 2 });
    log.close();
    expect(fs.readFileSync(f, 'utf8')).toBe(good + '{"image":"c","i":2}\n');
  });

  it('a complete last record without its newline is kept and the line finished', () => {
    const f = path.join(dir, 'p.jsonl');
    fs.writeFileSync(f, '{"i":0}\n{"i":1}');
    const log = JsonlLog.open<{ i: number }>(f, { resume: true });
    expect(log.previous).toEqual([{ i: 0 }, { i: 1 }]);
    log.append({ i: 2 });
    log.close();
    expect(readJsonl(f).records).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
  });

  it('a damaged line in the middle is bad input naming file and line', () => {
    const f = path.join(dir, 'p.jsonl');
    fs.writeFileSync(f, '{"i":0}\n{"i":\n{"i":2}\n');
    let err: unknown;
    try {
      readJsonl(f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(2);
    expect((err as VitpathError).message).toContain(`${f}:2`);
  });

  it('missing file reads empty; a fresh open empties an old log; validation runs per line', () => {
    const f = path.join(dir, 'none.jsonl');
    expect(readJsonl(f)).toEqual({ records: [], truncatedTail: false, validBytes: 0 });
    fs.writeFileSync(f, '{"i":0}\n\n{"i":1}\n');
    expect(readJsonl(f).records).toHaveLength(2);
    expect(() => readJsonl(f, (v, line) => {
      if ((v as { i: number }).i > 0) throw new Error(`bad at ${line}`);
      return v;
    })).toThrow('bad at 3');
    JsonlLog.open(f, { resume: false }).close();
    expect(fs.readFileSync(f, 'utf8')).toBe('');
  });
});
