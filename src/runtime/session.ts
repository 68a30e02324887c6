// ONNX Runtime sessions: execution-provider choice with CPU fallback, thread count, typed runs,
// input shapes (to spot fixed batch sizes) and run timing. See worker.ts for the off-thread host.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { runtimeError, usageError } from '../errors.js';

export type ProviderChoice = 'auto' | 'cuda' | 'cpu' | 'webgpu';
export const PROVIDER_CHOICES: ProviderChoice[] = ['auto', 'cuda', 'cpu', 'webgpu'];
/** The execution provider a session actually runs on (what reports record). */
export type ExecutionProvider = 'cuda' | 'cpu' | 'webgpu';

export interface RuntimeOptions {
  provider?: ProviderChoice;
  deviceId?: number;
  /** Intra-op threads; 0 or undefined lets ONNX Runtime decide. */
  threads?: number;
  /**
   * Where the one-line CPU-fallback notice goes. Defaults to stderr, printed once per process;
   * a notice function given here is called on every fallback (the caller decides).
   */
  notice?: (line: string) => void;
  /**
   * ONNX Runtime's memory pattern (pre-planned allocation per input shape; default on). Off for the
   * gradient graphs: on a ViT-S/16-sized model it held 1.2 GB more at the same speed (5.0 -> 3.8 GB
   * peak, trace-path search, 16 samples per run; BENCHMARKS.md "trace-path at scale").
   */
  memoryPattern?: boolean;
}

/** A tensor on the host: float32/float64/int64/int32/uint8/bool data plus dims. */
export interface Feed {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
  dims: readonly number[];
  /** Override the element type name (e.g. 'bool' or 'float16'); inferred otherwise. */
  type?: ort.Tensor.Type;
}

export interface Output {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
  dims: number[];
  type: string;
}

/** Per-call options; sessions that cannot use one simply ignore it. */
export interface RunOptions {
  /**
   * Worker sessions only: hand the feeds' buffers to the worker instead of copying them. The
   * caller's typed arrays are detached afterwards, so only pass true (all feeds) or a list of feed
   * names for arrays built for this call.
   */
  transfer?: boolean | readonly string[];
}

/** Dims as the model declares them: numbers for fixed sizes, strings for symbolic ones. */
export type DeclaredDims = ReadonlyArray<number | string>;

/** What every session host (in-thread, worker) offers; analysis and batching use only this. */
export interface SessionLike {
  readonly provider: ExecutionProvider;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared input dims by name (empty array where the model declares no shape). */
  readonly inputShapes: Readonly<Record<string, DeclaredDims>>;
  /** Number of run() calls finished and the milliseconds they took in total. */
  readonly stats: RunStats;
  run(feeds: Record<string, Feed>, outputs?: string[], options?: RunOptions): Promise<Record<string, Output>>;
  release(): Promise<void>;
}

export interface RunStats {
  runs: number;
  runMs: number;
}

export const CUDA_INSTALL_HINT =
  'Install the CUDA build of ONNX Runtime with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` on a machine that can reach the ONNX Runtime binaries (needs CUDA 12 and cuDNN 9), or use --provider cpu.';

export const WEBGPU_HINT =
  'It needs a GPU adapter with working Vulkan/Metal/D3D12 drivers; use --provider cpu (or cuda with the CUDA build of ONNX Runtime).';

// ONNX Runtime's own log lines (warnings about stored shapes, errors of a failed node printed before
// the exception) would reach the user's terminal raw; vitpath reports failures once, in its own words,
// from the exception. Only fatal messages stay (the default logger and every session's);
// VITPATH_DEBUG=1 lets warnings through (see ortLogSeverity).
ort.env.logLevel = ortLogSeverity() === 4 ? 'fatal' : 'warning';

export const FALLBACK_NOTICE = 'vitpath: CUDA execution provider not available, running on CPU (see README "Enabling CUDA").';

