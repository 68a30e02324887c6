// The tool's name and version, as recorded in every report.
import { createRequire } from 'node:module';

const req = createRequire(import.meta.url);
export const TOOL_NAME = 'vitpath';
export const TOOL_VERSION: string = (req('../package.json') as { version: string }).version;
