import type { HookPhase, Replica } from '../config/spec.js';
import { runHooks } from '../hooks/run.js';
import { RmmError } from '../errors.js';
import type { PlannedAction, PlannedStep, RefixupPlan } from '../plan/action.js';
import { pointDir, type RecoveryPoint, type ReplicaRecord } from '../record/record.js';
import { targetDriver, type TargetDriver } from '../target/index.js';
import { disksDriver, type DisksTarget } from '../target/disks/driver.js';
import type { RemoteHost } from '../transport/index.js';
import type { EventSink } from './events.js';
import { InterruptibleHost, interruptibleStep } from './interrupt.js';
import { lockReplica, type ReplicaLock } from './lock.js';
import { runSteps, type Step, type StepScope } from './runner.js';
import { TargetMovedError, type SyncOutcome } from './sync.js';

export interface RefixupContext {
  readonly target: RemoteHost;
  /** Only where a fixup hook runs on the origin. */
  readonly origin?: RemoteHost;
  readonly runId: string;
  readonly holder: string;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
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
  const hosts = ctx.signal ? [new InterruptibleHost(ctx.target, ctx.signal)] : [];
  const run = new Refixup(replica, action, plan, { ...ctx, target: hosts[0] ?? ctx.target });
  const steps = plan.steps.map((s) => interruptibleStep(run.step(s), hosts));
  await runSteps(steps, (e) => ctx.emit({ type: 'step', replica: replica.name, ...e }), ctx.signal);
  return run.outcome();
}

class Refixup {
  readonly #driver: TargetDriver;
  readonly #now: () => Date;
  #lock: ReplicaLock | undefined;
  #previous: ReplicaRecord | undefined;
  #point: RecoveryPoint | undefined;

  constructor(
    private readonly replica: Replica,
    private readonly action: PlannedAction,
    private readonly plan: RefixupPlan,
    private readonly ctx: RefixupContext,
  ) {
    this.#driver = targetDriver(replica, ctx.target);
    this.#now = ctx.now ?? (() => new Date());
  }

  outcome(): SyncOutcome {
    if (!this.#point) throw new RmmError('apply.incomplete', `replica ${this.replica.name}: the fixup re-run ended without recording it`);
    return { point: this.#point, copied: false };
  }

  step(planned: PlannedStep): Step {
    const make = (run: (scope: StepScope) => Promise<void>): Step => ({ planned, host: this.ctx.target.info.host, run });
    switch (planned.kind) {
      case 'lock':
        return make(async (scope) => {
          this.#lock = await lockReplica(this.ctx.target, this.#driver.lockFile, this.replica.name, this.ctx.holder, this.replica.target.endpoint.heartbeatTimeoutMs);
          scope.onUndo(async () => this.#lock?.release());
        });
      case 'check':
        return make(() => this.check());
      case 'record-start':
        return make(() => this.mark());
      case 'hooks':
        return make(() => this.hooks(planned.id.slice('hooks '.length) as HookPhase));
      case 'mount':
        return make((scope) => this.mount(scope));
      case 'fixup':
        return make(() => this.#driver.rewritePoint(this.plan.point, this.plan.changes));
      case 'unmount':
        return make(() => this.disks().unmount(this.disksTarget().mountRoot));
      case 'record':
        return make(() => this.record());
      case 'unlock':
        return make(async () => this.#lock?.release());
      default:
        throw new RmmError('apply.bad_plan', `replica ${this.replica.name}: a fixup re-run has no step ${JSON.stringify(planned.id)}`);
    }
  }

  private disksTarget(): Extract<RefixupPlan['target'], { kind: 'disks' }> {
    if (this.plan.target.kind !== 'disks') throw new RmmError('apply.bad_plan', `replica ${this.replica.name}: a disks step in the fixup re-run of a ${this.plan.target.kind} replica`);
    return this.plan.target;
  }

  private disks(): DisksTarget {
    return disksDriver(this.#driver, this.replica.name);
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

  /** Under the lock the record must be as planned, and its current point the one the plan rewrites. */
  private async check(): Promise<void> {
    this.#previous = await this.#driver.readRecord();
    const found = this.#previous?.runId;
    if (found !== this.action.observedRunId) {
      throw new TargetMovedError({ replica: this.replica.name, host: this.ctx.target.info.host, planned: this.action.observedRunId ?? 'none', found: found ?? 'none' });
    }
    if (this.#previous?.points.at(-1)?.id !== this.plan.point) throw new RmmError('replica.moved', `recovery point ${this.plan.point} is no longer the current one; plan again`);
  }

  private async mark(): Promise<void> {
    this.#lock?.assertHeld();
    await this.writePoint((p) => ({ ...p, fixups: { hash: p.fixups?.hash ?? this.plan.hash, files: p.fixups?.files ?? [], rewriting: { hash: this.plan.hash, files: this.plan.files } } }));
  }

  private async record(): Promise<void> {
    this.#lock?.assertHeld();
    this.#point = await this.writePoint((p) => ({ ...p, fixups: { hash: this.plan.hash, files: this.plan.files } }));
    const n = this.plan.changes.length;
    this.ctx.emit({ type: 'note', replica: this.replica.name, step: 'record', text: `recovery point ${this.plan.point} adapted anew: ${n} file(s) changed` });
  }

  /** The record with its current point changed by `change`, written under this run's id; the rest as it was. */
  private async writePoint(change: (p: RecoveryPoint) => RecoveryPoint): Promise<RecoveryPoint> {
    const previous = this.#previous!;
    const point = change(previous.points.at(-1)!);
    const record: ReplicaRecord = { ...previous, runId: this.ctx.runId, updatedAt: this.#now().toISOString(), points: [...previous.points.slice(0, -1), point] };
    await this.#driver.writeRecord(record);
    this.#previous = record;
    return point;
  }
}
