import { describe, expect, it, vi } from 'vitest';
import {
  createSession,
  cudaProviderInstalled,
  CUDA_INSTALL_HINT,
  FALLBACK_NOTICE,
  firstLine,
  openWithProvider,
  resetFallbackNotice,
} from '../../src/runtime/session.js';
import { VitpathError, ExitCode } from '../../src/errors.js';
import { handleError } from '../../src/cli/main.js';
import { matmulModel, matmulRef, sampleRows } from './tiny-models.js';

type Eps = Parameters<Parameters<typeof openWithProvider>[1]>[0];
const epName = (eps: Eps) => eps.map((e) => (typeof e === 'string' ? e : e.name));

/** A fake attempt that fails for the listed providers and records every try. */
function fakeAttempt(failing: string[]) {
  const tries: Eps[] = [];
  const attempt = async (eps: Eps, p: string) => {
    tries.push(eps);
    if (failing.includes(p)) throw new Error(`${p} EP failed to initialize\nsecond line`);
    return `session-on-${p}`;
  };
  return { tries, attempt };
}

async function rejection(p: Promise<unknown>): Promise<VitpathError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VitpathError);
    return e as VitpathError;
  }
  throw new Error('expected a rejection');
}

describe('provider policy (openWithProvider)', () => {
  it('auto: CUDA failure retries on CPU and notices once', async () => {
    const { tries, attempt } = fakeAttempt(['cuda']);
    const notice = vi.fn();
    const r = await openWithProvider({ provider: 'auto', deviceId: 2, notice }, attempt);
    expect(r).toEqual({ handle: 'session-on-cpu', provider: 'cpu' });
    expect(tries).toEqual([[{ name: 'cuda', deviceId: 2 }], ['cpu']]);
    expect(notice).toHaveBeenCalledTimes(1);
    expect(notice).toHaveBeenCalledWith(FALLBACK_NOTICE);
  });

  it('auto: default notice goes to stderr once per process', async () => {
    resetFallbackNotice();
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await openWithProvider({ provider: 'auto' }, fakeAttempt(['cuda']).attempt);
      await openWithProvider({}, fakeAttempt(['cuda']).attempt);
      const lines = spy.mock.calls.map((c) => String(c[0]));
      expect(lines).toEqual([FALLBACK_NOTICE + '\n']);
    } finally {
      spy.mockRestore();
      resetFallbackNotice();
    }
  });

  it('auto: CUDA that starts is used, without a notice', async () => {
    const { tries, attempt } = fakeAttempt([]);
    const notice = vi.fn();
    const r = await openWithProvider({ notice }, attempt);
    expect(r.provider).toBe('cuda');
    expect(tries).toHaveLength(1);
    expect(notice).not.toHaveBeenCalled();
  });

  it('cuda alone: exit 4 with the install command, no CPU retry', async () => {
    const { tries, attempt } = fakeAttempt(['cuda']);
    const e = await rejection(openWithProvider({ provider: 'cuda' }, attempt));
    expect(e.exitCode).toBe(ExitCode.RUNTIME);
    expect(e.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node');
    expect(e.message).toContain('cuda EP failed to initialize');
    expect(e.message).not.toContain('second line');
    expect(tries).toHaveLength(1);
  });

  it('webgpu: exit 4 with a clear message, no CPU retry', async () => {
    const { tries, attempt } = fakeAttempt(['webgpu']);
    const e = await rejection(openWithProvider({ provider: 'webgpu' }, attempt));
    expect(e.exitCode).toBe(ExitCode.RUNTIME);
    expect(e.message).toMatch(/WebGPU execution provider is not available/);
    expect(tries).toEqual([[{ name: 'webgpu' }]]);
  });

  it('cpu: one CPU try; a CPU failure is exit 4', async () => {
    const ok = fakeAttempt([]);
    expect((await openWithProvider({ provider: 'cpu' }, ok.attempt)).provider).toBe('cpu');
    expect(ok.tries).toEqual([['cpu']]);
    const e = await rejection(openWithProvider({ provider: 'cpu' }, fakeAttempt(['cpu']).attempt));
    expect(e.exitCode).toBe(ExitCode.RUNTIME);
    expect(e.message).toMatch(/could not load the model/);
  });

  it('bad provider or device id: usage error', async () => {
    const e = await rejection(openWithProvider({ provider: 'tpu' as never }, fakeAttempt([]).attempt));
    expect(e.exitCode).toBe(ExitCode.USAGE);
    const d = await rejection(openWithProvider({ deviceId: -1 }, fakeAttempt([]).attempt));
    expect(d.exitCode).toBe(ExitCode.USAGE);
  });

  it('firstLine strips ONNX Runtime source locations', () => {
    const msg =
      '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
    expect(firstLine(new Error(msg))).toBe('Failed to get a WebGPU adapter: No supported adapters');
    expect(firstLine(new Error('plain message\nmore'))).toBe('plain message');
  });
});

describe('createSession with the installed ONNX Runtime', () => {
  const fixed = matmulModel(1);

  it('cpu: runs a hand-built model to the host-computed answer and reports shapes', async () => {
    const s = await createSession(matmulModel('N'), { provider: 'cpu', threads: 1 });
    expect(s.provider).toBe('cpu');
    expect(s.inputShapes.x).toEqual(['N', 4]);
    const x = sampleRows(3);
    const out = await s.run({ x: { data: x, dims: [3, 4] } });
    expect(out.y!.dims).toEqual([3, 3]);
    const ref = matmulRef(x);
    out.y!.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    expect(s.stats.runs).toBe(1);
    expect(s.stats.runMs).toBeGreaterThan(0);
    await s.release();
  });

  it('reports a fixed batch dimension', async () => {
    const s = await createSession(fixed, { provider: 'cpu', threads: 1 });
    expect(s.inputShapes.x).toEqual([1, 4]);
    await s.release();
  });

  it.skipIf(cudaProviderInstalled())('auto falls back to CPU with one notice when CUDA is absent', async () => {
    const notice = vi.fn();
    const s = await createSession(fixed, { provider: 'auto', threads: 1, notice });
    expect(s.provider).toBe('cpu');
    expect(notice).toHaveBeenCalledTimes(1);
    await s.release();
  });

  it.skipIf(cudaProviderInstalled())('cuda fails with exit 4 and how to install the CUDA build', async () => {
    const e = await rejection(createSession(fixed, { provider: 'cuda', threads: 1 }));
    expect(e.exitCode).toBe(4);
    expect(e.message).toContain(CUDA_INSTALL_HINT);
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(handleError(e)).toBe(4);
      expect(String(spy.mock.calls[0]![0])).toContain('npm rebuild onnxruntime-node');
    } finally {
      spy.mockRestore();
    }
  });

  it('webgpu either runs or fails cleanly with exit 4 (never crashes or hangs)', async () => {
    let s;
    try {
      s = await createSession(fixed, { provider: 'webgpu', threads: 1 });
    } catch (e) {
      expect(e).toBeInstanceOf(VitpathError);
      expect((e as VitpathError).exitCode).toBe(4);
      expect((e as VitpathError).message).toMatch(/WebGPU/);
      return;
    }
    expect(s.provider).toBe('webgpu');
    await s.release();
  }, 30_000);

  it('a model ONNX Runtime cannot load is exit 4 naming the cause', async () => {
    const e = await rejection(createSession(new Uint8Array([1, 2, 3, 4]), { provider: 'cpu' }));
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/could not load the model/);
  });
});
