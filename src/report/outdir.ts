// The output folder of a command: ./vitpath-out/<command>-<timestamp> unless --out is given;
// existing report files are never overwritten without --force, and every file is written to a
// temporary sibling and renamed, so no half-written report ever exists. A folder that cannot be
// created or written is bad input (exit 2) naming it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { badInput, usageError, VitpathError, ExitCode } from '../errors.js';
import { fileWriteError, writeFileAtomic } from '../fs/atomic.js';
import { toCsv, type CsvRow } from './csv.js';
import { JsonlLog } from './jsonl.js';

const AT_OUT = { option: '--out' } as const;

export const DEFAULT_OUT_ROOT = 'vitpath-out';

export interface OutDirOptions {
  command: string;
  /** --out; default ./vitpath-out/<command>-<timestamp>. */
  out?: string;
  /** --force: overwrite report files that exist. */
  force?: boolean;
  /**
   * --resume: continue the run in --out (required); its progress log is kept and its report
   * files are rewritten from it, so they may be overwritten without --force.
   */
  resume?: boolean;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Clock for the default folder name (tests). */
  now?: Date;
}

/** "20261127-114000" in local time. */
export function timestampForName(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The default folder, suffixed -2, -3, ... when a run in the same second already took the name. */
export function defaultOutDir(command: string, now: Date, cwd = process.cwd()): string {
  const base = path.resolve(cwd, DEFAULT_OUT_ROOT, `${command}-${timestampForName(now)}`);
  let dir = base;
  for (let i = 2; fs.existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

export class OutDir {
  private readonly written = new Set<string>();

  constructor(
    readonly dir: string,
    /** Existing report files may be overwritten (--force or --resume). */
    readonly force: boolean,
    /** The outermost folder this run created for `dir` (undefined: `dir` existed already). */
    readonly created?: string,
  ) {}

  /** Absolute path of a file in the folder; names must stay inside it. */
  path(name: string): string {
    const p = path.resolve(this.dir, name);
    const rel = path.relative(this.dir, p);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new VitpathError(ExitCode.USAGE, `report file name "${name}" leaves the output folder ${this.dir}`);
    return p;
  }

  /** Refuse (exit 1, naming the file) when a report file exists and --force was not given. */
  claim(...names: string[]): void {
    for (const name of names) {
      const p = this.path(name);
      if (!this.force && !this.written.has(p) && fs.existsSync(p)) {
        throw usageError(`${p} already exists; pass --force to overwrite it, or choose another --out folder.`);
      }
    }
  }

  private write(name: string, data: string | Uint8Array): string {
    this.claim(name);
    const p = this.path(name);
    writeFileAtomic(p, data, AT_OUT);
    this.written.add(p);
    return p;
  }

  writeJson(name: string, value: unknown): string {
    return this.write(name, JSON.stringify(value, null, 2) + '\n');
  }

  writeText(name: string, text: string): string {
    return this.write(name, text);
  }

  writeBytes(name: string, data: Uint8Array): string {
    return this.write(name, data);
  }

  writeCsv(name: string, rows: readonly CsvRow[], columns?: readonly string[]): string {
    return this.write(name, toCsv(rows, columns));
  }

  /**
   * Delete report files of an earlier run (allowed with --force/--resume only) and files this run
   * wrote, e.g. report.json before a new set of reports is written so that it never stands beside
   * files of another run. Missing files are fine.
   */
  remove(...names: string[]): void {
    for (const name of names) {
      const p = this.path(name);
      if (!this.force && !this.written.has(p)) continue;
      try {
        fs.rmSync(p, { force: true });
      } catch (e) {
        throw fileWriteError(p, e, AT_OUT);
      }
      this.written.delete(p);
    }
  }

  /**
   * The progress log. With resume the existing log is kept and read back; otherwise an existing
   * log is refused without --force like any report file.
   */
  openLog<T = unknown>(name: string, opts: { resume?: boolean; validate?: (value: unknown, line: number) => T } = {}): JsonlLog<T> {
    if (!opts.resume) this.claim(name);
    const p = this.path(name);
    this.written.add(p);
    try {
      return JsonlLog.open<T>(p, { resume: Boolean(opts.resume), validate: opts.validate });
    } catch (e) {
      if (e instanceof VitpathError) throw e;
      throw fileWriteError(p, e, AT_OUT);
    }
  }

  /** Files this run wrote, relative to the folder, sorted. */
  get files(): string[] {
    return [...this.written].map((p) => path.relative(this.dir, p)).sort();
  }
}

/**
 * Create (if needed) the output folder and check up front that none of `reportFiles` exists
 * unless --force, so a run fails before its work, not after.
 */
export function prepareOutDir(opts: OutDirOptions, reportFiles: readonly string[] = []): OutDir {
  const cwd = opts.cwd ?? process.cwd();
  if (opts.resume && opts.out === undefined) throw usageError('--resume needs --out <folder of the run to resume>.');
  const dir = opts.out !== undefined ? path.resolve(cwd, opts.out) : defaultOutDir(opts.command, opts.now ?? new Date(), cwd);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw badInput(`--out ${dir} is a file, not a folder; choose a folder name.`);
  let created: string | undefined;
  try {
    created = fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw fileWriteError(dir, e, { what: 'the output folder', option: '--out' });
  }
  const out = new OutDir(dir, Boolean(opts.force) || Boolean(opts.resume), created);
  out.claim(...reportFiles);
  return out;
}
