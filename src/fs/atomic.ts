// Atomic file writes: write a temporary sibling, then rename over the target. A write that fails
// (disk full, read-only folder, no permission) is bad input naming the file (exit 2), not an
// internal error, and leaves neither the temporary file nor a half-written target behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VitpathError, ExitCode } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is a file, not a folder',
  EISDIR: 'it is a folder',
  ENOENT: 'the folder does not exist',
  EIO: 'input/output error',
  EFBIG: 'file too large',
  ENAMETOOLONG: 'name too long',
};

/** "no space left on the device (ENOSPC)" from a Node.js file-system error. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return code ?? String((e as Error)?.message ?? e);
}

export interface WriteErrorContext {
  /** What the path is, e.g. 'the output folder'. */
  what?: string;
  /** The option that chose the place, e.g. '--out' (the fix then names it). */
  option?: string;
}

/**
 * The error for a file or folder vitpath cannot write: exit 2, naming the path, the reason and the
 * fix. A VitpathError passes through unchanged.
 */
export function fileWriteError(file: string, e: unknown, ctx: WriteErrorContext = {}): VitpathError {
  if (e instanceof VitpathError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const elsewhere = ctx.option ? `choose another ${ctx.option} folder` : 'write somewhere else';
  const fix =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? `free some space or ${elsewhere}`
      : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
        ? ctx.option
          ? `choose an ${ctx.option} folder you can write to`
          : 'write to a folder you can write to'
        : `check the path or ${elsewhere}`;
  return new VitpathError(ExitCode.BAD_INPUT, `cannot write ${ctx.what ? `${ctx.what} ` : ''}${file}: ${describeFsError(e)}; ${fix}.`, { cause: e });
}

export function writeFileAtomic(file: string, data: string | Uint8Array, ctx: WriteErrorContext = {}): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing more to clean
    }
    throw fileWriteError(file, e, ctx);
  }
}
