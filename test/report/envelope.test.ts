import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { envelopeSchema, layoutSchema, makeEnvelope, runtimeInfo, SCHEMA_VERSION, Stopwatch } from '../../src/report/envelope.js';
import { registerReportSchema, reportJsonSchema, reportJsonSchemaText, resultsSchemaFor } from '../../src/report/schema.js';
import { TOOL_NAME, TOOL_VERSION } from '../../src/version.js';
import { sha256Hex, loadModel } from '../../src/onnx/model.js';
import { locateVit } from '../../src/vit/locate.js';
import { VitpathError } from '../../src/errors.js';

const VIT = new URL('../../../shared/models/vit-mnist.onnx', import.meta.url).pathname;
const results = z.object({ accuracy: z.number().min(0).max(1), perLayer: z.array(z.object({ layer: z.int(), value: z.number() })) });

async function sample() {
  const sw = new Stopwatch();
  await sw.time('load', () => new Promise((r) => setTimeout(r, 5)));
  sw.add('run', 2);
  const bytes = new TextEncoder().encode('not really a model');
  return makeEnvelope(
    {
      command: 'probe-layers',
      options: { provider: 'auto', batch: 32, out: undefined, layers: [0, 1] },
      model: { path: 'model.onnx', sha256: sha256Hex(bytes), layout: null },
      runtime: runtimeInfo({ provider: 'cpu' }, { provider: 'auto', threads: 1 }, 'worker'),
      timings: sw.finish({ runs: 3, runMs: 1.5 }),
      results: { accuracy: 0.75, perLayer: [{ layer: 0, value: 0.5 }] },
    },
    results,
  );
}

describe('report envelope', () => {
  it('carries version, tool, command, options, model, provider, timings and results', async () => {
    const env = await sample();
    expect(env.schemaVersion).toBe(SCHEMA_VERSION);
    expect(env.tool).toEqual({ name: TOOL_NAME, version: TOOL_VERSION });
    expect(env.command).toBe('probe-layers');
    expect(env.options).toEqual({ batch: 32, layers: [0, 1], provider: 'auto' });
    expect(Object.keys(env.options)).toEqual(['batch', 'layers', 'provider']);
    expect(env.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(env.runtime).toMatchObject({ requested: 'auto', used: 'cpu', threads: 1, host: 'worker', onnxruntime: '1.30.0' });
    expect(env.runtime!.deviceId).toBeUndefined();
    expect(env.timings.phases.load).toBeGreaterThanOrEqual(4);
    expect(env.timings.phases.run).toBe(2);
    expect(env.timings.inference).toEqual({ runs: 3, ms: 1.5 });
    expect(env.timings.totalMs).toBeGreaterThanOrEqual(env.timings.phases.load!);
    expect(Date.parse(env.timings.finishedAt)).toBeGreaterThanOrEqual(Date.parse(env.timings.startedAt));
    // JSON round trip validates against the schema
    expect(envelopeSchema(results, 'probe-layers').safeParse(JSON.parse(JSON.stringify(env))).success).toBe(true);
  });

  it('rejects reports that break the schema (bad results, NaN, wrong command, bad hash)', async () => {
    const env = JSON.parse(JSON.stringify(await sample()));
    const s = envelopeSchema(results, 'probe-layers');
    expect(s.safeParse({ ...env, results: { accuracy: 2, perLayer: [] } }).success).toBe(false);
    expect(s.safeParse({ ...env, command: 'prune' }).success).toBe(false);
    expect(s.safeParse({ ...env, schemaVersion: SCHEMA_VERSION + 1 }).success).toBe(false);
    expect(s.safeParse({ ...env, model: { ...env.model, sha256: 'abc' } }).success).toBe(false);
    expect(s.safeParse({ ...env, runtime: { ...env.runtime, used: 'auto' } }).success).toBe(false);
    expect(s.safeParse({ ...env, runtime: null }).success).toBe(true);
    const bad = () =>
      makeEnvelope(
        { command: 'x', options: {}, model: env.model, runtime: null, timings: env.timings, results: { accuracy: NaN, perLayer: [] } },
        results,
      );
    expect(bad).toThrow(VitpathError);
    expect(bad).toThrow(/does not match its schema/);
  });

  it.skipIf(!fs.existsSync(VIT))('the located layout of vit-mnist passes the layout schema', () => {
    const m = loadModel(VIT);
    const layout = locateVit(m.proto, { label: VIT });
    const parsed = layoutSchema.safeParse(JSON.parse(JSON.stringify(layout)));
    expect(parsed.success, parsed.success ? '' : z.prettifyError(parsed.error)).toBe(true);
    expect(layout.blocks).toHaveLength(4);
  });
});

describe('JSON Schema export', () => {
  it('describes the envelope and the registered results', () => {
    registerReportSchema('probe-layers', results);
    expect(resultsSchemaFor('probe-layers')).toBe(results);
    const js = reportJsonSchema('probe-layers') as {
      $schema: string; $id: string; required: string[]; properties: Record<string, { const?: unknown; properties?: Record<string, unknown>; anyOf?: unknown }>;
    };
    expect(js.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(js.$id).toContain('probe-layers');
    expect(js.required).toEqual(['schemaVersion', 'tool', 'command', 'options', 'model', 'runtime', 'timings', 'results']);
    expect(js.properties.schemaVersion!.const).toBe(SCHEMA_VERSION);
    expect(js.properties.command!.const).toBe('probe-layers');
    expect(Object.keys(js.properties.results!.properties!)).toEqual(['accuracy', 'perLayer']);
    const text = reportJsonSchemaText('probe-layers');
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(js);
  });
});
