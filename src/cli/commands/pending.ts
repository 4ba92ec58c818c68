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
  'not available yet: will keep replicas converged on each policy schedule and whenever the files change',
  'rmm watch -f FILE',
  [
    'Not available yet in this version: it exits with an error and changes nothing. Until it comes,',
    'run `rmm apply -f FILE --yes` on a schedule (cron, a systemd timer, a CI job): apply syncs each',
    "replica whose policy schedule is due, or whose RPO is exceeded, and leaves the others.",
    '',
    FILE_HELP,
    OUTPUT_HELP,
  ].join('\n'),
);
