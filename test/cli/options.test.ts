import { Command, CommanderError } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { addCommonOptions, addSchemaOption, commonOptionsOf, intArg, optionsForReport, runtimeOptionsOf, startModelCommand } from '../../src/cli/options.js';
import { usageMessage } from '../helpers/errors.js';
import { handleError } from '../../src/cli/main.js';

function parse(args: string[]) {
  const errors: string[] = [];
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => {} });
  let seen: Record<string, unknown> | undefined;
  const cmd = program.command('probe').action((_o, c: Command) => {
    seen = c.opts();
  });
  addSchemaOption(addCommonOptions(cmd, { batch: 64 }));
  try {
    program.parse(['node', 'vitpath', 'probe', ...args]);
  } catch (e) {
    return { error: e as CommanderError, errors: errors.join('') };
  }
  return { opts: seen!, errors: errors.join('') };
}

describe('shared options', () => {
  it('defaults', () => {
    const { opts } = parse([]);
    expect(commonOptionsOf(opts!)).toEqual({
      provider: 'auto', deviceId: 0, threads: 0, batch: 64, json: false, quiet: false, out: undefined, force: false, seed: 0, limit: undefined, schema: false,
    });
  });

  it('parses every option', () => {
    const { opts } = parse(['--provider', 'cpu', '--device-id', '1', '--threads', '2', '--batch', '8', '--json', '-q', '--out', 'o', '--force', '--seed', '42', '--limit', '10']);
    const o = commonOptionsOf(opts!);
    expect(o).toMatchObject({ provider: 'cpu', deviceId: 1, threads: 2, batch: 8, json: true, quiet: true, out: 'o', force: true, seed: 42, limit: 10 });
    const rt = runtimeOptionsOf(o);
    expect(rt).toMatchObject({ provider: 'cpu', deviceId: 1, threads: 2 });
    expect(typeof rt.notice).toBe('function'); // --quiet silences the fallback notice
    expect(runtimeOptionsOf({ ...o, quiet: false })).toEqual({ provider: 'cpu', deviceId: 1, threads: 2 });
  });

  it.each([
    [['--provider', 'tpu'], /Allowed choices are auto, cuda, cpu, webgpu/],
    [['--threads', 'two'], /--threads must be an integer from 0 to 1024 \(got "two"\)/],
    [['--batch', '0'], /--batch must be an integer from 1 to/],
    [['--batch', '1.5'], /--batch must be/],
    [['--device-id', '-1'], /--device-id must be a non-negative integer/],
    [['--seed', '1e3'], /--seed must be an integer from 0 to 4294967295/],
    [['--limit', '0'], /--limit must be a positive integer \(got "0"\)/],
    [['--out', ''], /--out needs a folder name/],
  ])('rejects %j as a usage error (exit 1)', (args, msg) => {
    const r = parse(args as string[]);
    expect(r.error).toBeInstanceOf(CommanderError);
    expect(r.errors).toMatch(msg);
    expect(handleError(r.error)).toBe(1);
  });

  it('intArg accepts only plain integers in range', () => {
    const p = intArg('--n', 1, 10);
    expect(p(' 7 ')).toBe(7);
    expect(p('+3')).toBe(3);
    for (const bad of ['', '0x5', '11', '0', 'NaN', '5.0']) expect(() => p(bad)).toThrow(/--n must be an integer from 1 to 10/);
  });

  it('records options as sorted JSON values', () => {
    expect(optionsForReport({ b: 1, a: 'x', skip: undefined, f: () => 1, layers: [1, 2], big: 3n })).toEqual({ a: 'x', b: 1, big: '3', layers: [1, 2] });
    expect(Object.keys(optionsForReport({ b: 1, a: 2 }))).toEqual(['a', 'b']);
  });

  it('commands without randomness leave out --seed; --limit names what it counts', () => {
    const cmd = new Command('q');
    addCommonOptions(cmd, { batch: 8, seed: false, limit: 'evaluation images' });
    const flags = cmd.options.map((o) => o.long);
    expect(flags).not.toContain('--seed');
    expect(cmd.options.find((o) => o.long === '--limit')!.description).toBe('use at most this many evaluation images');
  });

  it('startModelCommand: --schema prints the report schema and stops; otherwise the model and --images are required', () => {
    const need = { model: 'x needs a model', images: 'x needs --images' };
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(startModelCommand('eval', undefined, undefined, { schema: true }, need)).toBeNull();
      const printed = out.mock.calls.map((c) => String(c[0])).join('');
      expect(JSON.parse(printed).properties.command.const).toBe('eval');
      expect(printed.endsWith('}\n')).toBe(true);
    } finally {
      out.mockRestore();
    }
    expect(usageMessage(() => startModelCommand('eval', undefined, 'imgs', {}, need))).toBe('x needs a model');
    expect(usageMessage(() => startModelCommand('eval', '', 'imgs', {}, need))).toBe('x needs a model');
    expect(usageMessage(() => startModelCommand('eval', 'm.onnx', undefined, {}, need))).toBe('x needs --images');
    const got = startModelCommand('eval', 'm.onnx', 'imgs', { batch: 4, schema: false }, need)!;
    expect(got).toMatchObject({ model: 'm.onnx', images: 'imgs' });
    expect(got.common.batch).toBe(4);
  });
});
