// Several sessions of one model run side by side: every batch is cut into equal contiguous
// pieces, one per session, run concurrently (worker threads) and reassembled in order. On a
// small model this uses the CPU cores better than ONNX Runtime's intra-op threads (no per-kernel
// synchronisation), and the pieces depend only on the batch size and the pool size, so results
// do not depend on timing.
import { createSession, type ExecutionProvider, type Feed, type Output, type RuntimeOptions, type SessionLike } from './session.js';
import { createWorkerSession } from './worker.js';

export interface PoolOptions extends RuntimeOptions {
  /** Sessions run in parallel (default 1: one in-thread session, no worker). */
  sessions?: number;
  /** Run even a single session in a worker thread (keeps the event loop free during runs). */
  worker?: boolean;
}

/** Contiguous pieces [start, count) of `batch` rows for `parts` sessions, multiples of `unit` rows (the last may be short). */
export function splitRows(batch: number, parts: number, unit = 1): Array<[number, number]> {
  const units = Math.ceil(batch / unit);
  const k = Math.max(1, Math.min(parts, units));
  const out: Array<[number, number]> = [];
  let u0 = 0;
  for (let p = 0; p < k; p++) {
    const u1 = Math.round(((p + 1) * units) / k);
    const start = u0 * unit;
    const end = Math.min(batch, u1 * unit);
    if (end > start) out.push([start, end - start]);
    u0 = u1;
  }
  return out;
}

/** One run of a pool: its feeds, the outputs to fetch, and the feeds a worker may take over. */
export interface PoolJob {
  feeds: Record<string, Feed>;
  outputs?: string[];
  transfer?: readonly string[];
}

export class SessionPool {
  private constructor(readonly sessions: SessionLike[]) {}

  /**
   * Open `sessions` sessions of the model. One session runs in the calling thread (as
   * createSession); several run in worker threads. A provider other than the CPU gets one
   * session whatever was asked (a GPU runs one batch at a time anyway).
   */
  static async open(model: Uint8Array | string, opts: PoolOptions = {}): Promise<SessionPool> {
    const { sessions = 1, worker = false, ...rt } = opts;
    const k = Math.max(1, Math.floor(sessions));
    if (k === 1) return new SessionPool([worker ? await createWorkerSession(model, rt) : await createSession(model, rt)]);
    const first = await createWorkerSession(model, rt);
    if (first.provider !== 'cpu') return new SessionPool([first]);
    const rest = await Promise.all(Array.from({ length: k - 1 }, () => createWorkerSession(model, { ...rt, provider: 'cpu' })));
    return new SessionPool([first, ...rest]);
  }

  get size(): number {
    return this.sessions.length;
  }
  get provider(): ExecutionProvider {
    return this.sessions[0]!.provider;
  }
  get stats(): { runs: number; runMs: number } {
    return this.sessions.reduce((a, s) => ({ runs: a.runs + s.stats.runs, runMs: a.runMs + s.stats.runMs }), { runs: 0, runMs: 0 });
  }

  /**
   * Run `count` jobs (feeds + outputs each, built on demand) on the pool: each session takes the
   * next job when it is free. Results come back in job order. `transfer` names feeds built for the
   * job alone, which worker sessions take over instead of copying (see RunOptions.transfer).
   */
  async runAll(count: number, job: (j: number) => PoolJob): Promise<Record<string, Output>[]> {
    const out: Record<string, Output>[] = new Array(count);
    await this.runEach(count, job, (j, res) => (out[j] = res));
    return out;
  }

  /**
   * As runAll, handing each job's result to `done` as soon as it arrives (in no particular order)
   * instead of keeping them all: the caller can put it in place and let it go.
   */
  async runEach(count: number, job: (j: number) => PoolJob, done: (j: number, res: Record<string, Output>) => void): Promise<void> {
    let next = 0;
    let failed = false; // after a failed job the other sessions take no new ones (the call rejects at once)
    const lane = async (s: SessionLike) => {
      while (next < count && !failed) {
        const j = next++;
        try {
          const { feeds, outputs, transfer } = job(j); // built when a session is free: one job's feeds alive per session
          done(j, await s.run(feeds, outputs, transfer?.length ? { transfer } : undefined));
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    await Promise.all(this.sessions.slice(0, Math.max(1, Math.min(this.sessions.length, count))).map(lane));
  }

  async release(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}
