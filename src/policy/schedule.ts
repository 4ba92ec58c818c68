import { Cron } from 'croner';
import type { Replica } from '../config/spec.js';
import { formatDuration } from '../config/units.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';

/** The replica's last consistent recovery point: the one `current` points at. */
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

/** When the schedule next makes the replica due after its current point; undefined without a schedule. */
export function nextDueAt(replica: Replica, current: RecoveryPoint): Date | undefined {
  const schedule = replica.policy.schedule;
  if (!schedule) return undefined;
  const last = new Date(currentAsOf(current));
  if (schedule.kind === 'interval') return new Date(last.getTime() + schedule.intervalMs);
  return new Cron(schedule.cron, { paused: true, timezone: schedule.timezone }).nextRun(last) ?? undefined;
}

/**
 * When a loop (rmm watch) should look at the replica again after its current point: when its
 * schedule next comes, and no later than its RPO allows: just past the RPO with a schedule (apply
 * then syncs it as late), at half the RPO without one (when apply syncs it, see syncReasons).
 * Undefined when neither says: the loop then looks now and then.
 */
export function nextLookAt(replica: Replica, current: RecoveryPoint): Date | undefined {
  const next = nextDueAt(replica, current);
  const rpo = replica.policy.rpoMs;
  if (rpo === undefined) return next;
  const asOf = Date.parse(currentAsOf(current));
  const byRpo = new Date(replica.policy.schedule ? asOf + rpo + 1000 : asOf + rpo / 2);
  return next && next < byRpo ? next : byRpo;
}

/** Why the replica needs a sync now; empty when it does not. `next` is nextDueAt's answer, when the caller has it. */
export function syncReasons(replica: Replica, record: ReplicaRecord | undefined, now: Date, next = nextDue(replica, record)): string[] {
  const current = currentPoint(record);
  if (!record || !current) {
    if (record?.state === 'in-progress') return [`initial sync: the first sync (run ${record.runId}) did not finish`];
    if (record?.state === 'interrupted') return [`initial sync: the first sync (run ${record.runId}) was interrupted`];
    return ['initial sync: the target holds no consistent copy'];
  }
  const reasons: string[] = [];
  if (record.state === 'in-progress') reasons.push(`the last sync (run ${record.runId}) did not finish`);
  if (record.state === 'failed') reasons.push(`the last sync failed${record.error ? `: ${record.error}` : ''}`);
  if (record.state === 'interrupted') reasons.push(`the last sync (run ${record.runId}) was interrupted`);
  // Disks on logical volumes go back to their last point when a sync fails: consistent, and still behind.
  if (record.state === 'consistent' && record.error) reasons.push(`the last sync failed: ${record.error}`);
  if (current.specHash !== replica.specHash) reasons.push(`the spec changed since the last sync (generation ${current.specHash} -> ${replica.specHash})`);
  const due = scheduleDue(replica, current, now, next);
  if (due) reasons.push(due);
  const rpo = replica.policy.rpoMs;
  const age = now.getTime() - Date.parse(currentAsOf(current));
  if (rpo !== undefined && age > rpo) reasons.push(`RPO ${formatDuration(rpo)} exceeded by ${formatDuration(age - rpo)}`);
  // With no schedule, the RPO alone says when: synced at half of it, so that it is kept.
  else if (rpo !== undefined && !replica.policy.schedule && age > rpo / 2) reasons.push(`RPO ${formatDuration(rpo)}: the copy is ${formatDuration(age)} old, past half of it (with no schedule, rmm syncs at half the RPO)`);
  return reasons;
}

function nextDue(replica: Replica, record: ReplicaRecord | undefined): Date | undefined {
  const current = currentPoint(record);
  return current ? nextDueAt(replica, current) : undefined;
}

function scheduleDue(replica: Replica, current: RecoveryPoint, now: Date, next: Date | undefined): string | undefined {
  const schedule = replica.policy.schedule;
  if (!schedule || !next || next > now) return undefined;
  return schedule.kind === 'interval'
    ? `schedule: ${formatDuration(schedule.intervalMs)} since the last sync at ${currentAsOf(current)}`
    : `schedule: cron '${schedule.cron}' was due at ${next.toISOString()}`;
}

export function upToDate(replica: Replica, current: RecoveryPoint, now: Date, next = nextDueAt(replica, current)): string {
  const asOf = currentAsOf(current);
  const age = formatDuration(now.getTime() - Date.parse(asOf));
  const when = replica.policy.schedule === undefined ? 'no schedule' : `next at ${next?.toISOString() ?? 'never'}`;
  const since = asOf === current.startedAt ? `is ${age} old` : `was verified ${age} ago`;
  return `up to date: recovery point ${current.id} ${since} (${when})`;
}

/** The replica's age against its RPO, for status: undefined age when it holds no consistent point. */
export function rpoStanding(replica: Replica, record: ReplicaRecord | undefined, now: Date): { ageMs?: number; withinRpo: boolean } {
  const point = currentPoint(record);
  if (!point) return { withinRpo: false };
  const ageMs = now.getTime() - Date.parse(currentAsOf(point));
  return { ageMs, withinRpo: replica.policy.rpoMs === undefined || ageMs <= replica.policy.rpoMs };
}
