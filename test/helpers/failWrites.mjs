// Preloaded into a CLI child process (NODE_OPTIONS="--import <this file>") to simulate a full disk
// without mounting one: writes to files whose path matches the regular expression in
// VITPATH_TEST_ENOSPC fail with ENOSPC, exactly as Node.js reports a full file system, after
// VITPATH_TEST_ENOSPC_AFTER successful writes to such files (default 0). Test-only: nothing in src/
// knows about it.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const pattern = process.env.VITPATH_TEST_ENOSPC ? new RegExp(process.env.VITPATH_TEST_ENOSPC) : null;
let allowed = Number(process.env.VITPATH_TEST_ENOSPC_AFTER ?? 0);

if (pattern) {
  const enospc = (p) => Object.assign(new Error(`ENOSPC: no space left on device, write '${p}'`), { code: 'ENOSPC', errno: -28, syscall: 'write', path: String(p) });
  const matches = (p) => typeof p === 'string' && pattern.test(p);
  const fail = (p) => {
    if (allowed > 0) {
      allowed--;
      return false;
    }
    throw enospc(p);
  };
  const fdPaths = new Map();
  const { openSync, closeSync, writeSync, writeFileSync } = fs;
  fs.openSync = function (p, ...rest) {
    const fd = openSync.call(this, p, ...rest);
    if (matches(p)) fdPaths.set(fd, p);
    return fd;
  };
  fs.closeSync = function (fd) {
    fdPaths.delete(fd);
    return closeSync.call(this, fd);
  };
  fs.writeSync = function (fd, ...rest) {
    if (fdPaths.has(fd)) fail(fdPaths.get(fd));
    return writeSync.call(this, fd, ...rest);
  };
  fs.writeFileSync = function (p, ...rest) {
    if (matches(p)) fail(p);
    return writeFileSync.call(this, p, ...rest);
  };
  syncBuiltinESMExports();
}
