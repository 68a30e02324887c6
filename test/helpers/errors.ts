// Expecting vitpath's own errors in tests.
import { expect } from 'vitest';
import { ExitCode, VitpathError } from '../../src/errors.js';

/** The message of the usage error (a VitpathError with exit code 1) that `f` throws; fails the test when it throws none. */
export function usageMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    expect((e as VitpathError).exitCode).toBe(ExitCode.USAGE);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}
