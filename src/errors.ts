// Typed errors with the documented exit codes (see README "Exit codes").

export const ExitCode = {
  OK: 0,
  USAGE: 1,
  BAD_INPUT: 2,
  UNSUPPORTED: 3,
  RUNTIME: 4,
  /** A check the user asked for failed (e.g. eval --min-accuracy, --max-drop); the reports are written. */
  CHECK_FAILED: 5,
  /** Interrupted by SIGINT (Ctrl-C): 128 + 2. */
  INTERRUPTED: 130,
  /** Stopped by SIGTERM: 128 + 15. */
  TERMINATED: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line and turns into an exit code. */
export class VitpathError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Lines printed after the message (e.g. how to continue the run). */
  readonly notes: string[] = [];
  constructor(exitCode: ExitCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VitpathError';
    this.exitCode = exitCode;
  }
}

export const usageError = (msg: string) => new VitpathError(ExitCode.USAGE, msg);
export const badInput = (msg: string, cause?: unknown) => new VitpathError(ExitCode.BAD_INPUT, msg, { cause });
export const unsupported = (msg: string) => new VitpathError(ExitCode.UNSUPPORTED, msg);
export const runtimeError = (msg: string, cause?: unknown) => new VitpathError(ExitCode.RUNTIME, msg, { cause });
export const checkFailed = (msg: string) => new VitpathError(ExitCode.CHECK_FAILED, msg);
