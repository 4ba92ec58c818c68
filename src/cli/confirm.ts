import { createInterface } from 'node:readline/promises';
import type { CommandContext } from './command.js';
import { UsageError } from './errors.js';

export const YES_OPTION = { yes: { type: 'boolean', short: 'y' } } as const;
export const YES_HELP = '  -y, --yes               do it without asking (needed when stdin is not a terminal)';

/**
 * Asks before a step that cannot be undone. `--yes` answers for the operator; without a terminal to
 * ask on and without `--yes`, the command refuses rather than guess.
 */
export async function confirm(ctx: CommandContext, question: string): Promise<boolean> {
  if (ctx.values.yes === true) return true;
  if (ctx.stdin.isTTY !== true) throw new UsageError(`${question} Not asked: stdin is not a terminal; pass --yes to confirm`);
  const rl = createInterface({ input: ctx.stdin, output: ctx.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
