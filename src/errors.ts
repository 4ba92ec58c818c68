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

  /** The facts of the error as plain data, for `-o json`. Subclasses add their own fields. */
  toJSON(): Record<string, unknown> {
    return { error: this.name, code: this.code, message: this.message };
  }
}

/** The user's input (a file, a flag) is wrong; nothing was changed. Exit code 2. */
export class InputError extends RmmError {}
