import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSession } from '../../src/runtime/session.js';
import { createWorkerSession } from '../../src/runtime/worker.js';
import { fixedBatchOf, runBatched } from '../../src/runtime/batching.js';
import { cudaProviderInstalled } from '../../src/runtime/session.js';
import { VitpathError } from '../../src/errors.js';
import { IN, matmulModel, matmulRef, sampleRows } from './tiny-models.js';

const VIT = new URL('../../../shared/models/vit-mnist.onnx', import.meta.url).pathname;

describe('worker-thread session', () => {
  it('runs a hand-built model in the worker with the same answer, shapes and provider', async () => {
    const w = await createWorkerSession(matmulModel('N'), { provider: 'cpu', threads: 1 });
    try {
      expect(w.provider).toBe('cpu');
      expect(w.inputNames).toEqual(['x']);
      expect(w.outputNames).toEqual(['y']);
      expect(w.inputShapes.x).toEqual(['N', 4]);
      const x = sampleRows(6);
      const out = await w.run({ x: { data: x, dims: [6, IN] } });
      expect(out.y!.data).toBeInstanceOf(Float32Array);
      expect(out.y!.dims).toEqual([6, 3]);
      const ref = matmulRef(x);
      out.y!.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
      expect(x.length).toBe(24); // copied, not transferred
      const y = sampleRows(2);
      await w.run({ x: { data: y, dims: [2, IN] } }, undefined, { transfer: true });
      expect(y.length).toBe(0); // transferred: detached here
      expect(w.stats.runs).toBe(2);
    } finally {
      await w.release();
    }
  });

  it('transfers a view by copying it, leaving the parent buffer intact', async () => {
    const w = await createWorkerSession(matmulModel('N'), { provider: 'cpu', threads: 1 });
    try {
      const all = sampleRows(4);
      const view = all.subarray(IN, 3 * IN);
      const out = await w.run({ x: { data: view, dims: [2, IN] } }, ['y'], { transfer: true });
      expect(all.length).toBe(16);
      const ref = matmulRef(all.slice(IN, 3 * IN));
      out.y!.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    } finally {
      await w.release();
    }
  });

  it('drives runBatched with a fixed-batch model', async () => {
    const w = await createWorkerSession(matmulModel(1), { provider: 'cpu', threads: 1 });
    try {
      const x = sampleRows(5);
      const out = await runBatched(w, (s, c) => ({ x: { data: x.slice(s * IN, (s + c) * IN), dims: [c, IN] } }), 5, { batchSize: 8, fixedBatch: fixedBatchOf(w) });
      const ref = matmulRef(x);
      expect(out.y!.dims).toEqual([5, 3]);
      out.y!.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
      expect(x.length).toBe(20); // slices were transferred, not x
    } finally {
      await w.release();
    }
  });

  it('reports run errors and load errors as exit 4', async () => {
    const w = await createWorkerSession(matmulModel('N'), { provider: 'cpu', threads: 1 });
    try {
      await expect(w.run({ x: { data: new Float32Array(3), dims: [1, 3] } })).rejects.toMatchObject({ exitCode: 4 });
    } finally {
      await w.release();
    }
    await expect(w.run({ x: { data: new Float32Array(4), dims: [1, 4] } })).rejects.toBeInstanceOf(VitpathError);
    await expect(createWorkerSession(new Uint8Array([9, 9, 9]), { provider: 'cpu' })).rejects.toMatchObject({ exitCode: 4 });
  });

  it.skipIf(cudaProviderInstalled())('cuda in a worker: exit 4 with the install hint', async () => {
    await expect(createWorkerSession(matmulModel(1), { provider: 'cuda' })).rejects.toThrow(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it.skipIf(!fs.existsSync(VIT))('vit-mnist: worker logits equal in-thread logits exactly', async () => {
    const n = 8;
    const images = Float32Array.from({ length: n * 784 }, (_, k) => ((k * 7919) % 1000) / 1000);
    const a = await createSession(VIT, { provider: 'cpu', threads: 1 });
    const w = await createWorkerSession(VIT, { provider: 'cpu', threads: 1 });
    try {
      const feeds = () => ({ input: { data: images.slice(), dims: [n, 1, 28, 28] } });
      const ra = await a.run(feeds());
      const rw = await w.run(feeds(), undefined, { transfer: true });
      expect(rw.logits!.dims).toEqual([n, 10]);
      expect(Array.from(rw.logits!.data as Float32Array)).toEqual(Array.from(ra.logits!.data as Float32Array));
    } finally {
      await a.release();
      await w.release();
    }
  });
});

describe('openSession', () => {
  it('hosts in a worker by default and in-thread on request, with equal results', async () => {
    const { openSession, WorkerSession } = await import('../../src/runtime/worker.js');
    const { ModelSession } = await import('../../src/runtime/session.js');
    const w = await openSession(matmulModel('N'), { provider: 'cpu', threads: 1 });
    const t = await openSession(matmulModel('N'), { provider: 'cpu', threads: 1, host: 'thread' });
    try {
      expect(w).toBeInstanceOf(WorkerSession);
      expect(t).toBeInstanceOf(ModelSession);
      const x = sampleRows(3);
      const [a, b] = [await w.run({ x: { data: x, dims: [3, IN] } }), await t.run({ x: { data: x, dims: [3, IN] } })];
      expect(Array.from(a.y!.data as Float32Array)).toEqual(Array.from(b.y!.data as Float32Array));
    } finally {
      await w.release();
      await t.release();
    }
  });
});
