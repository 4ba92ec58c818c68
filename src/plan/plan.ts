import { Cron } from 'croner';
import type { Replica, Spec } from '../config/spec.js';
import { formatDuration } from '../config/units.js';
import type { Observed, ObservedReplica } from '../observe/observe.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';
import { selectFilesystems, type Selection } from '../snapshot/select.js';

export type ActionKind = 'sync' | 'none' | 'blocked';

export interface PlannedAction {
  readonly replica: string;
  readonly kind: ActionKind;
  /** Why, in the user's words; the first reason is the main one. */
  readonly reasons: readonly string[];
  /** For sync: what would be copied and how. */
  readonly filesystems?: readonly { readonly mountPoint: string; readonly fsType: string; readonly provider: string }[];
  readonly skipped?: readonly { readonly mountPoint: string; readonly reason: string }[];
  /** What the target held when planned, so a saved plan can tell that the world moved. */
  readonly observedRunId?: string;
  readonly specHash: string;
}

export interface Plan {
  readonly createdAt: string;
  readonly actions: readonly PlannedAction[];
}

export function hasChanges(plan: Plan): boolean {
  return plan.actions.some((a) => a.kind === 'sync');
}

/** Decides what each replica needs. Pure: the same spec, observations and time give the same plan. */
export interface PlanOptions {
  /** Replicas to sync now whatever their schedule (`--sync-now`); empty set: none. */
  readonly syncNow?: ReadonlySet<string> | 'all';
}

export function makePlan(spec: Spec, observed: Observed, now: Date, opts: PlanOptions = {}): Plan {
  const forced = (name: string): boolean => opts.syncNow === 'all' || (opts.syncNow?.has(name) ?? false);
  return {
    createdAt: now.toISOString(),
    actions: spec.replicas.map((r) => planReplica(r, observed.replicas.get(r.name), now, forced(r.name))),
  };
}

function planReplica(replica: Replica, seen: ObservedReplica | undefined, now: Date, forced: boolean): PlannedAction {
  const base = { replica: replica.name, specHash: replica.specHash };
  if (replica.suspend) return { ...base, kind: 'none', reasons: ['suspended (spec.suspend: true)'] };
  if (!seen) return { ...base, kind: 'blocked', reasons: ['not observed'] };
  if ('error' in seen.target) return { ...base, kind: 'blocked', reasons: [`target ${replica.target.endpoint.name}: ${seen.target.error}`] };
  const record = seen.target.record;
  const observedRunId = record?.runId;
  const withRun = observedRunId ? { ...base, observedRunId } : base;

  const reasons = syncReasons(replica, record, now);
  if (forced && reasons.length === 0) reasons.push('sync requested (--sync-now)');
  if (reasons.length === 0) return { ...withRun, kind: 'none', reasons: [upToDate(replica, record!, now)] };

  if ('error' in seen.origin) return { ...withRun, kind: 'blocked', reasons: [`origin ${replica.origin.name}: ${seen.origin.error}`, ...reasons] };
  let selection: Selection;
  try {
    selection = selectFilesystems(seen.origin.facts, replica.origin.root, replica.exclude, replica.policy.snapshot, replica.origin.name);
  } catch (err) {
    return { ...withRun, kind: 'blocked', reasons: [(err as Error).message, ...reasons] };
  }
  if (!seen.origin.facts.tools.rsync) {
    if (!replica.policy.autoInstallPackages)
      return { ...withRun, kind: 'blocked', reasons: [`origin ${replica.origin.name} has no rsync (install it, or set policy autoInstallPackages: true)`, ...reasons] };
    reasons.push(`rsync will be installed on origin ${replica.origin.name} (autoInstallPackages)`);
  }
  return {
    ...withRun,
    kind: 'sync',
    reasons,
    filesystems: selection.units.map((u) => ({ mountPoint: u.fs.mountPoint, fsType: u.fs.fsType, provider: u.provider })),
    skipped: selection.excluded.map((e) => ({ mountPoint: e.fs.mountPoint, reason: e.reason })),
  };
}

export function currentPoint(record: ReplicaRecord | undefined): RecoveryPoint | undefined {
  return record?.points[record.points.length - 1];
}

/**
 * Since when the point is known to equal the origin: the start of the sync that copied it, or of
 * a later one that verified it. Schedules, RPO and ages count from here.
 */
export function currentAsOf(point: RecoveryPoint): string {
  return point.verifiedAt !== undefined && point.verifiedAt > point.startedAt ? point.verifiedAt : point.startedAt;
}

function syncReasons(replica: Replica, record: ReplicaRecord | undefined, now: Date): string[] {
  const current = currentPoint(record);
  if (!record || !current) {
    if (record?.state === 'in-progress') return [`initial sync: the first sync (run ${record.runId}) did not finish`];
    return ['initial sync: the target holds no consistent copy'];
  }
  const reasons: string[] = [];
  if (record.state === 'in-progress') reasons.push(`the last sync (run ${record.runId}) did not finish`);
  if (record.state === 'failed') reasons.push(`the last sync failed${record.error ? `: ${record.error}` : ''}`);
  if (current.specHash !== replica.specHash) reasons.push(`the spec changed since the last sync (generation ${current.specHash} -> ${replica.specHash})`);
  const due = scheduleDue(replica, current, now);
  if (due) reasons.push(due);
  const rpo = replica.policy.rpoMs;
  const age = now.getTime() - Date.parse(currentAsOf(current));
  if (rpo !== undefined && age > rpo) reasons.push(`RPO ${formatDuration(rpo)} exceeded by ${formatDuration(age - rpo)}`);
  return reasons;
}

function scheduleDue(replica: Replica, current: RecoveryPoint, now: Date): string | undefined {
  const schedule = replica.policy.schedule;
  if (!schedule) return undefined;
  const asOf = currentAsOf(current);
  const last = new Date(asOf);
  if (schedule.kind === 'interval') {
    const elapsed = now.getTime() - last.getTime();
    return elapsed >= schedule.intervalMs ? `schedule: ${formatDuration(schedule.intervalMs)} since the last sync at ${asOf}` : undefined;
  }
  const next = new Cron(schedule.cron, { paused: true, timezone: schedule.timezone }).nextRun(last);
  return next && next <= now ? `schedule: cron '${schedule.cron}' was due at ${next.toISOString()}` : undefined;
}

function upToDate(replica: Replica, record: ReplicaRecord, now: Date): string {
  const current = currentPoint(record)!;
  const asOf = currentAsOf(current);
  const age = formatDuration(now.getTime() - Date.parse(asOf));
  const schedule = replica.policy.schedule;
  const next =
    schedule === undefined
      ? 'no schedule'
      : schedule.kind === 'interval'
        ? `next at ${new Date(Date.parse(asOf) + schedule.intervalMs).toISOString()}`
        : `next at ${new Cron(schedule.cron, { paused: true, timezone: schedule.timezone }).nextRun(new Date(asOf))?.toISOString() ?? 'never'}`;
  const since = asOf === current.startedAt ? `is ${age} old` : `was verified ${age} ago`;
  return `up to date: recovery point ${current.id} ${since} (${next})`;
}
