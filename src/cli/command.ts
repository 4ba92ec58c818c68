import type { ParseArgsConfig } from 'node:util';

export type OutputFormat = 'text' | 'json';

/** What a command returns: the process exit code. */
export type ExitCode = number;

export const EXIT = {
  ok: 0,
  /** Something failed while running (a host, a sync). */
  error: 1,
  /** The input (flags or configuration) is invalid; nothing was changed. */
  invalidInput: 2,
  /** `plan` found work to do. */
  changesPending: 3,
  /** Stopped by SIGINT (Ctrl-C), after undoing what was running. */
  interrupted: 130,
  /** Stopped by SIGTERM, after undoing what was running. */
  terminated: 143,
} as const;

export interface CommandContext {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: readonly string[];
  readonly output: OutputFormat;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Where a confirmation is read from; a question is asked only when it is a terminal. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Extra help text: options and exit codes. */
  readonly details: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** How many arguments besides the options it takes; none when absent. */
  readonly positionals?: number;
  run(ctx: CommandContext): Promise<ExitCode>;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean' },
} as const;

export const FILE_OPTION = { file: { type: 'string', short: 'f', multiple: true } } as const;
export const FILE_HELP = '  -f, --file FILE         configuration: a YAML file, a directory of *.yaml, or - for stdin (repeatable)';
export const OUTPUT_HELP = '  -o, --output FMT        text (default) or json\n  --verbose               with a failure, the command and output behind it (JSON always has them)';

export function fileArgs(ctx: CommandContext): string[] {
  const files = ctx.values.file;
  return Array.isArray(files) ? files : [];
}

export function writeJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
