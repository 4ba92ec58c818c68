import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Replica, Spec } from '../config/spec.js';
import { detailOf, RmmError } from '../errors.js';
import type { Plan, PlannedAction } from '../plan/plan.js';
import { openPushChannel, removeEphemeralAccess } from '../sync/channel.js';
import type { RemoteHost, SessionPool } from '../transport/index.js';
import { mapBounded } from '../util/bounded.js';
import type { EventSink } from './events.js';
import { interruptOf } from './interrupt.js';
import { isRetryable } from './retryable.js';
import { StepFailedError } from './runner.js';
import { endpointSession } from './sessions.js';
import { runRollback } from './rollback.js';
import { runRefixup } from './refixup.js';
import { runSync } from './sync.js';

export interface ApplyOptions {
  readonly parallelism: number;
  readonly trustNewHostKeys: boolean;
  readonly emit: EventSink;
  /** Wraps each host before use: tests inject faults here. */
  readonly wrapHost?: (host: RemoteHost, role: 'origin' | 'target') => RemoteHost;
  /** Aborted when the operator stops rmm: running syncs end their step and undo, the rest do not start. */
  readonly signal?: AbortSignal;
}

export interface ApplyResult {
  readonly synced: readonly string[];
  readonly failed: readonly { readonly replica: string; readonly error: string; readonly retryable: boolean; readonly step?: string }[];
}

