import { RmmError } from '../../errors.js';
import { FILE_HELP, FILE_OPTION, OUTPUT_HELP, type Command } from '../command.js';

/** Commands whose engine is not built yet still answer --help and say so plainly. */
function notYet(name: string, summary: string, usage: string, details: string, extra: Command['options'] = {}): Command {
  return {
    name,
    summary,
    usage,
    details,
    options: { ...FILE_OPTION, ...extra },
    async run() {
      throw new RmmError('cli.not_implemented', `rmm ${name} is not available yet in this version`);
    },
  };
}

export const watchCommand = notYet(
  'watch',
  'keep replicas converged: on each policy schedule and whenever the files change',
  'rmm watch -f FILE',
  [FILE_HELP, OUTPUT_HELP].join('\n'),
);
