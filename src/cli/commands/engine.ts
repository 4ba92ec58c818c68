import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadSpec } from '../../config/load.js';
import type { Spec } from '../../config/spec.js';
import { didYouMean } from '../../config/suggest.js';
import { observe, type Observed } from '../../observe/observe.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { makePlan, type Plan } from '../../plan/plan.js';
import type { SessionPool } from '../../transport/index.js';
import { cliSessionPool } from './replica-target.js';
import { fileArgs, type CommandContext } from '../command.js';
import { UsageError } from '../errors.js';

export const ENGINE_OPTIONS = {
  parallelism: { type: 'string' },
  'trust-new-host-keys': { type: 'boolean' },
  'sync-now': { type: 'string', multiple: true },
} as const;

export const ENGINE_HELP = [
  '  --parallelism N         replicas handled at once (default 4)',
  '  --trust-new-host-keys   add unknown host keys to the known_hosts file (a changed key is always refused)',
  '  --sync-now REPLICA      sync this replica even if its schedule is not due (repeatable; "all" for every one)',
].join('\n');

export interface EngineRun {
  readonly spec: Spec;
  readonly pool: SessionPool;
  readonly observed: Observed;
  readonly plan: Plan;
  /** Content hashes of the hook scripts, as the plan saw them. */
  readonly scripts: ReadonlyMap<string, string>;
  readonly parallelism: number;
  readonly trustNewHostKeys: boolean;
}

/** --parallelism: replicas handled at once, 4 unless said. */
export function parallelismOf(ctx: CommandContext): number {
  const parallelism = Number(ctx.values.parallelism ?? 4);
  if (!Number.isInteger(parallelism) || parallelism < 1) throw new UsageError('--parallelism must be a whole number of at least 1');
  return parallelism;
}

/** Load (nothing connects before the files are valid), observe, plan: what plan, apply and status share. */
export async function loadObservePlan(ctx: CommandContext): Promise<EngineRun> {
  const args = fileArgs(ctx);
  if (args.length === 0) throw new UsageError('needs at least one -f FILE');
  const parallelism = parallelismOf(ctx);
  const { spec, warnings } = await loadSpec(args);
  if (ctx.output === 'text') for (const w of warnings) ctx.stderr.write(`${formatDiagnostic(w)}\n`);
  const trustNewHostKeys = ctx.values['trust-new-host-keys'] === true;
  const pool = cliSessionPool(ctx);
  try {
    const observed = await observe(spec, pool, { parallelism, trustNewHostKeys });
    const syncNow = (ctx.values['sync-now'] as string[] | undefined) ?? [];
    for (const name of syncNow)
      if (name !== 'all' && !spec.replicas.some((r) => r.name === name)) throw new UsageError(`--sync-now: no replica named '${name}'${didYouMean(name, spec.replicas.map((r) => r.name))}`);
    const scripts = scriptDigests(spec);
    const plan = makePlan(spec, observed, new Date(), { syncNow: syncNow.includes('all') ? 'all' : new Set(syncNow), scripts });
    return { spec, pool, observed, plan, scripts, parallelism, trustNewHostKeys };
  } catch (err) {
    await pool.closeAll();
    throw err;
  }
}

export { renderPlan } from '../views/plan.js';

/** The content hash of every hook script on this host: a script edited after a saved plan makes it stale. */
export function scriptDigests(spec: Spec): Map<string, string> {
  const digests = new Map<string, string>();
  for (const replica of spec.replicas)
    for (const hooks of Object.values(replica.hooks))
      for (const hook of hooks) {
        if (hook.script === undefined || digests.has(hook.script)) continue;
        try {
          digests.set(hook.script, createHash('sha256').update(readFileSync(hook.script)).digest('hex'));
        } catch {
          // validate checked it exists; one that vanished since fails when its hook runs
        }
      }
  return digests;
}
