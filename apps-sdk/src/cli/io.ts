// What a command may touch of the outside world, so tests run commands in-process and read what they print.

export interface CliIo {
  /** One or more lines for stdout (a newline is added). */
  stdout(text: string): void;
  /** One or more lines for stderr (a newline is added). */
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Relative paths on the command line are resolved against this. */
  cwd: string;
  fetch: typeof fetch;
}

export function nodeIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    cwd: process.cwd(),
    fetch: globalThis.fetch,
  };
}

/** Exit codes: 0 done, 1 the work failed (invalid package, failing fixture, refused request), 2 wrong usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** An expected failure: printed as `erp-edge: <message>` plus its detail lines, never with a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly details: string[] = [],
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The message of whatever was thrown, without its stack. */
export const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
