import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadSources } from '../../config/load.js';
import { readSources } from '../../config/source.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, fileArgs, writeJson, type Command } from '../command.js';
import { UsageError } from '../errors.js';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'check configuration files without connecting to any host',
  usage: 'rmm validate -f FILE [-f FILE...] [-o json]',
  details: [
    FILE_HELP,
    OUTPUT_HELP,
    '',
    'Prints every problem as file:line:column: field: message, sorted by position.',
    'Exit codes: 0 valid (warnings may be printed), 2 invalid.',
  ].join('\n'),
  options: { ...FILE_OPTION },
  async run(ctx) {
    const args = fileArgs(ctx);
    if (args.length === 0) throw new UsageError('validate needs at least one -f FILE');
    const { files, diagnostics: readProblems } = await readSources(args);
    const result = loadSources(files, readProblems);
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (ctx.output === 'json') {
      writeJson(ctx, {
        formatVersion: 1,
        valid: errors.length === 0,
        files: files.map((f) => f.name),
        replicas: result.spec?.replicas.map((r) => r.name) ?? [],
        diagnostics: result.diagnostics,
      });
    } else {
      for (const d of result.diagnostics) ctx.stderr.write(`${formatDiagnostic(d)}\n`);
      if (result.spec) {
        const n = result.spec.replicas.length;
        ctx.stdout.write(`${files.map((f) => f.name).join(', ')}: valid, ${n} replica${n === 1 ? '' : 's'}\n`);
      } else {
        ctx.stderr.write(`${errors.length} error${errors.length === 1 ? '' : 's'}; nothing was changed\n`);
      }
    }
    return result.spec ? EXIT.ok : EXIT.invalidInput;
  },
};
