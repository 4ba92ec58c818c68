import type { ApplyEvent } from '../../apply/events.js';
import { applyPlan } from '../../apply/apply.js';
import { hasChanges } from '../../plan/plan.js';
import { readSavedPlan, StalePlanError, stalenessOf } from '../../plan/saved.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, type Command, type CommandContext } from '../command.js';
import { UsageError } from '../errors.js';
import { ENGINE_HELP, ENGINE_OPTIONS, loadObservePlan, renderPlan } from './engine.js';

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
      if (saved) {
        const problems = stalenessOf(saved, run.spec, run.observed);
        if (problems.length > 0) throw new StalePlanError(problems);
      }
      const plan = saved ?? run.plan;
      if (ctx.output === 'text') ctx.stdout.write(renderPlan(plan));
      const blocked = plan.actions.filter((a) => a.kind === 'blocked');
      if (!hasChanges(plan)) return blocked.length > 0 ? EXIT.error : EXIT.ok;
      // A saved plan was reviewed when it was made, as with terraform apply PLANFILE.
      if (ctx.values.yes !== true && !saved) {
        if (!process.stdin.isTTY) throw new UsageError('apply changes hosts: pass --yes to confirm when not on a terminal');
        if (!(await confirm(ctx))) {
          ctx.stderr.write('apply cancelled; nothing was changed\n');
          return EXIT.error;
        }
      }
      const result = await applyPlan(run.spec, plan, run.pool, { observed: run.observed, parallelism: run.parallelism, trustNewHostKeys: run.trustNewHostKeys, emit: renderer(ctx) });
      if (ctx.output === 'text') ctx.stdout.write(`\nApply: ${result.synced.length} synced, ${result.failed.length} failed.\n`);
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

function renderer(ctx: CommandContext): (e: ApplyEvent) => void {
  if (ctx.output === 'json') {
    let seq = 0;
    return (e) => ctx.stdout.write(`${JSON.stringify({ seq: seq++, at: new Date().toISOString(), ...e })}\n`);
  }
  const tty = (ctx.stdout as NodeJS.WriteStream).isTTY === true;
  let lastPlain = 0;
  return (e) => {
    switch (e.type) {
      case 'replica.start':
        ctx.stdout.write(`${e.replica}: sync (run ${e.runId})\n`);
        break;
      case 'step':
        ctx.stdout.write(`${e.replica}: ${e.step}${e.detail ? ` ${e.detail}` : ''}\n`);
        break;
      case 'progress': {
        const line = `${e.replica}: ${e.mountPoint} ${e.percent}% ${e.bytes} bytes ${e.files} files ${e.rate} ETA ${e.eta}`;
        if (tty) ctx.stdout.write(`\r${line}\x1b[K`);
        else if (Date.now() - lastPlain > 10_000) {
          lastPlain = Date.now();
          ctx.stdout.write(`${line}\n`);
        }
        break;
      }
      case 'filesystem.done':
        ctx.stdout.write(`${tty ? '\r\x1b[K' : ''}${e.replica}: copied ${e.mountPoint}: ${e.files} files, ${e.bytesTotal} bytes, ${e.bytesSent} bytes sent\n`);
        break;
      case 'replica.done':
        if (e.copied) ctx.stdout.write(`${e.replica}: consistent at recovery point ${e.point} (${e.seconds.toFixed(1)} s, ${e.bytesSent} bytes sent)\n`);
        else ctx.stdout.write(`${e.replica}: recovery point ${e.point} verified, nothing to copy (${e.seconds.toFixed(1)} s)\n`);
        break;
      case 'replica.failed':
        ctx.stdout.write(`${e.replica}: FAILED: ${e.error}\n`);
        break;
    }
  };
}
