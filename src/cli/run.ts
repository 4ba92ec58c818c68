import { parseArgs } from 'node:util';
import { ConfigError, formatDiagnostic } from '../config/diagnostics.js';
import { InputError, RmmError } from '../errors.js';
import { EXIT, type Command, type CommandContext, type OutputFormat } from './command.js';
import { commands } from './commands/index.js';
import { UsageError } from './errors.js';

const GLOBAL_OPTIONS = {
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'rmm: declarative disaster recovery and migration for whole servers, over SSH',
    '',
    'Usage: rmm COMMAND [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run rmm COMMAND --help for its options.',
    'Exit codes: 0 ok, 1 error, 2 invalid input (nothing changed), 3 plan has changes pending, 130/143 apply stopped by SIGINT/SIGTERM.',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return [`rmm ${command.name}: ${command.summary}`, '', `Usage: ${command.usage}`, '', command.details].join('\n');
}

/** Where the CLI writes: the process's streams, or a test's. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? EXIT.invalidInput : EXIT.ok;
  }
  if (name === '--version') return main(['version', ...rest], io);
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`rmm: unknown command '${name}'\n\n${mainHelp()}\n`);
    return EXIT.invalidInput;
  }
  let output: OutputFormat = 'text';
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help) {
      io.stdout.write(`${commandHelp(command)}\n`);
      return EXIT.ok;
    }
    const extra = parsed.positionals.slice(command.positionals ?? 0);
    if (extra.length > 0) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((a) => `'${a}'`).join(' ')}${command.name === 'discover' ? '' : ' (files go after -f)'}`);
    const fmt = parsed.values.output ?? 'text';
    if (fmt !== 'text' && fmt !== 'json') throw new UsageError(`--output must be text or json, not '${String(fmt)}'`);
    output = fmt;
    const ctx: CommandContext = {
      values: parsed.values as CommandContext['values'],
      positionals: parsed.positionals,
      output,
      stdout: io.stdout,
      stderr: io.stderr,
      stdin: io.stdin ?? process.stdin,
    };
    return await command.run(ctx);
  } catch (err) {
    return report(err, command, output, io.stderr);
  }
}

function report(err: unknown, command: Command, output: OutputFormat, stderr: NodeJS.WritableStream): number {
  const code = err instanceof InputError || isParseArgsError(err) ? EXIT.invalidInput : EXIT.error;
  if (output === 'json') {
    const facts = err instanceof RmmError ? err.toJSON() : { error: 'Error', message: String((err as Error)?.message ?? err) };
    stderr.write(`${JSON.stringify(facts)}\n`);
    return code;
  }
  if (err instanceof ConfigError) {
    for (const d of err.diagnostics) stderr.write(`${formatDiagnostic(d)}\n`);
    stderr.write(`rmm ${command.name}: ${err.message}; nothing was changed\n`);
  } else if (err instanceof UsageError || isParseArgsError(err)) {
    stderr.write(`rmm ${command.name}: ${(err as Error).message}\nUsage: ${command.usage}\n`);
  } else if (err instanceof RmmError) {
    stderr.write(`rmm ${command.name}: ${err.message}\n`);
  } else {
    stderr.write(`rmm ${command.name}: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return code;
}

function isParseArgsError(err: unknown): boolean {
  return typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS');
}
