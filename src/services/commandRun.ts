// One command run into an --out folder, shared by every command that writes reports (trace-path,
// probe-layers; eval, prune and quantize next): a Stopwatch from the start; the --out claim
// (existing report files refused without --force, the folder created, locked and proved writable,
// and checked for free space, all before any inference); the envelope; the report files, written
// with report.json last; and cleanup however the run ends: the lock is released, a run that
// finished no image leaves nothing that blocks its rerun, and a failure while writing the reports
// leaves no partial set that could pass for complete.
//
// report.json is the completion marker: an earlier report.json (allowed with --force/--resume) is
// deleted before a new set of reports is written, and the new one is written last, so a folder
// holding report.json holds a complete set of that run's files; without it, the run did not finish.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as z from 'zod';
import { makeEnvelope, Stopwatch, type Envelope, type EnvelopeInput, type OutputModelInfo } from '../report/envelope.js';
import { prepareOutDir, type OutDir } from '../report/outdir.js';
import { OutLock } from '../report/lock.js';
import { fileWriteError } from '../fs/atomic.js';
import type { JsonlLog } from '../report/jsonl.js';
import { sha256Hex } from '../onnx/model.js';

export const REPORT_JSON = 'report.json';

/** Below this many free bytes the file system of --out counts as full before the run starts. */
export const MIN_FREE_BYTES = 1024 * 1024;

/** What a service tells its caller while it runs (the CLI shows it; tests may record it). */
export interface RunHooks {
  /** A notice line for stderr (the caller prints each distinct line once). */
  notice?: (line: string) => void;
  /** Items done (resumed ones included) out of the total. */
  progress?: (done: number, total: number) => void;
  /** The output folder was claimed and locked (before any inference). */
  claimed?: (dir: string) => void;
}

export interface ClaimOptions {
  /** --out; default ./vitpath-out/<command>-<timestamp>. */
  out?: string;
  force?: boolean;
  /** Continue the run in --out from its progress log (report files may then be rewritten). */
  resume?: boolean;
  /** Every report file the run writes, report.json included. */
  files: readonly string[];
  /** The progress log kept across runs, if the command has one (refused like a report without --force or --resume). */
  log?: string;
  /** Base for relative paths (tests). */
  cwd?: string;
}

const active = new Set<CommandRun>();

export class CommandRun {
  readonly clock = new Stopwatch();
  private outDir: OutDir | undefined;
  private lock: OutLock | undefined;
  private log: JsonlLog<unknown> | undefined;
  private logName: string | undefined;
  /** The log held records when opened, and the service has not said how many items they hold. */
  private logHasUnknownRecords = false;
  private done = 0;
  private total: number | undefined;
  private ended = false;

  constructor(
    readonly command: string,
    readonly hooks: RunHooks = {},
  ) {}

  /** The claimed output folder. */
  get out(): OutDir {
    if (!this.outDir) throw new Error(`internal: ${this.command} wrote before claiming its output folder`);
    return this.outDir;
  }

  get claimed(): boolean {
    return this.outDir !== undefined;
  }

  /** Items done so far (resumed ones included) and the total, as last reported. */
  get counts(): { done: number; total: number | undefined } {
    return { done: this.done, total: this.total };
  }

  notice(line: string): void {
    this.hooks.notice?.(line);
  }

  progress(done: number, total: number): void {
    this.done = done;
    this.total = total;
    this.hooks.progress?.(done, total);
  }

  /**
   * Items already done by an earlier run (read back from the progress log), before progress starts.
   * Until a resumed run calls this, its log counts as holding results and is never removed.
   */
  resumed(done: number, total: number): void {
    this.done = done;
    this.total = total;
    this.logHasUnknownRecords = false;
  }

  /**
   * Claim --out before any inference: refuse existing report files without --force (exit 1),
   * create the folder, lock it (exit 2 when another run holds it or it cannot be written) and
   * check that its file system has room (exit 2 when full).
   */
  claim(o: ClaimOptions): OutDir {
    if (this.outDir) throw new Error(`internal: ${this.command} claimed its output folder twice`);
    const claimNow = [...o.files, ...(o.log && !o.resume ? [o.log] : [])];
    const out = prepareOutDir({ command: this.command, out: o.out, force: o.force, resume: o.resume, cwd: o.cwd }, claimNow);
    try {
      this.lock = OutLock.acquire(out.dir, this.command, (l) => this.notice(l));
      checkFreeSpace(out.dir);
    } catch (e) {
      this.lock?.release();
      this.lock = undefined;
      removeCreated(out);
      throw e;
    }
    this.outDir = out;
    this.logName = o.log;
    active.add(this);
    this.hooks.claimed?.(out.dir);
    return out;
  }

