#!/usr/bin/env node
// Tiny launcher: the CLI lives in dist/cli/main.js (built by `npm run build`). It calls runCli()
// explicitly, so the CLI runs the same through npx, a global install, node_modules/.bin or a symlink.
import('../dist/cli/main.js').then(
  (cli) => cli.runCli(process.argv),
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
      process.stderr.write('vitpath: the compiled CLI is missing (dist/cli/main.js). Run `npm run build` in the vitpath folder first.\n');
      process.exit(4);
    }
    throw err;
  },
);
