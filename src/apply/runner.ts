import type { PlannedStep } from '../plan/action.js';
import { RmmError } from '../errors.js';
import { interruptOf } from './interrupt.js';
import { isRetryable } from './retryable.js';

/** What a step's run gives the runner: `unchanged` from the compare step skips the `when: changed` steps after it. */
export type StepOutcome = void | 'unchanged';

/** The scope a step runs in: it registers how to undo what it acquired, as soon as it has acquired it. */
export interface StepScope {
  /** `undo` gets the failure that stopped the sync, or nothing when the sync went through. */
  onUndo(undo: (failure?: unknown) => Promise<void>): void;
}

export interface Step {
  readonly planned: PlannedStep;
  /** The host the step acts on, for messages. */
  readonly host: string;
  run(scope: StepScope): Promise<StepOutcome>;
}

export type StepStatus = 'start' | 'done' | 'skipped' | 'failed' | 'undone' | 'undo-failed';

export interface StepEvent {
  readonly step: string;
  readonly status: StepStatus;
  readonly detail?: string;
}

/** A sync stopped at a step: the step, the host it acted on, and the root cause. */
export class StepFailedError extends RmmError {
  readonly retryable: boolean;

  constructor(
    readonly step: string,
    readonly host: string,
    cause: unknown,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(cause instanceof RmmError ? cause.code : 'step.failed', `${step} (${host}): ${message}`, { cause });
    this.retryable = isRetryable(cause);
  }

  override toJSON(): Record<string, unknown> {
    const cause = this.cause instanceof RmmError ? this.cause.toJSON() : { message: String((this.cause as Error)?.message ?? this.cause) };
    return { ...super.toJSON(), step: this.step, host: this.host, retryable: this.retryable, cause };
  }
}

/**
 * Runs the steps in order and stops at the first failure. Every undo registered so far runs then,
 * newest first, whatever happens to the others; the failure is reported once, as its root cause
 * (an undo that fails is an event, never the error). Undos also run after a success for what was
 * acquired and not let go by a later step: a step that lets go of a resource makes its undo a no-op.
 */
export async function runSteps(steps: readonly Step[], emit: (e: StepEvent) => void, signal?: AbortSignal): Promise<{ unchanged: boolean }> {
  const undos: Undo[] = [];
  let unchanged = false;
  let current: Step | undefined;
  try {
    for (const step of steps) {
      current = step;
      const id = step.planned.id;
      if (signal?.aborted) throw interruptOf(signal);
      if (unchanged && step.planned.when === 'changed') {
        emit({ step: id, status: 'skipped', detail: 'the origin is unchanged since the last recovery point' });
        continue;
      }
      emit({ step: id, status: 'start', detail: step.planned.detail });
      const outcome = await step.run({ onUndo: (undo) => undos.push({ step: id, undo }) });
      // A step whose processes were ended by the interrupt may look done (a tar fed no more names ends well): it is not.
      if (signal?.aborted) throw interruptOf(signal);
      if (outcome === 'unchanged') unchanged = true;
      emit({ step: id, status: 'done' });
    }
    current = undefined;
    return { unchanged };
  } catch (err) {
    const failed = current!;
    // Interrupted, whatever the step then failed with: that is the root cause.
    const cause = signal?.aborted ? interruptOf(signal) : err;
    emit({ step: failed.planned.id, status: 'failed', detail: cause instanceof Error ? cause.message : String(cause) });
    const error = cause instanceof StepFailedError ? cause : new StepFailedError(failed.planned.id, failed.host, cause);
    await undoAll(undos, emit, error);
    throw error;
  } finally {
    if (current === undefined) await undoAll(undos, emit);
  }
}

interface Undo {
  readonly step: string;
  readonly undo: (failure?: unknown) => Promise<void>;
}

async function undoAll(undos: Undo[], emit: (e: StepEvent) => void, failure?: unknown): Promise<void> {
  for (const { step, undo } of undos.splice(0).reverse()) {
    try {
      await undo(failure);
      if (failure !== undefined) emit({ step, status: 'undone' });
    } catch (err) {
      emit({ step, status: 'undo-failed', detail: err instanceof Error ? err.message : String(err) });
    }
  }
}
