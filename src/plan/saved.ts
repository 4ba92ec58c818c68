import { readFile, writeFile } from 'node:fs/promises';
import { InputError, RmmError } from '../errors.js';
import { inputsDiff } from './inputs.js';
import type { Plan } from './action.js';

/** A plan written by `rmm plan --out`, applied later by `rmm apply --plan` only if the world has not moved. */
export interface SavedPlan {
  readonly format: 'rmm-plan';
  readonly version: 2;
  readonly plan: Plan;
}

export class StalePlanError extends RmmError {
  constructor(readonly problems: readonly string[]) {
    super('plan.stale', `the saved plan is stale; nothing was changed; run rmm plan again:\n  ${problems.join('\n  ')}`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

export async function savePlan(file: string, plan: Plan): Promise<void> {
  const saved: SavedPlan = { format: 'rmm-plan', version: 2, plan };
  await writeFile(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
}

export async function readSavedPlan(file: string): Promise<Plan> {
  let value: Partial<SavedPlan> & { version?: unknown };
  try {
    value = JSON.parse(await readFile(file, 'utf8')) as Partial<SavedPlan>;
  } catch (err) {
    throw new InputError('plan.unreadable', `cannot read the saved plan ${file}: ${(err as Error).message}`);
  }
  if (value.format !== 'rmm-plan' || !value.plan || !Array.isArray(value.plan.actions)) throw new InputError('plan.unreadable', `${file} is not a plan saved by rmm plan --out`);
  if (value.version !== 2) throw new InputError('plan.unreadable', `${file} was saved by another version of rmm (plan format ${String(value.version)}, this rmm reads 2); run rmm plan --out again`);
  return value.plan;
}

/**
 * Every way the world differs from when the saved plan was made, each named: the configuration,
 * the inputs that shape the apply (policy, hooks and their scripts, endpoints, exclusions, the
 * origin's filesystems and identity), what each target held, and the action itself: `fresh` is
 * planned now from the same spec and observations, syncing what the saved plan syncs, and every
 * sync must come out the same, step for step. apply then carries out the fresh plan, so nothing in
 * the saved file (which anyone may edit) is ever executed as such. Empty when the plan still holds.
 */
export function stalenessOf(saved: Plan, fresh: Plan): string[] {
  const problems: string[] = [];
  const now = new Map(fresh.actions.map((a) => [a.replica, a]));
  for (const action of saved.actions) {
    const current = now.get(action.replica);
    if (!current) {
      problems.push(`replica ${action.replica} is no longer in the configuration`);
      continue;
    }
    if (current.specHash !== action.specHash) problems.push(`replica ${action.replica}: its configuration changed (generation ${action.specHash} -> ${current.specHash})`);
    if (current.inputsHash !== action.inputsHash) {
      const diffs = inputsDiff(action.inputs, current.inputs);
      for (const d of diffs) problems.push(`replica ${action.replica}: ${d}`);
      if (diffs.length === 0) problems.push(`replica ${action.replica}: the saved inputs hash does not match its inputs (the file was edited)`);
    }
    if (current.kind !== action.kind) problems.push(`replica ${action.replica}: the saved plan says ${action.kind}, rmm plans ${current.kind} now: ${current.reasons[0]}`);
    else if (action.kind === 'sync') for (const d of inputsDiff(action.sync, current.sync)) problems.push(`replica ${action.replica}: sync.${d}`);
    else if (action.kind === 'fixup') for (const d of inputsDiff(action.fixup, current.fixup)) problems.push(`replica ${action.replica}: fixup.${d}`);
    else if (action.kind === 'rollback') for (const d of inputsDiff(action.rollback, current.rollback)) problems.push(`replica ${action.replica}: rollback.${d}`);
    if (current.observedRunId !== action.observedRunId && !(current.kind === 'blocked' && current.reasons[0]?.startsWith('target'))) {
      problems.push(`replica ${action.replica}: the target changed since the plan (last run ${action.observedRunId ?? 'none'} -> ${current.observedRunId ?? 'none'})`);
    }
  }
  for (const name of now.keys()) if (!saved.actions.some((a) => a.replica === name)) problems.push(`replica ${name} was added after the plan was made`);
  return problems;
}
