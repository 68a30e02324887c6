// The trace-path oracle hands its deviceId to the engine's sessions: an invalid id is refused by
// the session layer (exit 1) even on the CPU provider, which it would not be if the id were dropped.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { OrtNeuronOracle } from '../../src/engine/neuronOracle.js';
import { clearGraphCache } from '../../src/engine/gradientEngine.js';
import { ExitCode, VitpathError } from '../../src/errors.js';

const FIXTURE = path.resolve(__dirname, '../../fixtures/models/erf-ln-matmul.onnx');

describe('OrtNeuronOracle deviceId', () => {
  it('reaches the session options', async () => {
    const loaded = loadModel(FIXTURE);
    const layout = locateVit(loaded.proto);
    const base = { layers: [0, 1], token: 'cls' as const, objective: 'prob' as const, provider: 'cpu' as const, threads: 1 };
    const err = await OrtNeuronOracle.create(loaded, layout, { ...base, deviceId: -1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VitpathError);
    expect((err as VitpathError).exitCode).toBe(ExitCode.USAGE);
    expect((err as Error).message).toMatch(/device-id/);
    clearGraphCache();
    const ok = await OrtNeuronOracle.create(loaded, layout, { ...base, deviceId: 0 });
    expect(ok.provider).toBe('cpu');
    await ok.release();
  });
});
