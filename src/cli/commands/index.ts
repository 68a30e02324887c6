// The list of subcommands; each lives in its own module and registers itself on the program.
import type { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerInspect } from './inspect.js';
import { registerMerge } from './merge.js';
import { registerProbeLayers } from './probeLayers.js';
import { registerPrune } from './prune.js';
import { registerQuantize } from './quantize.js';
import { registerTracePath } from './tracePath.js';

export function registerCommands(program: Command): void {
  void program;
  registerInspect(program);
  registerTracePath(program);
  registerProbeLayers(program);
  registerEval(program);
  registerPrune(program);
  registerQuantize(program);
  registerMerge(program);
  registerDemo(program);
}
