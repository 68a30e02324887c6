// A session hosted in a worker thread, with the same run() API as ModelSession, so that the main
// thread's event loop (spinner, signals) stays free while ONNX Runtime computes. Typed arrays
// cross the thread boundary through transfer lists (outputs always, feeds on request).
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type * as ort from 'onnxruntime-node';
import { runtimeError } from '../errors.js';
import {
  assertCudaInstalled,
  baseOptions,
  createSession,
  openWithProvider,
  shapesFromMetadata,
  typeOf,
  type DeclaredDims,
  type ExecutionProvider,
  type Feed,
  type Output,
  type RunOptions,
  type RunStats,
  type RuntimeOptions,
  type SessionLike,
} from './session.js';

// The worker body is plain CommonJS evaluated in the worker, so it works the same from src/
// (vitest) and dist/ (the built CLI). It holds at most one session.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session = null;
function whole(a) {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}
parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'create') {
      if (session) { await session.release(); session = null; }
      session = await ort.InferenceSession.create(msg.model, msg.options);
      let meta = [];
      try { meta = session.inputMetadata.map((m) => ({ name: m.name, isTensor: m.isTensor, shape: m.isTensor ? [...m.shape] : [] })); } catch {}
      parentPort.postMessage({ id: msg.id, ok: true, result: { inputNames: [...session.inputNames], outputNames: [...session.outputNames], meta } });
    } else if (msg.type === 'run') {
      const feeds = {};
      for (const [k, f] of Object.entries(msg.feeds)) feeds[k] = new ort.Tensor(f.type, f.data, f.dims);
      const t0 = performance.now();
      const res = msg.outputs ? await session.run(feeds, msg.outputs) : await session.run(feeds);
      const ms = performance.now() - t0;
      const out = {};
      const transfer = [];
      for (const [k, t] of Object.entries(res)) {
        const data = whole(t.data);
        out[k] = { data, dims: [...t.dims], type: t.type };
        if (!transfer.includes(data.buffer)) transfer.push(data.buffer);
      }
      parentPort.postMessage({ id: msg.id, ok: true, result: { out, ms } }, transfer);
    } else if (msg.type === 'release') {
      if (session) await session.release();
      session = null;
      parentPort.postMessage({ id: msg.id, ok: true, result: null });
    }
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, message: String((e && e.message) || e) });
  }
});
`;

interface CreateResult {
  inputNames: string[];
  outputNames: string[];
  meta: ort.InferenceSession.ValueMetadata[];
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** The worker thread and its request/reply plumbing. */
class WorkerChannel {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;

  constructor() {
    const req = createRequire(import.meta.url);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: req.resolve('onnxruntime-node') } });
    this.worker.on('message', (m: { id: number; ok: boolean; result?: unknown; message?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.message ?? 'worker failed'));
    });
    const failAll = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => failAll(e));
    this.worker.on('exit', (code) => failAll(new Error(`the ONNX Runtime worker thread exited (code ${code})`)));
    this.worker.unref(); // an idle worker never keeps the process alive
  }

  call<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.dead ??= new Error('the ONNX Runtime worker thread was released');
    await this.worker.terminate();
  }
}

/** A session living in a worker thread; create it with createWorkerSession(). */
export class WorkerSession implements SessionLike {
  readonly stats: RunStats = { runs: 0, runMs: 0 };
  readonly inputShapes: Readonly<Record<string, DeclaredDims>>;

  constructor(
    private readonly channel: WorkerChannel,
    readonly provider: ExecutionProvider,
    private readonly info: CreateResult,
  ) {
    this.inputShapes = shapesFromMetadata(info.meta);
  }

  get inputNames(): readonly string[] {
    return this.info.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.info.outputNames;
  }

  async run(feeds: Record<string, Feed>, outputs?: string[], options: RunOptions = {}): Promise<Record<string, Output>> {
    const msgFeeds: Record<string, { data: Feed['data']; dims: number[]; type: string }> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [k, f] of Object.entries(feeds)) {
      let data = f.data;
      if (options.transfer === true || (Array.isArray(options.transfer) && options.transfer.includes(k))) {
        // Only a buffer the array covers entirely may be handed over; views are copied first.
        if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
        if (!transfer.includes(data.buffer as ArrayBuffer)) transfer.push(data.buffer as ArrayBuffer);
      }
      msgFeeds[k] = { data, dims: [...f.dims], type: typeOf(f) };
    }
    let res: { out: Record<string, Output>; ms: number };
    try {
      res = await this.channel.call<{ out: Record<string, Output>; ms: number }>({ type: 'run', feeds: msgFeeds, outputs }, transfer);
    } catch (e) {
      throw runtimeError(`ONNX Runtime failed while running the model (worker thread): ${String((e as Error).message).split('\n')[0]}`, e);
    }
    this.stats.runs++;
    this.stats.runMs += res.ms;
    return res.out;
  }

  async release(): Promise<void> {
    try {
      await this.channel.call({ type: 'release' });
    } finally {
      await this.channel.terminate();
    }
  }
}

/**
 * Open a session inside a worker thread, with the same provider policy as createSession
 * (auto: CUDA, else CPU with one notice; cuda/webgpu: exit 4 with a fix when unavailable).
 * Model bytes are copied to the worker; pass a path for large models or external data.
 */
export async function createWorkerSession(model: Uint8Array | string, opts: RuntimeOptions = {}): Promise<WorkerSession> {
  const channel = new WorkerChannel();
  try {
    const { handle, provider } = await openWithProvider(opts, async (eps, p) => {
      if (p === 'cuda') assertCudaInstalled();
      return channel.call<CreateResult>({ type: 'create', model, options: { ...baseOptions(opts), executionProviders: eps } });
    });
    return new WorkerSession(channel, provider, handle);
  } catch (e) {
    await channel.terminate();
    throw e;
  }
}

/** Where a session runs: a worker thread (event loop stays free) or the calling thread. */
export type SessionHost = 'worker' | 'thread';

/**
 * Open a session for a long run. Defaults to the worker host: bench/runtime-progress.ts measured
 * that an in-thread run blocks the event loop for a whole batch (the spinner freezes), while the
 * worker keeps it free at the same throughput. Use host 'thread' for short, one-off runs.
 */
export async function openSession(model: Uint8Array | string, opts: RuntimeOptions & { host?: SessionHost } = {}): Promise<SessionLike> {
  const { host = 'worker', ...rt } = opts;
  return host === 'thread' ? createSession(model, rt) : createWorkerSession(model, rt);
}
