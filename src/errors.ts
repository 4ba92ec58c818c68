/**
 * Every failure rmm reports is an RmmError: a stable `code` for machines (`-o json`, exit codes)
 * and a message for people. The CLI is the one place that turns them into output.
 */
export class RmmError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /**
   * The facts of the error as plain data, for `-o json`: its code and message (never a class
   * name), and what the subclass adds (host, step, the command and its output...).
   */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message };
  }
}

/** The user's input (a file, a flag) is wrong; nothing was changed. Exit code 2. */
export class InputError extends RmmError {}

/**
 * The technical detail behind an error, for --verbose and JSON: the first `detail` along its chain
 * of causes (a remote command's command line and the end of its stderr).
 */
export function detailOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const detail = (e as { detail?: unknown }).detail;
    if (typeof detail === 'string' && detail !== '') return detail;
  }
  return undefined;
}
