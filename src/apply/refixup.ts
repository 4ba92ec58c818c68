import type { HookPhase, Replica } from '../config/spec.js';
import { runHooks } from '../hooks/run.js';
import { RmmError } from '../errors.js';
import type { PlannedAction, PlannedStep, RefixupPlan } from '../plan/action.js';
import { pointDir, type RecoveryPoint, type ReplicaRecord } from '../record/record.js';
import { targetDriver } from '../target/index.js';
import { disksDriver, type DisksTarget } from '../target/disks/driver.js';
import type { RemoteHost } from '../transport/index.js';
import type { Step, StepScope } from './runner.js';
import type { SyncOutcome } from './sync.js';
import { interruptible, TargetRun, type TargetRunContext } from './target-run.js';

export interface RefixupContext extends TargetRunContext {
  /** Only where a fixup hook runs on the origin. */
  readonly origin?: RemoteHost;
}

/**
 * A fixup re-run on the current recovery point, as the plan's action says: nothing is copied and the
 * origin is not contacted (it may be the site that is down). The record marks the point's fixups as
 * being rewritten before the first file changes; a run stopped halfway leaves that mark, and the next
 * plan re-runs the fixups from the point's originals, which gives the same texts whatever was done.
 */
export async function runRefixup(replica: Replica, action: PlannedAction, ctx: RefixupContext): Promise<SyncOutcome> {
  const plan = action.fixup;
  if (action.kind !== 'fixup' || !plan) throw new RmmError('apply.bad_plan', `replica ${replica.name}: the plan has no fixup re-run for it`);
  const run = new Refixup(replica, action, plan, interruptible(ctx));
  await run.run(plan.steps);
  return run.outcome();
}

class Refixup extends TargetRun<RefixupContext> {
  #point: RecoveryPoint | undefined;

  constructor(
    replica: Replica,
    action: PlannedAction,
    private readonly plan: RefixupPlan,
    ctx: RefixupContext,
  ) {
    super(replica, action, ctx, targetDriver(replica, ctx.target));
  }

  outcome(): SyncOutcome {
    if (!this.#point) throw new RmmError('apply.incomplete', `replica ${this.replica.name}: the fixup re-run ended without recording it`);
    return { point: this.#point, copied: false };
  }

  protected own(planned: PlannedStep, make: (run: (scope: StepScope) => Promise<void>) => Step): Step | undefined {
    switch (planned.kind) {
      case 'check':
        return make(() => this.checkRecord(this.plan.point));
      case 'record-start':
        return make(() => this.mark());
      case 'hooks':
        return make(() => this.hooks(planned.id.slice('hooks '.length) as HookPhase));
      case 'mount':
        return make((scope) => this.mount(scope));
      case 'fixup':
        return make(() => this.driver.rewritePoint(this.plan.point, this.plan.changes));
      case 'unmount':
        return make(() => this.disks().unmount(this.disksTarget().mountRoot));
      case 'record':
        return make(() => this.record());
      default:
        return undefined;
    }
  }

  private disksTarget(): Extract<RefixupPlan['target'], { kind: 'disks' }> {
    if (this.plan.target.kind !== 'disks') throw new RmmError('apply.bad_plan', `replica ${this.replica.name}: a disks step in the fixup re-run of a ${this.plan.target.kind} replica`);
    return this.plan.target;
  }

  private disks(): DisksTarget {
    return disksDriver(this.driver, this.replica.name);
  }

  /** The replica's disks mounted as its last sync mounted them, until the unmount step; on any failure unmounted too. */
  private async mount(scope: StepScope): Promise<void> {
    const target = this.disksTarget();
    scope.onUndo(() => this.disks().unmount(target.mountRoot));
    await this.disks().mount(target.mountRoot, target.mounts);
  }

  private async hooks(phase: HookPhase): Promise<void> {
    const { origin, target, runId, signal } = this.ctx;
    const targetRoot = this.plan.target.kind === 'disks' ? this.plan.target.mountRoot : pointDir(this.replica.target.path!, this.plan.point);
    const report = (line: string) => this.ctx.emit({ type: 'note', replica: this.replica.name, step: `hooks ${phase}`, text: line });
    await runHooks(phase, { replica: this.replica, target, runId, targetRoot, report, ...(origin ? { origin } : {}), ...(signal ? { signal } : {}) });
  }

  private async mark(): Promise<void> {
    this.lock?.assertHeld();
    await this.writePoint((p) => ({ ...p, fixups: { hash: p.fixups?.hash ?? this.plan.hash, files: p.fixups?.files ?? [], rewriting: { hash: this.plan.hash, files: this.plan.files } } }));
  }

  private async record(): Promise<void> {
    this.lock?.assertHeld();
    this.#point = await this.writePoint((p) => ({ ...p, fixups: { hash: this.plan.hash, files: this.plan.files } }));
    const n = this.plan.changes.length;
    this.ctx.emit({ type: 'note', replica: this.replica.name, step: 'record', text: `recovery point ${this.plan.point} adapted anew: ${n} file(s) changed` });
  }

  /** The record with its current point changed by `change`, written under this run's id; the rest as it was. */
  private async writePoint(change: (p: RecoveryPoint) => RecoveryPoint): Promise<RecoveryPoint> {
    const previous = this.previous!;
    const point = change(previous.points.at(-1)!);
    const record: ReplicaRecord = { ...previous, runId: this.ctx.runId, updatedAt: this.now().toISOString(), points: [...previous.points.slice(0, -1), point] };
    await this.driver.writeRecord(record);
    this.previous = record;
    return point;
  }
}
