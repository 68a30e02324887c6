// Progress for long runs on stderr (never stdout): an ora spinner with done/total, rate and ETA on
// an interactive terminal; occasional plain lines when stderr is not a TTY, in CI or with NO_COLOR;
// nothing at all with --quiet.
import ora, { type Ora } from 'ora';

export type ProgressMode = 'spinner' | 'plain' | 'silent';

export interface ProgressOptions {
  /** What is being done, e.g. 'trace-path'. */
  label: string;
  total: number;
  /** Unit for the rate, e.g. 'img' (default 'items'). */
  unit?: string;
  quiet?: boolean;
  /** Defaults to process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env?: NodeJS.ProcessEnv;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** Plain mode: least time between two progress lines (default 10 s). */
  plainEveryMs?: number;
  /** Force a mode instead of detecting it. */
  mode?: ProgressMode;
}

/**
 * Which kind of progress output fits: spinner only on an interactive stderr outside CI without
 * NO_COLOR, whose width is known and positive (a terminal reporting 0 columns would make the
 * spinner redraw without end).
 */
export function progressMode(o: { quiet?: boolean; isTTY?: boolean; columns?: number; env?: NodeJS.ProcessEnv }): ProgressMode {
  if (o.quiet) return 'silent';
  const env = o.env ?? process.env;
  if (!o.isTTY || isSet(env.CI) || env.NO_COLOR !== undefined || env.TERM === 'dumb') return 'plain';
  if (o.columns !== undefined && !(o.columns > 0)) return 'plain';
  return 'spinner';
}

function isSet(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** 75 s -> "1:15", 3725 s -> "1:02:05". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const t = Math.round(ms / 1000);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = t % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface ProgressStats {
  done: number;
  total: number;
  fraction: number;
  /** Items per second so far (0 before the first item). */
  rate: number;
  elapsedMs: number;
  /** Estimated milliseconds left; NaN while unknown. */
  etaMs: number;
}

export function progressStats(done: number, total: number, elapsedMs: number): ProgressStats {
  const rate = elapsedMs > 0 && done > 0 ? (done * 1000) / elapsedMs : 0;
  const left = Math.max(0, total - done);
  return { done, total, fraction: total > 0 ? done / total : 1, rate, elapsedMs, etaMs: rate > 0 ? (left / rate) * 1000 : left === 0 ? 0 : NaN };
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 10 ? rate.toFixed(1) : rate.toFixed(2);
}

/** "trace-path 120/1000 (12.0%) 3.52 img/s, elapsed 0:34, ETA 4:10". */
export function formatProgress(label: string, s: ProgressStats, unit = 'items'): string {
  const pct = (s.fraction * 100).toFixed(1);
  return `${label} ${s.done}/${s.total} (${pct}%) ${formatRate(s.rate)} ${unit}/s, elapsed ${formatDuration(s.elapsedMs)}, ETA ${formatDuration(s.etaMs)}`;
}

export class Progress {
  readonly mode: ProgressMode;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly now: () => number;
  private readonly start: number;
  private readonly plainEveryMs: number;
  private lastPlain = -Infinity;
  private spinner: Ora | null = null;
  private done = 0;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.plainEveryMs = opts.plainEveryMs ?? 10_000;
    this.mode = opts.mode ?? progressMode({ quiet: opts.quiet, isTTY: Boolean(this.stream.isTTY), columns: this.stream.isTTY ? (this.stream.columns ?? 0) : undefined, env: opts.env });
    if (this.mode === 'spinner') {
      this.spinner = ora({ text: this.text(), stream: this.stream as NodeJS.WriteStream, isEnabled: true, discardStdin: false }).start();
    } else if (this.mode === 'plain') {
      this.line(`${opts.label}: ${opts.total} ${opts.unit ?? 'items'} to do`);
      this.lastPlain = this.start;
    }
  }

  get stats(): ProgressStats {
    return progressStats(this.done, this.opts.total, this.now() - this.start);
  }

  private text(): string {
    return formatProgress(this.opts.label, this.stats, this.opts.unit);
  }

  private line(s: string): void {
    this.stream.write(s + '\n');
  }

  /** Set the number of items done (e.g. from runBatched's onProgress). */
  update(done: number): void {
    if (this.finished) return;
    this.done = Math.max(0, done);
    if (this.spinner && !((this.stream.columns ?? 0) > 0)) {
      // the terminal now reports no width (resized to nothing, detached): stop drawing
      this.spinner.stop();
      this.spinner = null;
    }
    if (this.spinner) this.spinner.text = this.text();
    else if (this.mode === 'plain') {
      const t = this.now();
      if (t - this.lastPlain >= this.plainEveryMs) {
        this.lastPlain = t;
        this.line(this.text());
      }
    }
  }

  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** A message line (warning, notice) that does not break the spinner; silent with --quiet. */
  log(line: string): void {
    if (this.mode === 'silent') return;
    if (this.spinner) {
      this.spinner.clear();
      this.line(line);
      this.spinner.render();
    } else this.line(line);
  }

  /** Finish with a final line (default: the progress line with the total time). */
  succeed(text?: string): void {
    if (this.finished) return;
    this.finished = true;
    const final = text ?? `${this.opts.label} done: ${this.done}/${this.opts.total} in ${formatDuration(this.now() - this.start)} (${formatRate(this.stats.rate)} ${this.opts.unit ?? 'items'}/s)`;
    if (this.spinner) this.spinner.succeed(final);
    else if (this.mode === 'plain') this.line(final);
  }

  fail(text?: string): void {
    if (this.finished) return;
    this.finished = true;
    const final = text ?? `${this.opts.label} stopped at ${this.done}/${this.opts.total}`;
    if (this.spinner) this.spinner.fail(final);
    else if (this.mode === 'plain') this.line(final);
  }

  /** Stop without a final line (e.g. before printing an error). */
  stop(): void {
    this.finished = true;
    this.spinner?.stop();
  }
}

export function createProgress(opts: ProgressOptions): Progress {
  return new Progress(opts);
}
