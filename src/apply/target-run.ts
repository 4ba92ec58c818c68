import type { Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { PlannedAction, PlannedStep } from '../plan/action.js';
import type { ReplicaRecord } from '../record/record.js';
import type { TargetDriver } from '../target/index.js';
import type { RemoteHost } from '../transport/index.js';
import type { EventSink } from './events.js';
import { InterruptibleHost, interruptibleStep } from './interrupt.js';
import { lockReplica, type ReplicaLock } from './lock.js';
import { runSteps, type Step, type StepScope } from './runner.js';
import { TargetMovedError } from './sync.js';

export interface TargetRunContext {
  readonly target: RemoteHost;
  readonly runId: string;
  readonly holder: string;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

/**
 * What the runs that act on the target alone (a fixup re-run, a rollback) share: the replica's lock,
 * the check that the record is still the one planned from, and their steps run in order, each
 * interruptible, through the step runner.
 */
export abstract class TargetRun<C extends TargetRunContext, D extends TargetDriver = TargetDriver> {
  protected lock: ReplicaLock | undefined;
  protected previous: ReplicaRecord | undefined;
  protected readonly now: () => Date;

  constructor(
    protected readonly replica: Replica,
    protected readonly action: PlannedAction,
    protected readonly ctx: C,
    protected readonly driver: D,
  ) {
    this.now = ctx.now ?? (() => new Date());
  }

  /** The step that runs `planned`; the lock, check and unlock steps are the same for every such run. */
  protected abstract own(planned: PlannedStep, make: (run: (scope: StepScope) => Promise<void>) => Step): Step | undefined;

  async run(steps: readonly PlannedStep[]): Promise<void> {
    await runSteps(
      steps.map((s) => interruptibleStep(this.step(s), this.hosts)),
      (e) => this.ctx.emit({ type: 'step', replica: this.replica.name, ...e }),
      this.ctx.signal,
    );
  }

  private get hosts(): InterruptibleHost[] {
    return this.ctx.target instanceof InterruptibleHost ? [this.ctx.target] : [];
  }

  private step(planned: PlannedStep): Step {
    const make = (run: (scope: StepScope) => Promise<void>): Step => ({ planned, host: this.ctx.target.info.host, run });
    switch (planned.kind) {
      case 'lock':
        return make(async (scope) => {
          this.lock = await lockReplica(this.ctx.target, this.driver.lockFile, this.replica.name, this.ctx.holder, this.replica.target.endpoint.heartbeatTimeoutMs);
          scope.onUndo(async () => this.lock?.release());
        });
      case 'unlock':
        return make(async () => this.lock?.release());
      default: {
        const own = this.own(planned, make);
        if (!own) throw new RmmError('apply.bad_plan', `replica ${this.replica.name}: a ${this.action.kind} has no step ${JSON.stringify(planned.id)}`);
        return own;
      }
    }
  }

  /** Under the lock the record must be as planned, and its last point `point`. */
  protected async checkRecord(point: string): Promise<void> {
    this.previous = await this.driver.readRecord();
    const found = this.previous?.runId;
    if (found !== this.action.observedRunId) {
      throw new TargetMovedError({ replica: this.replica.name, host: this.ctx.target.info.host, planned: this.action.observedRunId ?? 'none', found: found ?? 'none' });
    }
    if (this.previous?.points.at(-1)?.id !== point) throw new RmmError('replica.moved', `recovery point ${point} is no longer the last one; plan again`);
  }
}

/** The context with its target made interruptible by `signal`, when there is one. */
export function interruptible<C extends TargetRunContext>(ctx: C): C {
  return ctx.signal ? { ...ctx, target: new InterruptibleHost(ctx.target, ctx.signal) } : ctx;
}
