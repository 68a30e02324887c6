// The envelope every JSON report carries (DESIGN.md "Conventions"): schema version, tool and
// version, command, options used, model path + sha256 + located layout, the execution provider
// actually used, timings, and the command's results — as a zod 4 schema plus makeEnvelope().
import { createRequire } from 'node:module';
import * as z from 'zod';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { VitpathError, ExitCode } from '../errors.js';

/** Bump when a field of the envelope changes meaning or is removed (adding fields keeps it). */
export const SCHEMA_VERSION = 1;

const nonNegInt = z.int().nonnegative();

const linearSchema = z.looseObject({
  kind: z.enum(['matmul', 'gemm']),
  node: z.string(),
  input: z.string(),
  output: z.string(),
  weight: z.string(),
  bias: z.string().optional(),
  transB: z.boolean().optional(),
  inFeatures: nonNegInt,
  outFeatures: nonNegInt,
});

const normSchema = z.looseObject({
  kind: z.string(),
  input: z.string(),
  output: z.string(),
  scale: z.string().optional(),
  bias: z.string().optional(),
});

const blockSchema = z.looseObject({
  index: nonNegInt,
  input: z.string(),
  attnResidual: z.string(),
  output: z.string(),
  attnNorm: normSchema.optional(),
  attnBranch: z.string(),
  attnSoftmax: z.string(),
  mlpNorm: normSchema.optional(),
  mlpBranch: z.string(),
  fc1: linearSchema,
  activation: z.looseObject({ kind: z.string(), input: z.string(), output: z.string() }),
  neuron: z.string(),
  neuronLayout: z.enum(['btf', 'flat']),
  fc2: linearSchema,
});

/** The located ViT layout (src/vit/types.ts ViTLayout); loose so that added fields pass. */
export const layoutSchema = z
  .looseObject({
    facts: z.looseObject({
      numBlocks: nonNegInt,
      width: nonNegInt,
      ffnWidth: nonNegInt,
      heads: nonNegInt.nullable(),
      tokens: nonNegInt,
      numPatches: nonNegInt,
      patchSize: nonNegInt.nullable(),
      imageSize: z.tuple([nonNegInt, nonNegInt]),
      channels: nonNegInt,
      numClasses: nonNegInt,
      batch: z.union([z.literal('dynamic'), nonNegInt]),
      opset: nonNegInt,
      irVersion: nonNegInt,
      producer: z.string(),
      pooling: z.enum(['cls', 'mean']),
    }),
    input: z.string(),
    inputDims: z.array(z.union([z.number(), z.string()])),
    logits: z.string(),
    extraOutputs: z.array(z.string()),
    patchEmbed: z.looseObject({ node: z.string(), weight: z.string(), bias: z.string().optional(), output: z.string() }),
    classToken: z.looseObject({ initializer: z.string(), row: nonNegInt }).optional(),
    blocks: z.array(blockSchema),
    finalNorm: normSchema.optional(),
    pooled: z.string(),
    head: linearSchema,
  })
  .describe('The transformer parts vitpath located in the model (tensor and node names, sizes).');

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);

export const modelInfoSchema = z.object({
  path: z.string().describe('The model file as given on the command line.'),
  sha256: sha256Schema.describe('SHA-256 of the model file (hex).'),
  sizeBytes: nonNegInt.optional().describe('Size of the model file in bytes (external data not included).'),
  layout: layoutSchema.nullable().describe('null when the command does not locate the layout.'),
});

/** A model file a command wrote (prune, quantize): recorded beside the input model. */
export const outputModelSchema = z.object({
  path: z.string().describe('Where the model was written, as given or relative to the working folder.'),
  sha256: sha256Schema.describe('SHA-256 of the written model file (hex).'),
  sizeBytes: nonNegInt.describe('Size of the model file in bytes.'),
  externalData: z
    .array(z.object({ path: z.string(), sha256: sha256Schema, sizeBytes: nonNegInt }))
    .optional()
    .describe('External-data files written beside it, if any.'),
});

export const runtimeInfoSchema = z.object({
  requested: z.enum(['auto', 'cuda', 'cpu', 'webgpu']).describe('--provider as given.'),
  used: z.enum(['cuda', 'cpu', 'webgpu']).describe('The execution provider that actually ran the model.'),
  deviceId: nonNegInt.optional(),
  threads: nonNegInt.describe('Intra-op threads requested; 0 = ONNX Runtime default.'),
  onnxruntime: z.string().describe('onnxruntime-node version.'),
  host: z.enum(['worker', 'thread']).optional().describe('Whether inference ran in a worker thread or the main thread.'),
  memory: z
    .object({
      budget: nonNegInt.describe('Bytes the run was planned for (--max-memory, or 60% of the machine memory by default).'),
      estimate: nonNegInt.describe('Estimated peak resident bytes of the plan (an estimate; see BENCHMARKS.md for measured peaks).'),
      sessions: nonNegInt.describe('ONNX Runtime sessions run side by side for the gradient graph.'),
      threads: nonNegInt.describe('Intra-op threads per session.'),
      samplesPerRun: nonNegInt.describe('Samples per gradient run (all sessions together).'),
    })
    .optional()
    .describe('The memory plan of commands that size their work to a budget (trace-path).'),
});