export function newRunId(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Carries out the plan's sync actions, replicas in parallel with a bound, but the replicas of one
 * origin one after another: a filesystem takes one freeze at a time (a second fsfreeze fails with
 * EBUSY), and two snapshots of it at once would double the load on the server being protected.
 */
export async function applyPlan(spec: Spec, plan: Plan, pool: SessionPool, opts: ApplyOptions): Promise<ApplyResult> {
  const runId = newRunId();
  const holder = `rmm run ${runId} pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}`;
  const byName = new Map(spec.replicas.map((r) => [r.name, r]));
  const work = plan.actions.filter((a) => a.kind === 'sync' || a.kind === 'fixup' || a.kind === 'rollback');
  const synced: string[] = [];
  const failed: { replica: string; error: string; retryable: boolean; step?: string }[] = [];
  const byOrigin = new Map<string, PlannedAction[]>();
  for (const action of work) {
    const origin = byName.get(action.replica)?.origin.endpoint;
    const key = origin ? `${origin.address}:${origin.port}` : action.replica;
    byOrigin.set(key, [...(byOrigin.get(key) ?? []), action]);
  }
  await mapBounded([...byOrigin.values()], opts.parallelism, async (actions) => {
    for (const [i, action] of actions.entries()) {
      if (i > 0) opts.emit({ type: 'note', replica: action.replica, step: 'wait', text: `waited for replica ${actions[i - 1]!.replica} of the same origin: one sync of an origin at a time` });
      await syncOne(action);
    }
  });
  return { synced, failed };

  async function syncOne(action: PlannedAction): Promise<void> {
    const replica = byName.get(action.replica);
    if (!replica) throw new RmmError('apply.bad_plan', `the plan names replica ${action.replica}, which the configuration does not have`);
    if (opts.signal?.aborted) {
      const error = interruptOf(opts.signal);
      failed.push({ replica: replica.name, error: `not started: ${error.message}`, retryable: true });
      opts.emit({ type: 'replica.failed', replica: replica.name, error: `not started: ${error.message}`, code: error.code, retryable: true });
      return;
    }
    const started = Date.now();
    opts.emit({ type: 'replica.start', replica: replica.name, runId, reasons: action.reasons, steps: (action.sync?.steps ?? action.fixup?.steps ?? action.rollback?.steps ?? []).map((s) => s.id) });
    try {
      const { point, copied } = await applyAction(replica, action, pool, { ...opts, runId, holder });
      synced.push(replica.name);
      opts.emit({
        type: 'replica.done',
        replica: replica.name,
        point: point.id,
        copied,
        ...(action.kind === 'fixup' ? { fixedUp: true } : {}),
        ...(action.kind === 'rollback' ? { rolledBack: true } : {}),
        seconds: (Date.now() - started) / 1000,
        bytesSent: copied ? (point.stats?.bytesSent ?? 0) : 0,
        files: point.stats?.files ?? 0,
      });
    } catch (err) {
      const retryable = err instanceof StepFailedError ? err.retryable : isRetryable(err);
      const message = (err as Error).message;
      const detail = detailOf(err);
      failed.push({ replica: replica.name, error: message, retryable, ...(err instanceof StepFailedError ? { step: err.step } : {}) });
      opts.emit({
        type: 'replica.failed',
        replica: replica.name,
        error: message,
        code: err instanceof RmmError ? err.code : 'rmm.internal',
        ...(err instanceof StepFailedError ? { step: err.step, host: err.host } : {}),
        retryable,
        ...(detail !== undefined ? { detail } : {}),
      });
    }
  }
}

/** One replica's planned sync, on sessions from the pool. */
export async function applyAction(replica: Replica, action: PlannedAction, pool: SessionPool, opts: ApplyOptions & { runId: string; holder: string }) {
  const wrap = opts.wrapHost ?? ((h: RemoteHost) => h);
  const target = wrap(await endpointSession(pool, replica.target.endpoint, opts.trustNewHostKeys), 'target');
  // A rollback and a fixup re-run work on the target alone: the origin may be the site that is down.
  if (action.kind === 'rollback') return runRollback(replica, action, { target, runId: opts.runId, holder: opts.holder, emit: opts.emit, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (action.kind === 'fixup') {
    const onOrigin = [...replica.hooks.preFixup, ...replica.hooks.postFixup].some((h) => h.on === 'origin');
    const origin = onOrigin ? { origin: wrap(await endpointSession(pool, replica.origin.endpoint, opts.trustNewHostKeys), 'origin') } : {};
    return runRefixup(replica, action, { target, ...origin, runId: opts.runId, holder: opts.holder, emit: opts.emit, ...(opts.signal ? { signal: opts.signal } : {}) });
  }
  const origin = wrap(await endpointSession(pool, replica.origin.endpoint, opts.trustNewHostKeys), 'origin');
  return runSync(replica, action, {
    origin,
    target,
    runId: opts.runId,
    holder: opts.holder,
    emit: opts.emit,
    openChannel: channelOpener(replica, opts.runId),
    revokeAccess: () => removeEphemeralAccess(origin, target, replica.name),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/**
 * The target's sshd as the target reaches it: the address and port its sshd accepted rmm's
 * connection on (SSH_CONNECTION), which behind a NAT or a forwarded port are not the ones rmm
 * dialled. Undefined when the target does not say, or says something that is not an address.
 */
async function ownSshd(target: RemoteHost): Promise<{ address: string; port: number } | undefined> {
  // As the login user: sudo drops SSH_CONNECTION from the environment.
  const res = await target.exec(['sh', '-c', 'printf "%s\\n" "$SSH_CONNECTION"'], { sudo: false, allowFailure: true });
  const [, , address, port] = res.stdout.trim().split(' ');
  const n = Number(port);
  return address && isIP(address) && Number.isInteger(n) && n > 0 && n < 65536 ? { address, port: n } : undefined;
}

function channelOpener(replica: Replica, runId: string) {
  return async (origin: RemoteHost, target: RemoteHost) => {
    const common = { origin, target, targetEndpoint: replica.target.endpoint, replica: replica.name, runId };
    if (replica.environment.transfer === 'direct') return openPushChannel(common);
    // Relay: the origin cannot reach the target, so its sshd listens on loopback and rmm carries
    // each connection over to the target's sshd through the two sessions it already holds.
    const sshd = await ownSshd(target);
    const tunnel = await origin.openReverseTunnel(target, sshd?.port ?? replica.target.endpoint.port, sshd?.address);
    const channel = await openPushChannel({ ...common, via: { host: '127.0.0.1', port: tunnel.port } }).catch(async (err: unknown) => {
      await tunnel.close().catch(() => {});
      throw err;
    });
    let closed: Promise<void> | undefined;
    return {
      ...channel,
      // Once closed it stays closed; a close that failed is tried again by the next call (an undo).
      close: () =>
        (closed ??= (async () => {
          try {
            await channel.close();
          } finally {
            await tunnel.close();
          }
        })().catch((err: unknown) => {
          closed = undefined;
          throw err;
        })),
    };
  };
}
