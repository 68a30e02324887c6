#!/usr/bin/env node
// Tiny launcher: the CLI lives in dist/cli/main.js (built by `npm run build`).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('vitpath: the compiled CLI is missing (dist/cli/main.js). Run `npm run build` in the vitpath folder first.\n');
    process.exit(4);
  }
  throw err;
});
