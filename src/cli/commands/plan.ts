import { hasChanges } from '../../plan/plan.js';
import { savePlan } from '../../plan/saved.js';
import { EXIT, FILE_HELP, FILE_OPTION, fileArgs, OUTPUT_HELP, writeJson, type Command } from '../command.js';
import { planJson } from '../views/plan.js';
import { ENGINE_HELP, ENGINE_OPTIONS, loadObservePlan, renderPlan } from './engine.js';

export const planCommand: Command = {
  name: 'plan',
  summary: 'show what apply would do: observe origins and targets, change nothing',
  usage: 'rmm plan -f FILE [--out PLANFILE] [--parallelism N] [-o json]',
  details: [FILE_HELP, OUTPUT_HELP, ENGINE_HELP, '  --out PLANFILE          save the plan; rmm apply --plan PLANFILE carries it out if nothing changed since', '', 'Exit codes: 0 no changes, 3 changes pending, 1 error (a replica is blocked), 2 invalid input.'].join('\n'),
  options: { ...FILE_OPTION, ...ENGINE_OPTIONS, out: { type: 'string' } },
  async run(ctx) {
    const run = await loadObservePlan(ctx);
    await run.pool.closeAll();
    if (typeof ctx.values.out === 'string') await savePlan(ctx.values.out, run.plan);
    if (ctx.output === 'json') writeJson(ctx, planJson(run.plan));
    else ctx.stdout.write(renderPlan(run.plan));
    if (typeof ctx.values.out === 'string' && ctx.output === 'text') ctx.stdout.write(savedNote(ctx.values.out, fileArgs(ctx)));
    if (run.plan.actions.some((a) => a.kind === 'blocked')) return EXIT.error;
    return hasChanges(run.plan) ? EXIT.changesPending : EXIT.ok;
  },
};

/** What --out saved, and the command that carries it out. */
function savedNote(out: string, files: readonly string[]): string {
  const quote = (arg: string) => (/^[\w./:=@%+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
  const apply = ['rmm', 'apply', ...files.flatMap((f) => ['-f', quote(f)]), '--plan', quote(out)].join(' ');
  return `\nSaved this plan to ${out}. To carry out exactly it: ${apply}\n(refused if an origin or a target changed since the plan)\n`;
}
