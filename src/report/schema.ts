// JSON Schema of the reports, generated from the zod schemas (z.toJSONSchema), so that
// `vitpath <command> --schema` prints exactly what the command's --json output follows.
import * as z from 'zod';
import { envelopeSchema, SCHEMA_VERSION } from './envelope.js';
import { TOOL_NAME } from '../version.js';

const registry = new Map<string, z.ZodType>();

/** A command declares its results schema once (at module load); --schema then finds it. */
export function registerReportSchema(command: string, results: z.ZodType): void {
  registry.set(command, results);
}

/** The results schema a command registered, if any. */
export function resultsSchemaFor(command: string): z.ZodType | undefined {
  return registry.get(command);
}

/** JSON Schema (draft 2020-12) of a command's report: the envelope around its results. */
export function reportJsonSchema(command: string, results?: z.ZodType): Record<string, unknown> {
  const schema = envelopeSchema(results ?? registry.get(command), command);
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  const { $schema, ...rest } = json;
  return {
    $schema,
    $id: `https://vitpath.dev/schema/v${SCHEMA_VERSION}/${command}.json`,
    title: `${TOOL_NAME} ${command} report (schemaVersion ${SCHEMA_VERSION})`,
    ...rest,
  };
}

/** The schema as printed by --schema: pretty JSON with a trailing newline. */
export function reportJsonSchemaText(command: string, results?: z.ZodType): string {
  return JSON.stringify(reportJsonSchema(command, results), null, 2) + '\n';
}