export function typeOf(f: Feed): ort.Tensor.Type {
  if (f.type) return f.type;
  if (f.data instanceof Float32Array) return 'float32';
  if (f.data instanceof Float64Array) return 'float64';
  if (f.data instanceof BigInt64Array) return 'int64';
  if (f.data instanceof Int32Array) return 'int32';
  if (f.data instanceof Uint16Array) return 'float16';
  return 'uint8';
}

/** Input dims from a session's metadata, by name. */
export function shapesFromMetadata(meta: readonly ort.InferenceSession.ValueMetadata[] | undefined): Record<string, DeclaredDims> {
  const out: Record<string, DeclaredDims> = {};
  for (const m of meta ?? []) out[m.name] = m.isTensor ? [...m.shape] : [];
  return out;
}

/** A loaded model ready to run, and the execution provider that actually runs it. */
export class ModelSession implements SessionLike {
  readonly stats: RunStats = { runs: 0, runMs: 0 };
  readonly inputShapes: Readonly<Record<string, DeclaredDims>>;

  constructor(
    readonly session: ort.InferenceSession,
    readonly provider: ExecutionProvider,
  ) {
    let meta: readonly ort.InferenceSession.ValueMetadata[] | undefined;
    try {
      meta = session.inputMetadata;
    } catch {
      meta = undefined;
    }
    this.inputShapes = shapesFromMetadata(meta);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Record<string, Feed>, outputs?: string[], _options?: RunOptions): Promise<Record<string, Output>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, f] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(typeOf(f), f.data as never, f.dims as number[]);
    let res: ort.InferenceSession.ReturnType;
    const t0 = performance.now();
    try {
      res = outputs ? await this.session.run(ortFeeds, outputs) : await this.session.run(ortFeeds);
    } catch (e) {
      throw runtimeError(`ONNX Runtime failed while running the model: ${firstLine(e)}`, e);
    }
    this.stats.runs++;
    this.stats.runMs += performance.now() - t0;
    const out: Record<string, Output> = {};
    for (const [k, t] of Object.entries(res)) out[k] = { data: t.data as Output['data'], dims: [...t.dims], type: t.type };
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Session options shared by the in-thread and worker hosts (plain data, so it can cross threads). */
export function baseOptions(opts: RuntimeOptions): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: ortLogSeverity() };
  if (opts.threads && opts.threads > 0) {
    o.intraOpNumThreads = opts.threads;
    o.interOpNumThreads = 1;
  }
  if (opts.memoryPattern === false) o.enableMemPattern = false;
  return o;
}

/** ONNX Runtime log severity for sessions: 4 (fatal only) unless VITPATH_DEBUG asks for 2 (warnings). */
export function ortLogSeverity(env: NodeJS.ProcessEnv = process.env): 0 | 1 | 2 | 3 | 4 {
  const debug = env.VITPATH_DEBUG;
  return debug !== undefined && debug !== '' && debug !== '0' ? 2 : 4;
}

let fallbackNoticed = false;

/** Tests only: let the next default fallback notice print again. */
export function resetFallbackNotice(): void {
  fallbackNoticed = false;
}

/**
 * Whether the installed onnxruntime-node carries the CUDA provider library. The default npm
 * install (and `onnxruntime-node-install=skip`) ships CPU only; trying CUDA then only prints
 * ONNX Runtime's own error, so `auto` skips straight to CPU.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const req = createRequire(import.meta.url);
    const pkgDir = path.dirname(req.resolve('onnxruntime-node/package.json'));
    const binDir = path.join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so')) || fs.existsSync(path.join(binDir, 'onnxruntime_providers_cuda.dll'));
  } catch {
    return true; // cannot tell: let ONNX Runtime try
  }
}

/** Throws a plain Error (turned into a notice or exit 4 by the caller) when CUDA is not installed. */
export function assertCudaInstalled(): void {
  if (!cudaProviderInstalled()) throw new Error('libonnxruntime_providers_cuda is not installed in onnxruntime-node');
}

