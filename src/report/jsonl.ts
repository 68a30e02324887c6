// Progress logs for long runs: one JSON line appended per finished item, read back for --resume.
// A crash can leave a truncated last line; reading drops it and resuming trims it off the file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { badInput } from '../errors.js';
import { fileWriteError } from '../fs/atomic.js';

export interface JsonlContents<T> {
  records: T[];
  /** The file ended in a partial line (dropped from `records`). */
  truncatedTail: boolean;
  /** Bytes up to and including the last complete, valid line. */
  validBytes: number;
}

/**
 * Read a JSON-lines file. A missing file reads as empty. A last line without its newline that is
 * not valid JSON is a truncated write and is dropped; a bad line elsewhere is bad input (exit 2).
 */
export function readJsonl<T = unknown>(file: string, validate?: (value: unknown, line: number) => T): JsonlContents<T> {
  if (!fs.existsSync(file)) return { records: [], truncatedTail: false, validBytes: 0 };
  const buf = fs.readFileSync(file);
  const records: T[] = [];
  let start = 0;
  let line = 0;
  let validBytes = 0;
  while (start < buf.length) {
    line++;
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    const text = buf.subarray(start, end).toString('utf8').trim();
    const last = nl < 0;
    if (text !== '') {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        if (last) return { records, truncatedTail: true, validBytes };
        throw badInput(`${file}:${line}: not a JSON line (the progress log is damaged). Delete that line to resume from the others, or rerun without --resume.`);
      }
      records.push(validate ? validate(value, line) : (value as T));
    }
    validBytes = last ? buf.length : end + 1;
    start = end + 1;
  }
  return { records, truncatedTail: false, validBytes };
}

/** An append-only JSON-lines log; each append is one write of one complete line. */
export class JsonlLog<T = unknown> {
  private fd: number | null;

  private constructor(
    readonly file: string,
    fd: number,
    /** Records already in the log when it was opened for resuming. */
    readonly previous: T[],
    readonly truncatedTail: boolean,
  ) {
    this.fd = fd;
  }

  /**
   * Open for appending. `resume`: keep the complete records (returned in `previous`), cutting a
   * truncated last line off the file; otherwise start an empty log (the caller checks --force).
   */
  static open<T = unknown>(file: string, opts: { resume: boolean; validate?: (value: unknown, line: number) => T }): JsonlLog<T> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!opts.resume) return new JsonlLog<T>(file, fs.openSync(file, 'w'), [], false);
    const got = readJsonl<T>(file, opts.validate);
    if (fs.existsSync(file)) {
      const size = fs.statSync(file).size;
      if (got.validBytes < size) fs.truncateSync(file, got.validBytes);
    }
    const fd = fs.openSync(file, 'a');
    // A complete last record without its newline: finish the line before appending.
    if (got.validBytes > 0) {
      const b = Buffer.alloc(1);
      const rfd = fs.openSync(file, 'r');
      try {
        fs.readSync(rfd, b, 0, 1, got.validBytes - 1);
      } finally {
        fs.closeSync(rfd);
      }
      if (b[0] !== 0x0a) fs.writeSync(fd, '\n');
    }
    return new JsonlLog<T>(file, fd, got.records, got.truncatedTail);
  }

  append(record: T): void {
    if (this.fd === null) throw new Error(`${this.file}: the progress log is closed`);
    const line = JSON.stringify(record);
    if (line === undefined || line.includes('\n')) throw new TypeError('a JSON-lines record must serialize to one line');
    try {
      fs.writeSync(this.fd, line + '\n');
    } catch (e) {
      throw fileWriteError(this.file, e, { option: '--out' });
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** The keys already done, e.g. resumeKeys(log.previous, (r) => r.image). */
export function resumeKeys<T, K>(records: readonly T[], key: (r: T) => K): Set<K> {
  return new Set(records.map(key));
}
