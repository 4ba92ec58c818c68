import { applyPlan } from '../../apply/apply.js';
import { hasChanges, makePlan } from '../../plan/plan.js';
import { readSavedPlan, StalePlanError, stalenessOf } from '../../plan/saved.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, type Command, type CommandContext } from '../command.js';
import { UsageError } from '../errors.js';
import { jsonEvents, textEvents } from '../views/apply.js';
import { planJson } from '../views/plan.js';
import { ENGINE_HELP, ENGINE_OPTIONS, loadObservePlan, renderPlan } from './engine.js';
import { rmmVersion } from './version.js';

export const applyCommand: Command = {
  name: 'apply',
  summary: 'converge targets to the files: plan, then sync what the plan says',
  usage: 'rmm apply -f FILE (--yes | --plan PLANFILE) [--parallelism N] [-o json]',
  details: [
    FILE_HELP,
    OUTPUT_HELP,
    ENGINE_HELP,
    '  --yes                   apply without asking (needed when not on a terminal)',
    '  --plan PLANFILE         carry out a plan saved by rmm plan --out, refused if the spec or a target changed since',
    '',
    'Exit codes: 0 converged (or nothing to do), 1 a replica failed or is blocked, 2 invalid input.',
  ].join('\n'),
  options: { ...FILE_OPTION, ...ENGINE_OPTIONS, yes: { type: 'boolean', short: 'y' }, plan: { type: 'string' } },
  async run(ctx) {
    const savedFile = typeof ctx.values.plan === 'string' ? ctx.values.plan : undefined;
    const saved = savedFile ? await readSavedPlan(savedFile) : undefined;
    const run = await loadObservePlan(ctx);
    try {
      // A saved plan must come out the same when planned again now, syncing what it syncs; then the
      // plan made now is the one carried out, never the file's contents.
      const plan = saved ? makePlan(run.spec, run.observed, new Date(), { syncNow: new Set(saved.actions.filter((a) => a.kind === 'sync').map((a) => a.replica)), scripts: run.scripts }) : run.plan;
      if (saved) {
        const problems = stalenessOf(saved, plan);
        if (problems.length > 0) throw new StalePlanError(problems);
      }
      const json = ctx.output === 'json' ? jsonEvents(ctx.stdout, rmmVersion()) : undefined;
      if (json) json({ type: 'plan', ...planJson(plan) });
      else ctx.stdout.write(renderPlan(plan));
      const blocked = plan.actions.filter((a) => a.kind === 'blocked');
      const summary = (synced: number, failed: number) => {
        const unchanged = plan.actions.filter((a) => a.kind === 'none').length;
        if (json) json({ type: 'summary', synced, failed, blocked: blocked.length, unchanged });
        else ctx.stdout.write(`\nApply: ${synced} synced, ${failed} failed, ${blocked.length} blocked, ${unchanged} unchanged.\n`);
      };
      if (!hasChanges(plan)) {
        summary(0, 0);
        return blocked.length > 0 ? EXIT.error : EXIT.ok;
      }
      // A saved plan was reviewed when it was made, as with terraform apply PLANFILE.
      if (ctx.values.yes !== true && !saved) {
        if (!process.stdin.isTTY) throw new UsageError('apply changes hosts: pass --yes to confirm when not on a terminal');
        if (!(await confirm(ctx))) {
          ctx.stderr.write('apply cancelled; nothing was changed\n');
          return EXIT.error;
        }
      }
      const result = await applyPlan(run.spec, plan, run.pool, { parallelism: run.parallelism, trustNewHostKeys: run.trustNewHostKeys, emit: json ?? textEvents(ctx.stdout) });
      summary(result.synced.length, result.failed.length);
      return result.failed.length > 0 || blocked.length > 0 ? EXIT.error : EXIT.ok;
    } finally {
      await run.pool.closeAll();
    }
  },
};

async function confirm(ctx: CommandContext): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question('Apply this plan? Only "yes" is accepted: ');
  rl.close();
  void ctx;
  return answer.trim() === 'yes';
}
