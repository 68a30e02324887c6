// Outcomes of one conformance check and how a thrown error maps onto them: a VitpathError with
// exit code 3 is a named refusal; anything else thrown by vitpath is a failure.
import { ExitCode, VitpathError } from '../../src/errors.js';

/**
 * pass: vitpath's result matches the oracle. refused: vitpath stopped with an exit-3 message
 * naming what it does not cover. fail: a wrong result or an unexpected error. oracle: ONNX
 * Runtime itself cannot run the original model, so there is nothing to compare with (listed
 * case by case in RESULTS.md, never counted as a pass).
 */
export type Outcome = 'pass' | 'refused' | 'fail' | 'oracle';
export const OUTCOMES: readonly Outcome[] = ['pass', 'refused', 'fail', 'oracle'];

export interface CaseResult {
  suite: string;
  name: string;
  /** The operator the test exercises (see opLabel). */
  op: string;
  outcome: Outcome;
  /** Why (refusal message, failure, ORT error), or a short note for a pass. */
  detail: string;
  /** Autodiff: the precision the check ran in. */
  precision?: 'float64' | 'float32';
  /** Autodiff: worst relative error over the checked elements. */
  maxRelErr?: number;
  /** Autodiff: elements where the function has a kink (one-sided differences disagree). */
  kinks?: number;
  /** Folding: nodes before and after folding. */
  nodes?: [number, number];
  /** Folding: nodes the folder says it replaced by constants. */
  folded?: number;
}

/** A refusal when `e` is vitpath's exit-3 error, else a failure carrying the error text. */
export function outcomeOfError(e: unknown): { outcome: Outcome; detail: string } {
  if (e instanceof VitpathError && e.exitCode === ExitCode.UNSUPPORTED) return { outcome: 'refused', detail: oneLine(e.message) };
  return { outcome: 'fail', detail: `${e instanceof VitpathError ? `exit ${e.exitCode}: ` : ''}${oneLine(String((e as Error)?.message ?? e))}` };
}

export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
