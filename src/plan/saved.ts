import { readFile, writeFile } from 'node:fs/promises';
import type { Spec } from '../config/spec.js';
import { InputError, RmmError } from '../errors.js';
import type { Observed } from '../observe/observe.js';
import type { Plan } from './plan.js';

/** A plan written by `rmm plan --out`, applied later by `rmm apply --plan` only if the world has not moved. */
export interface SavedPlan {
  readonly format: 'rmm-plan';
  readonly version: 1;
  readonly plan: Plan;
}

export class StalePlanError extends RmmError {
  constructor(readonly problems: readonly string[]) {
    super('plan.stale', `the saved plan is stale; run rmm plan again:\n  ${problems.join('\n  ')}`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

export async function savePlan(file: string, plan: Plan): Promise<void> {
  const saved: SavedPlan = { format: 'rmm-plan', version: 1, plan };
  await writeFile(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
}

export async function readSavedPlan(file: string): Promise<Plan> {
  let value: Partial<SavedPlan>;
  try {
    value = JSON.parse(await readFile(file, 'utf8')) as Partial<SavedPlan>;
  } catch (err) {
    throw new InputError('plan.unreadable', `cannot read the saved plan ${file}: ${(err as Error).message}`);
  }
  if (value.format !== 'rmm-plan' || value.version !== 1 || !value.plan) throw new InputError('plan.unreadable', `${file} is not a plan saved by rmm plan --out`);
  return value.plan;
}

/** Every way the spec or the targets differ from when the plan was made; empty when it still holds. */
export function stalenessOf(saved: Plan, spec: Spec, observed: Observed): string[] {
  const problems: string[] = [];
  const replicas = new Map(spec.replicas.map((r) => [r.name, r]));
  for (const action of saved.actions) {
    const replica = replicas.get(action.replica);
    if (!replica) {
      problems.push(`replica ${action.replica} is no longer in the configuration`);
      continue;
    }
    if (replica.specHash !== action.specHash) problems.push(`replica ${action.replica}: its configuration changed (generation ${action.specHash} -> ${replica.specHash})`);
    const seen = observed.replicas.get(action.replica);
    const target = seen?.target;
    if (!target || 'error' in target) {
      problems.push(`replica ${action.replica}: cannot read its target${target && 'error' in target ? `: ${target.error}` : ''}`);
      continue;
    }
    const runNow = target.record?.runId;
    if (runNow !== action.observedRunId)
      problems.push(`replica ${action.replica}: the target changed since the plan (last run ${action.observedRunId ?? 'none'} -> ${runNow ?? 'none'})`);
  }
  for (const name of replicas.keys()) if (!saved.actions.some((a) => a.replica === name)) problems.push(`replica ${name} was added after the plan was made`);
  return problems;
}
