// ONNX Runtime sessions: execution-provider choice with CPU fallback, thread count, typed runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { runtimeError, usageError } from '../errors.js';

export type ProviderChoice = 'auto' | 'cuda' | 'cpu' | 'webgpu';
export const PROVIDER_CHOICES: ProviderChoice[] = ['auto', 'cuda', 'cpu', 'webgpu'];

export interface RuntimeOptions {
  provider?: ProviderChoice;
  deviceId?: number;
  /** Intra-op threads; 0 or undefined lets ONNX Runtime decide. */
  threads?: number;
  /** Where one-line notices go (fallback to CPU); defaults to stderr. */
  notice?: (line: string) => void;
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

export const CUDA_INSTALL_HINT =
  'Install the CUDA build of ONNX Runtime with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` on a machine that can reach the ONNX Runtime binaries (needs CUDA 12 and cuDNN 9), or use --provider cpu.';

function typeOf(f: Feed): ort.Tensor.Type {
  if (f.type) return f.type;
  if (f.data instanceof Float32Array) return 'float32';
  if (f.data instanceof Float64Array) return 'float64';
  if (f.data instanceof BigInt64Array) return 'int64';
  if (f.data instanceof Int32Array) return 'int32';
  if (f.data instanceof Uint16Array) return 'float16';
  return 'uint8';
}

/** A loaded model ready to run, and the execution provider that actually runs it. */
export class ModelSession {
  constructor(
    readonly session: ort.InferenceSession,
    readonly provider: 'cuda' | 'cpu' | 'webgpu',
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Record<string, Feed>, outputs?: string[]): Promise<Record<string, Output>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, f] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(typeOf(f), f.data as never, f.dims as number[]);
    let res: ort.InferenceSession.ReturnType;
    try {
      res = outputs ? await this.session.run(ortFeeds, outputs) : await this.session.run(ortFeeds);
    } catch (e) {
      throw runtimeError(`ONNX Runtime failed while running the model: ${(e as Error).message.split('\n')[0]}`, e);
    }
    const out: Record<string, Output> = {};
    for (const [k, t] of Object.entries(res)) out[k] = { data: t.data as Output['data'], dims: [...t.dims], type: t.type };
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function baseOptions(opts: RuntimeOptions): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  if (opts.threads && opts.threads > 0) {
    o.intraOpNumThreads = opts.threads;
    o.interOpNumThreads = 1;
  }
  return o;
}

let fallbackNoticed = false;

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

/**
 * Create a session. `auto` tries CUDA and falls back to CPU with one notice line; `cuda` and
 * `webgpu` fail with exit code 4 and a fix when the provider is unavailable.
 */
export async function createSession(model: Uint8Array | string, opts: RuntimeOptions = {}): Promise<ModelSession> {
  const provider = opts.provider ?? 'auto';
  if (!PROVIDER_CHOICES.includes(provider)) throw usageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')} (got "${provider}")`);
  const notice = opts.notice ?? ((l: string) => process.stderr.write(l + '\n'));
  const make = (eps: ort.InferenceSession.ExecutionProviderConfig[]) =>
    typeof model === 'string'
      ? ort.InferenceSession.create(model, { ...baseOptions(opts), executionProviders: eps })
      : ort.InferenceSession.create(model, { ...baseOptions(opts), executionProviders: eps });
  const deviceId = opts.deviceId ?? 0;
  if (provider === 'cpu') return new ModelSession(await makeOrFail(() => make(['cpu'])), 'cpu');
  if (provider === 'webgpu') {
    try {
      return new ModelSession(await make([{ name: 'webgpu' } as ort.InferenceSession.ExecutionProviderConfig]), 'webgpu');
    } catch (e) {
      throw runtimeError(
        `the WebGPU execution provider is not available here (${firstLine(e)}). It needs a GPU adapter with Vulkan/Metal/D3D12 drivers; use --provider cpu or cuda.`,
        e,
      );
    }
  }
  try {
    if (!cudaProviderInstalled()) throw new Error('libonnxruntime_providers_cuda is not installed in onnxruntime-node');
    return new ModelSession(await make([{ name: 'cuda', deviceId } as ort.InferenceSession.ExecutionProviderConfig]), 'cuda');
  } catch (e) {
    if (provider === 'cuda') throw runtimeError(`the CUDA execution provider could not start (${firstLine(e)}). ${CUDA_INSTALL_HINT}`, e);
    if (!fallbackNoticed) {
      notice('vitpath: CUDA execution provider not available, running on CPU (see README "Enabling CUDA").');
      fallbackNoticed = true;
    }
    return new ModelSession(await makeOrFail(() => make(['cpu'])), 'cpu');
  }
}

async function makeOrFail(f: () => Promise<ort.InferenceSession>): Promise<ort.InferenceSession> {
  try {
    return await f();
  } catch (e) {
    throw runtimeError(`ONNX Runtime could not load the model: ${firstLine(e)}`, e);
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 300);
}
