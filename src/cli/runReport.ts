// The CLI side of a report command, one copy for trace-path, probe-layers and demo (and eval,
// prune, quantize next): progress on stderr, notices printed once each (through the spinner),
// SIGINT/SIGTERM as one line "interrupted after N of M images; ..." with exit 130/143 (the run's
// lock released, nothing left that blocks a rerun), a hint to --resume when a resumable run fails
// after saving images, then the JSON report (--json) or the summary table on stdout and where the
// reports are.
import * as path from 'node:path';
import { ExitCode, VitpathError } from '../errors.js';
import type { Envelope } from '../report/envelope.js';
import type { OutDir } from '../report/outdir.js';
import { abandonActiveRuns, type RunHooks } from '../services/commandRun.js';
import { createProgress, type Progress } from './progress.js';
import { interactive, printJson, summary } from './output.js';

export interface ReportCommandSpec<E> {
  /** Label of the progress line, e.g. 'trace-path' or 'demo'. */
  label: string;
  /** Unit of the progress rate (default 'img'). */
  unit?: string;
  flags: { json: boolean; quiet: boolean };
  /**
   * How an interrupted or failed run is continued: the command line that resumes it (given the
   * folder), or undefined when the command cannot resume (the line then says to rerun it).
   */
  resume?: (dir: string) => string;
  /** The summary table. */
  render: (report: E, colour: boolean) => string;
}

/** A folder as shown to the user: relative to the working folder when inside it. */
export function shownPath(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? dir : rel;
}

/** The one line printed when a run is interrupted. */
export function interruptLine(o: { done: number; total: number | undefined; dir: string | undefined; resume?: (dir: string) => string; rerun: string }): string {
  if (o.total === undefined || o.dir === undefined) return `vitpath: interrupted before the first image; nothing was written.`;
  const head = `vitpath: interrupted after ${o.done} of ${o.total} images`;
  if (o.resume) return `${head}; continue with ${o.resume(shownPath(o.dir))}`;
  return `${head}; ${o.rerun} keeps no partial results, rerun it to start again`;
}

interface RunState {
  done: number;
  total: number | undefined;
  dir: string | undefined;
}

/**
 * Run a report command: `body` gets the hooks to pass to the service and returns its report and
 * output folder; this prints progress, notices, the interrupt line, and the result.
 */
export async function runReportCommand<E extends Envelope<unknown>>(
  spec: ReportCommandSpec<E>,
  body: (hooks: RunHooks) => Promise<{ report: E; outDir: OutDir }>,
): Promise<{ report: E; outDir: OutDir }> {
  const { json, quiet } = spec.flags;
  const st: RunState = { done: 0, total: undefined, dir: undefined };
  let progress: Progress | undefined;
  const seen = new Set<string>(); // several sessions report the same CPU fallback: say it once
  const hooks: RunHooks = {
    notice: (line) => {
      if (quiet || seen.has(line)) return;
      seen.add(line);
      if (progress) progress.log(line);
      else process.stderr.write(line + '\n');
    },
    progress: (done, total) => {
      st.done = done;
      st.total = total;
      if (!progress) progress = createProgress({ label: spec.label, total, unit: spec.unit ?? 'img', quiet });
      progress.update(done);
    },
    claimed: (dir) => {
      st.dir = dir;
    },
  };
  const onSignal = (signal: NodeJS.Signals) => {
    progress?.stop();
    abandonActiveRuns();
    process.stderr.write(interruptLine({ ...st, resume: spec.resume, rerun: spec.label }) + '\n');
    process.exit(signal === 'SIGTERM' ? ExitCode.TERMINATED : ExitCode.INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: { report: E; outDir: OutDir };
  try {
    outcome = await body(hooks);
  } catch (e) {
    progress?.fail();
    if (e instanceof VitpathError && spec.resume && st.dir !== undefined && st.done > 0 && st.total !== undefined) {
      e.notes.push(`vitpath: ${st.done} of ${st.total} images are saved in ${shownPath(st.dir)}; after fixing the cause, continue with ${spec.resume(shownPath(st.dir))}`);
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  progress?.succeed();
  const { report, outDir } = outcome;
  if (json) printJson(report);
  const files = outDir.files.map((f) => path.basename(f)).join(', ');
  summary(`${spec.render(report, interactive(spec.flags))}\nReports: ${shownPath(outDir.dir)}/ (${files})`, spec.flags);
  return outcome;
}
