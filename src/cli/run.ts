import type { ParseArgsConfig } from 'node:util';
import { Command as Parser, CommanderError, Option } from 'commander';
import { ConfigError, formatDiagnostic } from '../config/diagnostics.js';
import { didYouMean } from '../config/suggest.js';
import { detailOf, InputError, RmmError } from '../errors.js';
import { EXIT, GLOBAL_OPTIONS, type Command, type CommandContext, type OutputFormat } from './command.js';
import { commands } from './commands/index.js';
import { UsageError } from './errors.js';


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
  if (name === '--version' || name === '-V') return main(['version', ...rest], io);
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const hint = didYouMean(name, name.startsWith('-') ? ['--help', '--version'] : commands.map((c) => c.name));
    const message = `unknown ${name.startsWith('-') ? 'option' : 'command'} '${name}'${hint}`;
    if (asksForJson(rest)) io.stderr.write(`${JSON.stringify(new UsageError(message).toJSON())}\n`);
    else io.stderr.write(`rmm: ${message}\nRun rmm --help for the commands.\n`);
    return EXIT.invalidInput;
  }
  let output: OutputFormat = asksForJson(rest) ? 'json' : 'text';
  try {
    const parsed = parseCommandLine(command, rest);
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
      values: parsed.values,
      positionals: parsed.positionals,
      output,
      stdout: io.stdout,
      stderr: io.stderr,
      stdin: io.stdin ?? process.stdin,
    };
    return await command.run(ctx);
  } catch (err) {
    return report(err, command, output, io.stderr, rest.includes('--verbose'));
  }
}

/** Whether the arguments ask for JSON output: usage errors are then JSON too. */
function asksForJson(args: readonly string[]): boolean {
  return args.some((a, i) => ((a === '-o' || a === '--output') && args[i + 1] === 'json') || a === '-ojson' || a === '--output=json');
}

/**
 * The command's options and arguments, parsed by commander (its did-you-mean included): values
 * keyed by the option's long name, as the commands read them.
 */
function parseCommandLine(command: Command, args: readonly string[]): { values: CommandContext['values']; positionals: string[] } {
  const parser = new Parser(`rmm ${command.name}`)
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined })
    .showSuggestionAfterError(true)
    .helpOption(false)
    .allowExcessArguments(true)
    .argument('[arguments...]');
  const names = new Map<string, string>();
  const options: NonNullable<ParseArgsConfig['options']> = { ...GLOBAL_OPTIONS, ...command.options };
  for (const [long, option] of Object.entries(options)) {
    const flags = `${option.short ? `-${option.short}, ` : ''}--${long}${option.type === 'string' ? ' <value>' : ''}`;
    const parsed = new Option(flags);
    if (option.multiple) parsed.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    parser.addOption(parsed);
    names.set(parsed.attributeName(), long);
  }
  try {
    parser.parse([...args], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new UsageError(usageMessage(err.message));
    throw err;
  }
  const values: Record<string, string | boolean | string[] | undefined> = {};
  for (const [attribute, value] of Object.entries(parser.opts())) values[names.get(attribute) ?? attribute] = value as string | boolean | string[];
  return { values, positionals: [...parser.args] };
}

/** commander's "error: unknown option '--fiel'\n(Did you mean --file?)" as one line in rmm's words. */
function usageMessage(text: string): string {
  return text
    .replace(/^error: /, '')
    .replace(/\n\(Did you mean (\S+)\?\)/, " (did you mean '$1'?)")
    .replace(/^option '(.*)' argument missing$/, "option '$1' needs a value")
    .trim();
}

function report(err: unknown, command: Command, output: OutputFormat, stderr: NodeJS.WritableStream, verbose: boolean): number {
  const code = err instanceof InputError ? EXIT.invalidInput : EXIT.error;
  if (output === 'json') {
    const facts = err instanceof RmmError ? err.toJSON() : { code: 'rmm.internal', message: String((err as Error)?.message ?? err) };
    stderr.write(`${JSON.stringify(facts)}\n`);
    return code;
  }
  if (err instanceof ConfigError) {
    for (const d of err.diagnostics) stderr.write(`${formatDiagnostic(d)}\n`);
    stderr.write(`rmm ${command.name}: ${err.message}; nothing was changed\n`);
  } else if (err instanceof UsageError) {
    stderr.write(`rmm ${command.name}: ${(err as Error).message}\nUsage: ${command.usage}\n`);
  } else if (err instanceof RmmError) {
    stderr.write(`rmm ${command.name}: ${err.message}\n`);
    const detail = verbose ? detailOf(err) : undefined;
    if (detail) stderr.write(`${detail.replace(/^/gm, '    ')}\n`);
  } else {
    stderr.write(`rmm ${command.name}: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return code;
}
