import type { Replica } from '../config/spec.js';
import { observeReplica } from '../observe/observe.js';
import { makePlan, type PlannedAction } from '../plan/plan.js';
import { currentAsOf, currentPoint, nextLookAt } from '../policy/schedule.js';
import type { ScriptDigests } from '../plan/inputs.js';
import type { RemoteHost, SessionPool } from '../transport/index.js';
import { applyAction, newRunId } from './apply.js';
import type { EventSink } from './events.js';
import { isRetryable } from './retryable.js';
import { StepFailedError } from './runner.js';

export interface ReconcileDeps {
  readonly pool: SessionPool;
  readonly trustNewHostKeys: boolean;
  readonly emit: EventSink;
  readonly scripts?: ScriptDigests;
  readonly wrapHost?: (host: RemoteHost, role: 'origin' | 'target') => RemoteHost;
  /** Aborted when the operator stops rmm: a running sync ends its step and undoes it. */
  readonly signal?: AbortSignal;
}

export type ReconcileOutcome = 'synced' | 'verified' | 'fixed-up' | 'rolled-back' | 'up-to-date' | 'suspended' | 'blocked' | 'failed';

export interface ReconcileResult {
  readonly outcome: ReconcileOutcome;
  readonly action: PlannedAction;
  /** When to look again: at the next due time, or after a backoff when the error may pass. */
  readonly requeueAfterMs?: number;
  readonly error?: { readonly message: string; readonly code: string; readonly retryable: boolean };
  /** Since when the replica's current recovery point is known to equal the origin, when the look read it. */
  readonly asOf?: string;
}

/** First wait after a retryable failure; a watch loop doubles it per consecutive failure. */
export const RETRY_AFTER_MS = 60_000;

/**
 * One replica brought to its spec: observe it, plan it, carry out the plan's action. Level-based
 * like a controller's reconcile: it reads the world afresh each time, so calling it again after any
 * outcome is safe. `rmm apply` runs the same plan and execute halves over every replica at once;
 * a watch loop will queue this per replica.
 */
export async function reconcileReplica(replica: Replica, deps: ReconcileDeps, opts: { now: Date; syncNow?: boolean }): Promise<ReconcileResult> {
  const observed = await observeReplica(replica, deps.pool, deps.trustNewHostKeys);
  const spec = { replicas: [replica], files: [] };
  const plan = makePlan(spec, { at: opts.now.toISOString(), replicas: new Map([[replica.name, observed]]) }, opts.now, {
    ...(opts.syncNow ? { syncNow: 'all' as const } : {}),
    ...(deps.scripts ? { scripts: deps.scripts } : {}),
  });
  const action = plan.actions[0]!;
  const seen = 'record' in observed.target ? currentPoint(observed.target.record) : undefined;
  const held = seen ? { asOf: currentAsOf(seen) } : {};
  // A suspended replica is not synced when due: looked at now and then, not when its schedule says.
  const look = seen && !replica.suspend ? nextLookAt(replica, seen) : undefined;
  const untilDue = look ? Math.max(0, look.getTime() - opts.now.getTime()) : undefined;
  const due = untilDue !== undefined ? { requeueAfterMs: untilDue } : {};
  if (action.kind === 'none') return { outcome: replica.suspend ? 'suspended' : 'up-to-date', action, ...due, ...held };
  if (action.kind === 'blocked') {
    return { outcome: 'blocked', action, requeueAfterMs: RETRY_AFTER_MS, error: { message: action.reasons[0] ?? 'blocked', code: 'replica.blocked', retryable: true }, ...held };
  }
  const runId = newRunId();
  try {
    const { point, copied } = await applyAction(replica, action, deps.pool, {
      parallelism: 1,
      trustNewHostKeys: deps.trustNewHostKeys,
      emit: deps.emit,
      runId,
      holder: `rmm reconcile ${runId} pid ${process.pid}`,
      ...(deps.wrapHost ? { wrapHost: deps.wrapHost } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    const next = nextLookAt(replica, point);
    return { outcome: action.kind === 'fixup' ? 'fixed-up' : action.kind === 'rollback' ? 'rolled-back' : copied ? 'synced' : 'verified', action, ...(next ? { requeueAfterMs: Math.max(0, next.getTime() - Date.now()) } : {}), asOf: currentAsOf(point) };
  } catch (err) {
    const retryable = err instanceof StepFailedError ? err.retryable : isRetryable(err);
    const code = (err as { code?: unknown }).code;
    return {
      outcome: 'failed',
      action,
      ...(retryable ? { requeueAfterMs: RETRY_AFTER_MS } : {}),
      error: { message: (err as Error).message, code: typeof code === 'string' ? code : 'rmm.internal', retryable },
      ...held,
    };
  }
}
