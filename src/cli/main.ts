// vitpath's command-line entry: wires commander subcommands to services and maps errors to exit codes.
import { Command, CommanderError } from 'commander';
import { VitpathError, ExitCode } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { registerCommands } from './commands/index.js';

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
Exit codes: 0 success, 1 usage error, 2 bad input (model, images, labels),
            3 unsupported model or operator, 4 runtime failure,
            5 a check the user asked for failed (eval --min-accuracy, --max-drop).
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
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE; // commander already printed the message
  }
  if (e instanceof VitpathError) {
    process.stderr.write(`vitpath: error: ${e.message}\n`);
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
  // `vitpath ... | head` closes the pipe early: that is the reader's choice, not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.exitCode = handleError(e);
    },
  );
}
