// Shared commander options every command reuses (runtime, output, seed, limit), with validation:
// a bad value is a usage error (exit 1) whose message names the option and what it accepts.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { PROVIDER_CHOICES, type ProviderChoice, type RuntimeOptions } from '../runtime/session.js';
import { parseMemorySize } from '../engine/memoryPlan.js';
import { reportJsonSchemaText } from '../report/schema.js';
import { usageError } from '../errors.js';

/** The parsed values of the shared options (fields of options a command did not add are undefined). */
export interface CommonOptions {
  provider: ProviderChoice;
  deviceId: number;
  /** 0 lets ONNX Runtime decide. */
  threads: number;
  batch: number;
  json: boolean;
  quiet: boolean;
  out?: string;
  force: boolean;
  seed: number;
  limit?: number;
  schema?: boolean;
}

/** A commander argument parser for integers in [min, max]; rejects "1.5", "1e3", "", "0x10". */
export function intArg(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const v = value.trim();
    const n = /^[+-]?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`) : `an integer from ${min} to ${max}`;
      throw new InvalidArgumentError(`${flag} must be ${range} (got "${value}").`);
    }
    return n;
  };
}

export const DEFAULT_BATCH = 32;
export const DEFAULT_SEED = 0;

/** --provider, --device-id, --threads, --batch. */
export function addRuntimeOptions(cmd: Command, defaults: { batch?: number } = {}): Command {
  cmd.addOption(
    new Option('--provider <name>', 'execution provider: auto tries CUDA then CPU; cuda, cpu and webgpu fail rather than fall back')
      .choices(PROVIDER_CHOICES)
      .default('auto'),
  );
  cmd.addOption(new Option('--device-id <n>', 'GPU index for cuda').argParser(intArg('--device-id', 0)).default(0));
  cmd.addOption(new Option('--threads <n>', 'CPU threads for ONNX Runtime (0 = let ONNX Runtime decide)').argParser(intArg('--threads', 0, 1024)).default(0));
  cmd.addOption(new Option('--batch <n>', 'images per inference run (models with a fixed batch size use theirs)').argParser(intArg('--batch', 1, 1 << 20)).default(defaults.batch ?? DEFAULT_BATCH));
  return cmd;
}

/** --json, --quiet, --out, --force. */
export function addOutputOptions(cmd: Command): Command {
  cmd.option('--json', 'print the JSON report alone on stdout (the summary moves to stderr)', false);
  cmd.option('-q, --quiet', 'no progress, notices or summary on stderr', false);
  cmd.addOption(new Option('-o, --out <dir>', 'folder for the report files (default ./vitpath-out/<command>-<timestamp>)').argParser(nonEmpty('--out')));
  cmd.option('-f, --force', 'overwrite report files that already exist in --out', false);
  return cmd;
}

export function addSeedOption(cmd: Command, dflt = DEFAULT_SEED): Command {
  cmd.addOption(new Option('--seed <n>', 'random seed (same inputs and seed give the same report)').argParser(intArg('--seed', 0, 2 ** 32 - 1)).default(dflt));
  return cmd;
}

export function addLimitOption(cmd: Command, what = 'images'): Command {
  cmd.addOption(new Option('--limit <n>', `use at most this many ${what}`).argParser(intArg('--limit', 1)));
  return cmd;
}

/** --max-memory SIZE (trace-path, probe-layers): plan sessions and run sizes for a memory budget. */
export function addMaxMemoryOption(cmd: Command, what: string, dflt: string): Command {
  return cmd.addOption(
    new Option('--max-memory <size>', `memory budget, e.g. 6GB, 6GiB or 6000MB: ${what} sized so the estimated peak fits, exit 1 when nothing does (default: ${dflt})`).argParser((v: string) => {
      try {
        return parseMemorySize(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    }),
  );
}

/** --schema: print the JSON Schema of the command's report and exit (see report/schema.ts and startModelCommand). */
export function addSchemaOption(cmd: Command): Command {
  cmd.option('--schema', "print the JSON Schema of this command's report and exit", false);
  return cmd;
}

/**
 * All shared options at once: runtime, output, --seed (unless `seed` is false: a command without
 * randomness) and --limit (of `limit`, default images).
 */
export function addCommonOptions(cmd: Command, defaults: { batch?: number; seed?: number | false; limit?: string } = {}): Command {
  addRuntimeOptions(cmd, { batch: defaults.batch });
  addOutputOptions(cmd);
  if (defaults.seed !== false) addSeedOption(cmd, defaults.seed);
  addLimitOption(cmd, defaults.limit);
  return cmd;
}

/**
 * The start of a model command's action. With --schema it prints the JSON Schema of the command's
 * report and returns null (nothing else to do). Otherwise the model and --images must be given: a
 * usage error says what is missing and how to call the command (`need`).
 */
export function startModelCommand(
  command: string,
  model: string | undefined,
  images: string | undefined,
  raw: Record<string, unknown>,
  need: { model: string; images: string },
): { model: string; images: string; common: CommonOptions } | null {
  const common = commonOptionsOf(raw);
  if (common.schema) {
    process.stdout.write(reportJsonSchemaText(command));
    return null;
  }
  if (!model) throw usageError(need.model);
  if (!images) throw usageError(need.images);
  return { model, images, common };
}

export function nonEmpty(flag: string): (v: string) => string {
  return (v: string) => {
    if (v.trim() === '') throw new InvalidArgumentError(`${flag} needs a folder name.`);
    return v;
  };
}

/** The shared options from commander's parsed values, typed and with defaults filled in. */
export function commonOptionsOf(raw: Record<string, unknown>): CommonOptions {
  return {
    provider: (raw.provider as ProviderChoice | undefined) ?? 'auto',
    deviceId: (raw.deviceId as number | undefined) ?? 0,
    threads: (raw.threads as number | undefined) ?? 0,
    batch: (raw.batch as number | undefined) ?? DEFAULT_BATCH,
    json: Boolean(raw.json),
    quiet: Boolean(raw.quiet),
    out: raw.out as string | undefined,
    force: Boolean(raw.force),
    seed: (raw.seed as number | undefined) ?? DEFAULT_SEED,
    limit: raw.limit as number | undefined,
    schema: raw.schema === undefined ? undefined : Boolean(raw.schema),
  };
}

/** Session options from the shared options; --quiet also silences the CPU-fallback notice. */
export function runtimeOptionsOf(o: Pick<CommonOptions, 'provider' | 'deviceId' | 'threads'> & { quiet?: boolean }): RuntimeOptions {
  const r: RuntimeOptions = { provider: o.provider, deviceId: o.deviceId, threads: o.threads };
  if (o.quiet) r.notice = () => {};
  return r;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** The options as recorded in a report: JSON values only, keys sorted, undefined and functions dropped. */
export function optionsForReport(raw: Record<string, unknown>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(raw).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v === undefined || typeof v === 'function') continue;
    out[k] = JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))) as JsonValue;
  }
  return out;
}
