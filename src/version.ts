// The tool's name and version, as recorded in every report.
import { createRequire } from 'node:module';

const req = createRequire(import.meta.url);
export const TOOL_NAME = 'vitpath';

/** package.json sits one level up from src/ and dist/, two levels up from dist-tools/src/. */
function readVersion(): string {
  for (const p of ['../package.json', '../../package.json']) {
    try {
      const pkg = req(p) as { name?: string; version?: string };
      if (pkg.name === TOOL_NAME && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  throw new Error('vitpath: cannot find its package.json next to the installed files; reinstall vitpath.');
}

export const TOOL_VERSION: string = readVersion();