export const timingsSchema = z.object({
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  totalMs: z.number().nonnegative(),
  phases: z.record(z.string(), z.number().nonnegative()).describe('Milliseconds per named phase (load, locate, run, ...).'),
  inference: z.object({ runs: nonNegInt, ms: z.number().nonnegative() }).optional().describe('ONNX Runtime run() calls and their total time.'),
});

/** The envelope around a command's results schema (any results when none is given). */
export function envelopeSchema<R extends z.ZodType = z.ZodType<unknown>>(results?: R, command?: string) {
  return z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    tool: z.object({ name: z.literal(TOOL_NAME), version: z.string() }),
    command: command ? z.literal(command) : z.string(),
    options: z.record(z.string(), z.json()).describe('The options used, after defaults.'),
    model: modelInfoSchema,
    outputModel: outputModelSchema.optional().describe('The model the command wrote (prune, quantize); absent for commands that write none.'),
    runtime: runtimeInfoSchema.nullable().describe('null for commands that never run the model.'),
    timings: timingsSchema,
    results: (results ?? z.unknown()) as R,
  });
}

export type ModelInfo = z.infer<typeof modelInfoSchema>;
export type OutputModelInfo = z.infer<typeof outputModelSchema>;
export type RuntimeInfo = z.infer<typeof runtimeInfoSchema>;
export type Timings = z.infer<typeof timingsSchema>;
export interface Envelope<R = unknown> {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: typeof TOOL_NAME; version: string };
  command: string;
  options: Record<string, z.infer<ReturnType<typeof z.json>>>;
  model: ModelInfo;
  outputModel?: OutputModelInfo;
  runtime: RuntimeInfo | null;
  timings: Timings;
  results: R;
}

let ortVersionCache: string | undefined;
export function onnxruntimeVersion(): string {
  if (ortVersionCache === undefined) {
    try {
      ortVersionCache = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      ortVersionCache = 'unknown';
    }
  }
  return ortVersionCache;
}

/** Runtime info from a session (anything with .provider) and the options that opened it. */
export function runtimeInfo(
  session: { provider: 'cuda' | 'cpu' | 'webgpu' },
  opts: { provider?: 'auto' | 'cuda' | 'cpu' | 'webgpu'; deviceId?: number; threads?: number },
  host?: 'worker' | 'thread',
  memory?: RuntimeInfo['memory'],
): RuntimeInfo {
  const info: RuntimeInfo = { requested: opts.provider ?? 'auto', used: session.provider, threads: opts.threads ?? 0, onnxruntime: onnxruntimeVersion() };
  if (session.provider === 'cuda' || session.provider === 'webgpu') info.deviceId = opts.deviceId ?? 0;
  if (host) info.host = host;
  if (memory) info.memory = memory;
  return info;
}

/** Collects phase timings: `await clock.time('load', () => ...)`, then `clock.finish()`. */
export class Stopwatch {
  readonly startedAt = new Date();
  private readonly t0 = performance.now();
  readonly phases: Record<string, number> = {};

  async time<T>(phase: string, f: () => T | Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.add(phase, performance.now() - t);
    }
  }

  add(phase: string, ms: number): void {
    this.phases[phase] = (this.phases[phase] ?? 0) + ms;
  }

  finish(inference?: { runs: number; runMs: number }): Timings {
    const round = (x: number) => Math.round(x * 1000) / 1000;
    const t: Timings = {
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      totalMs: round(performance.now() - this.t0),
      phases: Object.fromEntries(Object.entries(this.phases).map(([k, v]) => [k, round(v)])),
    };
    if (inference) t.inference = { runs: inference.runs, ms: round(inference.runMs) };
    return t;
  }
}

export interface EnvelopeInput<R> {
  command: string;
  options: Record<string, unknown>;
  model: ModelInfo;
  /** The model the command wrote, if any (prune, quantize). */
  outputModel?: OutputModelInfo;
  runtime: RuntimeInfo | null;
  timings: Timings;
  results: R;
}

/**
 * Assemble and validate a report. Options are reduced to JSON values (undefined dropped); with a
 * results schema the whole report is checked, so a bug never writes a report that breaks its schema.
 */
export function makeEnvelope<R>(input: EnvelopeInput<R>, resultsSchema?: z.ZodType<R>): Envelope<R> {
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input.options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v === undefined || typeof v === 'function') continue;
    options[k] = JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
  }
  const env = {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    command: input.command,
    options,
    model: input.model,
    ...(input.outputModel ? { outputModel: input.outputModel } : {}),
    runtime: input.runtime,
    timings: input.timings,
    results: input.results,
  };
  const parsed = envelopeSchema(resultsSchema, input.command).safeParse(env);
  if (!parsed.success) {
    throw new VitpathError(ExitCode.RUNTIME, `internal error: the ${input.command} report does not match its schema: ${z.prettifyError(parsed.error).split('\n').slice(0, 6).join('; ')}`);
  }
  return parsed.data as Envelope<R>;
}