/** One try at opening a session with a list of execution providers. */
export type ProviderAttempt<T> = (eps: ort.InferenceSession.ExecutionProviderConfig[], provider: ExecutionProvider) => Promise<T>;

/**
 * The provider policy, independent of where the session lives: `cpu` opens on CPU; `webgpu` and
 * `cuda` fail with exit 4 and a fix when unavailable; `auto` tries CUDA ({name:'cuda', deviceId},
 * without ONNX Runtime's own 'cpu' fallback, which throws anyway when CUDA libraries are missing)
 * and on any failure retries on CPU after one notice line.
 */
export async function openWithProvider<T>(opts: RuntimeOptions, attempt: ProviderAttempt<T>): Promise<{ handle: T; provider: ExecutionProvider }> {
  const provider = opts.provider ?? 'auto';
  if (!PROVIDER_CHOICES.includes(provider)) throw usageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')} (got "${provider}")`);
  const deviceId = opts.deviceId ?? 0;
  if (!Number.isInteger(deviceId) || deviceId < 0) throw usageError(`--device-id must be a non-negative integer (got ${deviceId})`);
  const cpu = async () => ({ handle: await loadOrFail(() => attempt(['cpu'], 'cpu')), provider: 'cpu' as const });
  if (provider === 'cpu') return cpu();
  if (provider === 'webgpu') {
    try {
      return { handle: await attempt([{ name: 'webgpu' } as ort.InferenceSession.ExecutionProviderConfig], 'webgpu'), provider: 'webgpu' };
    } catch (e) {
      throw runtimeError(`the WebGPU execution provider is not available here (${firstLine(e)}). ${WEBGPU_HINT}`, e);
    }
  }
  try {
    return { handle: await attempt([{ name: 'cuda', deviceId } as ort.InferenceSession.ExecutionProviderConfig], 'cuda'), provider: 'cuda' };
  } catch (e) {
    if (provider === 'cuda') throw runtimeError(`the CUDA execution provider could not start (${firstLine(e)}). ${CUDA_INSTALL_HINT}`, e);
    if (opts.notice) opts.notice(FALLBACK_NOTICE);
    else if (!fallbackNoticed) {
      process.stderr.write(FALLBACK_NOTICE + '\n');
      fallbackNoticed = true;
    }
    return cpu();
  }
}

/**
 * Create an in-thread session. `auto` tries CUDA and falls back to CPU with one notice line;
 * `cuda` and `webgpu` fail with exit code 4 and a fix when the provider is unavailable.
 * Pass a file path for models with external data (ONNX Runtime resolves it next to the file).
 */
export async function createSession(model: Uint8Array | string, opts: RuntimeOptions = {}): Promise<ModelSession> {
  const { handle, provider } = await openWithProvider(opts, async (eps, p) => {
    if (p === 'cuda') assertCudaInstalled();
    const so = { ...baseOptions(opts), executionProviders: eps };
    return typeof model === 'string' ? ort.InferenceSession.create(model, so) : ort.InferenceSession.create(model, so);
  });
  return new ModelSession(handle, provider);
}

async function loadOrFail<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw runtimeError(`ONNX Runtime could not load the model: ${firstLine(e)}`, e);
  }
}

/**
 * The useful part of an ONNX Runtime error: its first line without the C++ source location and
 * failed-check preamble ("…webgpu_context.cc:136 …::<lambda()> cond was false. Failed to get…").
 */
export function firstLine(e: unknown): string {
  let s = String((e as Error)?.message ?? e).trim().split('\n')[0]!;
  const check = /\bwas false\.\s+(.+)$/.exec(s);
  if (check) s = check[1]!;
  s = s.replace(/^\S+\.(cc|cpp|h):\d+\s+/, '').replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '');
  return s.slice(0, 300);
}
