import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Replica, Spec } from '../config/spec.js';
import type { Observed } from '../observe/observe.js';
import type { Plan } from '../plan/plan.js';
import { openPushChannel } from '../sync/channel.js';
import type { SessionPool, SshSession } from '../transport/index.js';
import { mapBounded } from '../util/bounded.js';
import type { EventSink } from './events.js';
import { replicate } from './replicate.js';
import { endpointSession } from './sessions.js';
import { openReverseTunnel } from '../transport/tunnel.js';

export interface ApplyOptions {
  /** This run's observation: apply reuses the origins' facts instead of reading them again. */
  readonly observed?: Observed;
  readonly parallelism: number;
  readonly trustNewHostKeys: boolean;
  readonly emit: EventSink;
}

export interface ApplyResult {
  readonly synced: readonly string[];
  readonly failed: readonly { readonly replica: string; readonly error: string }[];
}

export function newRunId(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Carries out the plan's sync actions, replicas in parallel with a bound. */
export async function applyPlan(spec: Spec, plan: Plan, pool: SessionPool, opts: ApplyOptions): Promise<ApplyResult> {
  const runId = newRunId();
  const holder = `rmm run ${runId} pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}`;
  const byName = new Map(spec.replicas.map((r) => [r.name, r]));
  const work = plan.actions.filter((a) => a.kind === 'sync');
  const synced: string[] = [];
  const failed: { replica: string; error: string }[] = [];
  await mapBounded(work, opts.parallelism, async (action) => {
    const replica = byName.get(action.replica)!;
    const started = Date.now();
    opts.emit({ type: 'replica.start', replica: replica.name, runId, reasons: action.reasons });
    try {
      const origin = await endpointSession(pool, replica.origin.endpoint, opts.trustNewHostKeys);
      const target = await endpointSession(pool, replica.target.endpoint, opts.trustNewHostKeys);
      const seen = opts.observed?.replicas.get(replica.name)?.origin;
      const facts = seen && 'facts' in seen ? { facts: seen.facts } : {};
      const { point, copied } = await replicate(replica, { origin, target, runId, holder, emit: opts.emit, openChannel: channelOpener(replica, runId), ...facts });
      synced.push(replica.name);
      opts.emit({
        type: 'replica.done',
        replica: replica.name,
        point: point.id,
        copied,
        seconds: (Date.now() - started) / 1000,
        bytesSent: copied ? (point.stats?.bytesSent ?? 0) : 0,
        files: point.stats?.files ?? 0,
      });
    } catch (err) {
      failed.push({ replica: replica.name, error: (err as Error).message });
      opts.emit({ type: 'replica.failed', replica: replica.name, error: (err as Error).message });
    }
  });
  return { synced, failed };
}

function channelOpener(replica: Replica, runId: string) {
  return async (origin: SshSession, target: SshSession) => {
    const common = { origin, target, targetEndpoint: replica.target.endpoint, replica: replica.name, runId };
    if (replica.environment.transfer === 'direct') return openPushChannel(common);
    // Relay: the origin cannot reach the target, so its sshd listens on loopback and rmm carries
    // each connection over to the target's sshd through the two sessions it already holds.
    const tunnel = await openReverseTunnel(origin, target, replica.target.endpoint.port);
    const channel = await openPushChannel({ ...common, via: { host: '127.0.0.1', port: tunnel.port } });
    return {
      ...channel,
      close: async () => {
        await channel.close();
        await tunnel.close();
      },
    };
  };
}
