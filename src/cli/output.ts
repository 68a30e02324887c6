// stdout/stderr conventions: results on stdout, everything else on stderr; colour and
// spinners only on an interactive stderr outside CI and without --quiet / NO_COLOR.

export interface OutputFlags {
  quiet?: boolean;
  json?: boolean;
}

export function interactive(flags: OutputFlags = {}): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI && !process.env.NO_COLOR && !flags.quiet;
}

export function info(line: string, flags: OutputFlags = {}): void {
  if (!flags.quiet) process.stderr.write(line + '\n');
}

/** The human summary goes to stdout, or to stderr when stdout carries the JSON report. */
export function summary(text: string, flags: OutputFlags = {}): void {
  if (flags.json) {
    if (!flags.quiet) process.stderr.write(text + '\n');
  } else process.stdout.write(text + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A notice sink that prints each distinct line once (e.g. the CPU-fallback line of several sessions). */
export function onceNotice(quiet?: boolean): (line: string) => void {
  const seen = new Set<string>();
  return (line: string) => {
    if (quiet || seen.has(line)) return;
    seen.add(line);
    process.stderr.write(line + '\n');
  };
}

/** A file size for the summaries: KiB below 1 MiB, else MiB, one decimal. */
export function fileSize(x: number): string {
  return x >= 1024 ** 2 ? `${(x / 1024 ** 2).toFixed(1)} MiB` : `${(x / 1024).toFixed(1)} KiB`;
}
