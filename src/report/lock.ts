// The lock on an output folder: one vitpath run at a time writes into a --out folder, so two runs
// never interleave their progress logs or overwrite each other's reports. The lock file
// (.vitpath.lock: pid, host, command, start time) is created exclusively before any inference,
// which also proves the folder writable, and removed when the run ends however it ends (success,
// error, Ctrl-C, process exit). A lock left by a process that no longer exists on this host is
// stale and taken over.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VitpathError, ExitCode } from '../errors.js';
import { fileWriteError } from '../fs/atomic.js';

export const LOCK_FILE = '.vitpath.lock';

/** An empty or unreadable lock younger than this may be a run that is just creating it. */
const FRESH_MS = 10_000;

export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

function readLock(file: string): { info: LockInfo | null; ageMs: number } | null {
  let text: string;
  let ageMs: number;
  try {
    ageMs = Date.now() - fs.statSync(file).mtimeMs;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null; // gone in the meantime
  }
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string') return { info: v as LockInfo, ageMs };
  } catch {
    // a lock being written, or damaged
  }
  return { info: null, ageMs };
}

/** Whether process `pid` exists on this host (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describe(info: LockInfo): string {
  return `${info.command}, pid ${info.pid}${info.host !== os.hostname() ? ` on ${info.host}` : ''}, started ${info.startedAt}`;
}

export class OutLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly file: string,
    readonly info: LockInfo,
  ) {
    process.once('exit', this.onExit);
  }

  /**
   * Lock `dir` for `command`. Exit 2 when another live run holds it (naming that run and the lock
   * file), or when the folder cannot be written (naming the folder and the reason).
   */
  static acquire(dir: string, command: string, notice?: (line: string) => void): OutLock {
    const file = path.join(dir, LOCK_FILE);
    const info: LockInfo = { pid: process.pid, host: os.hostname(), command, startedAt: new Date().toISOString() };
    for (let attempt = 0; ; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(file, 'wx');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw fileWriteError(dir, e, { what: 'in the output folder', option: '--out' });
        const other = readLock(file);
        if (other === null && attempt < 3) continue; // released meanwhile: try again
        const stale =
          other !== null &&
          (other.info ? other.info.host === os.hostname() && !processAlive(other.info.pid) : other.ageMs > FRESH_MS);
        if (stale && attempt < 3) {
          fs.rmSync(file, { force: true });
          notice?.(`vitpath: removed a stale lock in ${dir}${other.info ? ` (${describe(other.info)}; that process is gone)` : ''}`);
          continue;
        }
        throw new VitpathError(
          ExitCode.BAD_INPUT,
          `${dir} is in use by another vitpath run${other?.info ? ` (${describe(other.info)})` : ''}; wait for it to finish or choose another --out folder. If no vitpath run is using it, delete ${file}.`,
        );
      }
      try {
        fs.writeSync(fd, JSON.stringify(info) + '\n');
      } catch (e) {
        fs.closeSync(fd);
        fs.rmSync(file, { force: true });
        throw fileWriteError(dir, e, { what: 'in the output folder', option: '--out' });
      }
      fs.closeSync(fd);
      return new OutLock(file, info);
    }
  }

  /** Remove the lock file if it is still ours. Safe to call more than once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    const now = readLock(this.file);
    if (now?.info && (now.info.pid !== this.info.pid || now.info.startedAt !== this.info.startedAt)) return;
    try {
      fs.rmSync(this.file, { force: true });
    } catch {
      // the folder went away or became read-only: nothing left to unlock
    }
  }
}
