import { applyPlan } from '../../apply/apply.js';
import { InterruptedError } from '../../apply/interrupt.js';
import { currentPoint, hasChanges, makePlan } from '../../plan/plan.js';
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
  usage: 'rmm apply -f FILE (-y | --yes | --plan PLANFILE) [--parallelism N] [-o json]',
  details: [
    FILE_HELP,
    OUTPUT_HELP,
    ENGINE_HELP,
    '  -y, --yes               apply without asking (needed when not on a terminal)',
    '  --plan PLANFILE         carry out a plan saved by rmm plan --out, refused if the spec or a target changed since',
    '',
    'Exit codes: 0 converged (or nothing to do), 1 a replica failed or is blocked, 2 invalid input, 130/143 stopped by SIGINT/SIGTERM.',
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
      const stop = new AbortController();
      const text = json ? undefined : textEvents(ctx.stdout, ctx.values.verbose === true);
      // The bars stop where they are before anything is said of the interrupt.
      const result = await whileStoppable(ctx, stop, () => text?.close(), () =>
        applyPlan(run.spec, plan, run.pool, { parallelism: run.parallelism, trustNewHostKeys: run.trustNewHostKeys, emit: json ?? text!, signal: stop.signal }),
      ).finally(() => text?.close());
      if (stop.signal.aborted) {
        // What the operator needs after a Ctrl-C: what each replica still has.
        for (const action of plan.actions.filter((a) => a.kind === 'sync' && !result.synced.includes(a.replica))) {
          // Stopped after its record step: the new point is recorded (the prune or unlock did not finish).
          const step = result.failed.find((f) => f.replica === action.replica)?.step;
          const recorded = step === 'prune' || step === 'unlock';
          const seen = run.observed.replicas.get(action.replica)?.target;
          const point = recorded ? undefined : seen && 'record' in seen ? currentPoint(seen.record) : undefined;
          const line = recorded
            ? `${action.replica}: its new recovery point was recorded before the interrupt (rmm status shows it)`
            : `${action.replica}: ${point ? `still at recovery point ${point.id}, as before this run` : 'holds no consistent copy yet'}`;
          if (json) json({ type: 'interrupted', replica: action.replica, point: point?.id ?? null, recorded });
          else ctx.stdout.write(`${line}\n`);
        }
        // The summary is the stream's last event, an interrupted run's too.
        summary(result.synced.length, result.failed.length);
        return (stop.signal.reason as InterruptedError).reason === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
      }
      summary(result.synced.length, result.failed.length);
      return result.failed.length > 0 || blocked.length > 0 ? EXIT.error : EXIT.ok;
    } finally {
      await run.pool.closeAll();
    }
  },
};

/**
 * Runs `work` with SIGINT and SIGTERM turned into `stop`: the running step of each sync ends and is
 * undone (snapshots released, work files removed, the record says interrupted, the lock let go). A
 * second signal exits at once; the hosts then let go of what rmm held within heartbeatTimeout.
 */
async function whileStoppable<T>(ctx: CommandContext, stop: AbortController, onStop: () => void, work: () => Promise<T>): Promise<T> {
  const onSignal = (name: NodeJS.Signals): void => {
    onStop();
    if (stop.signal.aborted) {
      ctx.stderr.write(`\nrmm: ${name} again: exiting now; the hosts let go of what rmm held within the heartbeat timeout\n`);
      process.exit(name === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);
    }
    ctx.stderr.write(`\nrmm: ${name}: stopping: undoing each running step (${name} again exits at once)\n`);
    stop.abort(new InterruptedError(name));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function confirm(ctx: CommandContext): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question('Apply this plan? Only "yes" is accepted: ');
  rl.close();
  void ctx;
  return answer.trim() === 'yes';
}
