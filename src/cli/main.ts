// vitpath's command-line entry: wires commander subcommands to services and maps errors to exit codes.
import { Command, CommanderError } from 'commander';
import { VitpathError, ExitCode } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { registerCommands } from './commands/index.js';
import { finalExitCode, guardStdio } from './stdio.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vitpath')
    .description('Explain and slim Vision Transformers stored as ONNX: influential neuron paths, layer probes, pruning and quantization.')
    .version(TOOL_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  program.addHelpText(
    'after',
    `
Exit codes: 0 success, 1 usage error, 2 bad input (model, images, labels, an --out that
            cannot be written or is in use), 3 unsupported model or operator, 4 runtime
            failure (also: stdout cannot be written),
            5 a check the user asked for failed (eval --min-accuracy, --max-drop),
            130/143 interrupted by Ctrl-C/SIGTERM (trace-path: continue with --resume).
Start with:  vitpath demo            (trace-path on the built-in digits model)
             vitpath inspect model.onnx`,
  );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return ExitCode.OK;
  } catch (e) {
    return handleError(e);
  }
}

export function handleError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return ExitCode.OK;
    if (e.code === 'commander.help') return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE; // help shown for a missing command
    return ExitCode.USAGE; // commander already printed the message
  }
  if (e instanceof VitpathError) {
    process.stderr.write(`vitpath: error: ${e.message}\n`);
    for (const note of e.notes) process.stderr.write(note + '\n');
    if (process.env.VITPATH_DEBUG && e.cause) process.stderr.write(String((e.cause as Error).stack ?? e.cause) + '\n');
    return e.exitCode;
  }
  const err = e as Error;
  process.stderr.write(`vitpath: internal error: ${err?.message ?? String(e)}\n`);
  process.stderr.write('This is a bug in vitpath; set VITPATH_DEBUG=1 for the stack trace and report it.\n');
  if (process.env.VITPATH_DEBUG) process.stderr.write(String(err?.stack) + '\n');
  return ExitCode.RUNTIME;
}

/**
 * Run the CLI as a process: called by bin/vitpath.js however it was launched (npx, a global install,
 * node_modules/.bin, a symlink, `node bin/vitpath.js`), so it never guesses from process.argv[1].
 */
export function runCli(argv: string[] = process.argv): void {
  // A reader that closes stdout or stderr early never stops the run; stdout that cannot be
  // written (e.g. > /dev/full) is exit 4 with one line (src/cli/stdio.ts).
  guardStdio(() => {
    process.exitCode = finalExitCode(Number(process.exitCode ?? 0));
  });
  main(argv).then(
    (code) => {
      process.exitCode = finalExitCode(code);
    },
    (e) => {
      process.exitCode = finalExitCode(handleError(e));
    },
  );
}
