// The CLI process's stdout and stderr when the reader goes away or the device fails. A closed
// stderr (`vitpath ... 2>&1 | head -1`) never stops a run: progress and notices are dropped and the
// reports are still written. A closed stdout (EPIPE: `| head`) ends the output, not the run. Any
// other stdout failure (`> /dev/full`: ENOSPC, EIO) is one plain line on stderr and exit 4,
// never a stack trace.
import { ExitCode } from '../errors.js';
import { describeFsError } from '../fs/atomic.js';

type Stream = NodeJS.WriteStream;

const state = { stdoutFailed: false, stdoutClosed: false, stderrClosed: false };

/** Make a stream swallow every later write (the reader is gone or the device is broken). */
function silence(s: Stream): void {
  s.write = ((_chunk: unknown, encOrCb?: unknown, cb?: unknown) => {
    const done = typeof encOrCb === 'function' ? encOrCb : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  }) as Stream['write'];
}

/**
 * Install the handlers on process.stdout and process.stderr (once). `onStdoutFailure` runs on the
 * first stdout error that is not EPIPE, after the message is written.
 */
export function guardStdio(onStdoutFailure: () => void = () => {}): void {
  if ((process.stdout as Stream & { vitpathGuard?: boolean }).vitpathGuard) return;
  (process.stdout as Stream & { vitpathGuard?: boolean }).vitpathGuard = true;
  process.stderr.on('error', () => {
    state.stderrClosed = true;
    silence(process.stderr);
  });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (state.stdoutClosed || state.stdoutFailed) return;
    silence(process.stdout);
    if (e.code === 'EPIPE') {
      state.stdoutClosed = true;
      return;
    }
    state.stdoutFailed = true;
    process.stderr.write(`vitpath: error: cannot write the output to stdout: ${describeFsError(e)}.\n`);
    onStdoutFailure();
  });
}

/** Whether stdout failed with an error other than a closed pipe (the run then exits 4). */
export function stdoutFailed(): boolean {
  return state.stdoutFailed;
}

/** The exit code once the command returned `code`: a failed stdout turns success into exit 4. */
export function finalExitCode(code: number): number {
  return state.stdoutFailed && code === ExitCode.OK ? ExitCode.RUNTIME : code;
}