  /** Open the progress log named in claim(); the run closes it however it ends. */
  openLog<T>(opts: { resume?: boolean; validate?: (value: unknown, line: number) => T } = {}): JsonlLog<T> {
    if (!this.logName) throw new Error(`internal: ${this.command} opened a progress log it did not claim`);
    const log = this.out.openLog<T>(this.logName, opts);
    this.log = log as JsonlLog<unknown>;
    this.logHasUnknownRecords = log.previous.length > 0;
    return log;
  }

  /** The report envelope with this run's command and timings (validated against `schema`). */
  envelope<R>(input: Omit<EnvelopeInput<R>, 'command' | 'timings'> & { inference?: { runs: number; runMs: number } }, schema?: z.ZodType<R>): Envelope<R> {
    const { inference, ...rest } = input;
    return makeEnvelope({ ...rest, command: this.command, timings: this.clock.finish(inference) }, schema);
  }

  /**
   * Write the report files: an earlier report.json goes first, then `others` writes the other files
   * (it may be async, as chart rendering is), then report.json is written last. If any write fails, the files written here are removed again
   * (the progress log stays, so the run can be resumed) and the error (exit 2, naming the file)
   * goes on. Returns the paths written.
   */
  async writeReports(report: unknown, others: (out: OutDir) => unknown): Promise<string[]> {
    const out = this.out;
    const before = new Set(out.files);
    out.remove(REPORT_JSON);
    try {
      await others(out);
      out.writeJson(REPORT_JSON, report);
    } catch (e) {
      for (const f of out.files) {
        if (f === this.logName || before.has(f)) continue;
        try {
          fs.rmSync(out.path(f), { force: true });
        } catch {
          // the disk may refuse even this; the missing report.json still marks the set incomplete
        }
      }
      throw e;
    }
    return out.files.filter((f) => f !== this.logName).map((f) => out.path(f));
  }

  /** The run succeeded: close the log and release the lock. */
  finish(): void {
    this.end(false);
  }

  /**
   * The run failed or was interrupted: close the log; when no item was finished, remove the
   * progress log (it holds no result) and the folder if this run created it and it is empty, so
   * that a plain rerun is not refused; release the lock.
   */
  abandon(): void {
    this.end(true);
  }

  private end(failed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    active.delete(this);
    try {
      this.log?.close();
    } catch {
      // closing a log on a full disk may fail; nothing more to do
    }
    if (failed && this.outDir) {
      if (this.done === 0 && this.logName && !this.logHasUnknownRecords) {
        try {
          fs.rmSync(this.outDir.path(this.logName), { force: true });
        } catch {
          // best effort
        }
      }
    }
    this.lock?.release();
    if (failed && this.outDir) removeCreated(this.outDir);
  }
}

/** Remove the folders prepareOutDir created for `out` while they are empty. */
function removeCreated(out: OutDir): void {
  if (!out.created) return;
  let dir = out.dir;
  const stop = path.dirname(out.created);
  while (dir !== stop && dir.length >= out.created.length) {
    try {
      fs.rmdirSync(dir); // only succeeds when empty
    } catch {
      return;
    }
    dir = path.dirname(dir);
  }
}

/** Exit 2 before any inference when the file system of `dir` is (nearly) full. */
export function checkFreeSpace(dir: string, minBytes = MIN_FREE_BYTES): void {
  let free: number;
  try {
    const s = fs.statfsSync(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // not available here: the writes themselves will tell
  }
  if (free < minBytes) {
    const e = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    throw fileWriteError(dir, e, { what: `in the output folder (${free} bytes free)`, option: '--out' });
  }
}

/**
 * Run `body` as one command run: on success the lock is released; on any error (or throw) the run
 * is abandoned (see CommandRun.abandon) and the error goes on.
 */
export async function runCommand<T>(command: string, hooks: RunHooks, body: (run: CommandRun) => Promise<T>): Promise<T> {
  const run = new CommandRun(command, hooks);
  try {
    const result = await body(run);
    run.finish();
    return result;
  } catch (e) {
    run.abandon();
    throw e;
  }
}

/**
 * Abandon every run in progress (the CLI calls this on SIGINT/SIGTERM before exiting): locks are
 * released and runs without a finished item leave nothing behind. Returns how many there were.
 */
export function abandonActiveRuns(): number {
  const runs = [...active];
  for (const r of runs) r.abandon();
  return runs.length;
}

/** Path, sha256 and size of a model file a command wrote, for the report's outputModel. */
export function outputModelInfo(file: string, shownAs = file, externalData: readonly string[] = []): OutputModelInfo {
  const info = (p: string) => {
    const bytes = fs.readFileSync(p);
    return { sha256: sha256Hex(bytes), sizeBytes: bytes.length };
  };
  const main = info(file);
  const out: OutputModelInfo = { path: shownAs, ...main };
  if (externalData.length) out.externalData = externalData.map((p) => ({ path: p, ...info(p) }));
  return out;
}
