import type { Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { PlannedAction, PlannedStep, RollbackPlan } from '../plan/action.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';
import { disksDriver, type DisksTarget } from '../target/disks/driver.js';
import { targetDriver } from '../target/index.js';
import type { Step, StepScope } from './runner.js';
import type { SyncOutcome } from './sync.js';
import { interruptible, TargetRun, type TargetRunContext } from './target-run.js';

export type RollbackContext = TargetRunContext;

/**
 * A cut disks sync undone on the landing host alone (the origin is out of reach): the landing
 * volumes' snapshots of the last point are merged back, then the record says the disks are that
 * point. Stopped halfway, the record still says the sync did not finish, and the next plan rolls
 * back again the volumes whose snapshot is still there.
 */
export async function runRollback(replica: Replica, action: PlannedAction, ctx: RollbackContext): Promise<SyncOutcome> {
  const plan = action.rollback;
  if (action.kind !== 'rollback' || !plan) throw new RmmError('apply.bad_plan', `replica ${replica.name}: the plan has no rollback for it`);
  const run = new Rollback(replica, action, plan, interruptible(ctx));
  await run.run(plan.steps);
  return run.outcome();
}

class Rollback extends TargetRun<RollbackContext, DisksTarget> {
  #point: RecoveryPoint | undefined;

  constructor(
    replica: Replica,
    action: PlannedAction,
    private readonly plan: RollbackPlan,
    ctx: RollbackContext,
  ) {
    super(replica, action, ctx, disksDriver(targetDriver(replica, ctx.target), replica.name));
  }

  outcome(): SyncOutcome {
    if (!this.#point) throw new RmmError('apply.incomplete', `replica ${this.replica.name}: the rollback ended without recording it`);
    return { point: this.#point, copied: false };
  }

  protected own(planned: PlannedStep, make: (run: (scope: StepScope) => Promise<void>) => Step): Step | undefined {
    switch (planned.kind) {
      case 'check':
        return make(() => this.checkRecord(this.plan.point));
      case 'rollback':
        return make(() => this.driver.rollbackVolumes(this.plan.mountRoot, this.plan.point, this.plan.volumes));
      case 'record':
        return make(() => this.record());
      default:
        return undefined;
    }
  }

  private async record(): Promise<void> {
    this.lock?.assertHeld();
    const previous = this.previous!;
    const cut = previous.error ? `: ${previous.error}` : '';
    const { pending: _pending, ...rest } = previous;
    const record: ReplicaRecord = {
      ...rest,
      // A point copied live (inconsistent) stays so once the disks are it again.
      state: rest.points.at(-1)?.pointInTime === false ? 'inconsistent' : 'consistent',
      runId: this.ctx.runId,
      updatedAt: this.now().toISOString(),
      error: `the sync of run ${previous.runId} did not finish${cut}; the landing volumes were rolled back to recovery point ${this.plan.point}`,
    };
    await this.driver.writeRecord(record);
    this.#point = record.points.at(-1)!;
    this.ctx.emit({ type: 'note', replica: this.replica.name, step: 'record', text: `the disks are recovery point ${this.plan.point} again` });
  }
}
