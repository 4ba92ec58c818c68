import type { Replica, Spec } from '../config/spec.js';
import type { OriginFacts } from '../observe/facts.js';
import type { Observed, ObservedReplica } from '../observe/observe.js';
import type { TargetObservation } from '../target/driver.js';
import type { LandingVolume } from '../target/disks/volumes.js';
import { currentPoint, nextDueAt, syncReasons, upToDate } from '../policy/schedule.js';
import { retain } from '../policy/retention.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';
import { mountsBelow, selectFilesystems, type CopyUnit, type Selection } from '../snapshot/select.js';
import { reanchorAll } from '../sync/rsync.js';
import type { DisksPlan, Plan, PlannedAction, PlannedFixups, PlannedInstall, PlannedUnit, SyncPlan } from './action.js';
import { fixupInputsOf, fixupsHash, wantsFixups, wantsRefixup } from '../fixup/inputs.js';
import { runFixups, textDigest } from '../fixup/run.js';
import type { ConfigFiles } from '../observe/config-files.js';
import { applyInputs, InputsCache, withInputsHash, type ScriptDigests } from './inputs.js';
import { missingTools, toolsNeeded } from './tools.js';
import { directorySyncSteps, disksSyncSteps } from './steps.js';
import { disksPaths, planDisks, type DisksPlanned } from './disks.js';
import { privilegeProblems } from './privilege.js';
import { planRefixup } from './refixup.js';
import { disksHoldLastPoint, planRollback } from './disks-recovery.js';

export type { ActionKind, Plan, PlannedAction, PlannedStep, PlannedUnit, SyncPlan } from './action.js';
export { currentAsOf, currentPoint } from '../policy/schedule.js';

export function hasChanges(plan: Plan): boolean {
  return plan.actions.some((a) => a.kind === 'sync' || a.kind === 'fixup' || a.kind === 'rollback');
}

export interface PlanOptions {
  /** Replicas to sync now whatever their schedule (`--sync-now`); empty set: none. */
  readonly syncNow?: ReadonlySet<string> | 'all';
  /** Content hashes of the hook scripts, read by the caller. */
  readonly scripts?: ScriptDigests;
}

/** Decides what each replica needs. Pure: the same spec, observations and time give the same plan. */
export function makePlan(spec: Spec, observed: Observed, now: Date, opts: PlanOptions = {}): Plan {
  const forced = (name: string): boolean => opts.syncNow === 'all' || (opts.syncNow?.has(name) ?? false);
  const cache = new InputsCache(opts.scripts ?? new Map<string, string>());
  return {
    createdAt: now.toISOString(),
    actions: spec.replicas.map((r) => withInputsHash(planReplica(r, observed.replicas.get(r.name), now, forced(r.name), cache))),
  };
}

function planReplica(replica: Replica, seen: ObservedReplica | undefined, now: Date, forced: boolean, cache: InputsCache): Omit<PlannedAction, 'inputsHash'> {
  const facts = seen && 'facts' in seen.origin ? seen.origin.facts : undefined;
  const inputs = applyInputs(replica, facts, cache);
  const base = { replica: replica.name, specHash: replica.specHash, inputs };
  if (replica.suspend) return { ...base, kind: 'none', reasons: ['suspended (spec.suspend: true)'] };
  const privilege = privilegeProblems(replica);
  if (privilege.length > 0) return { ...base, kind: 'blocked', reasons: privilege };
  if (!seen) return { ...base, kind: 'blocked', reasons: ['not observed'] };
  if ('error' in seen.target) return { ...base, kind: 'blocked', reasons: [`target ${replica.target.endpoint.name}: ${seen.target.error}`] };
  const { record, tools: targetTools } = seen.target;
  const current = currentPoint(record);
  const due = current ? nextDueAt(replica, current) : undefined;
  const withRun = { ...base, ...(record?.runId ? { observedRunId: record.runId } : {}), ...(due ? { nextDueAt: due.toISOString() } : {}) };

  const stranger = foreignRecord(replica, record, facts);
  if (stranger) return { ...withRun, kind: 'blocked', reasons: [stranger] };
  const reasons = syncReasons(replica, record, now, due);
  const restore = unrecordedPromotion(record, seen.target);
  const moved = current && seen.target.current !== undefined && seen.target.current !== `points/${current.id}`;
  if (restore) reasons.push(`the last run was stopped after it promoted its copy to points/${restore.point} and before it recorded it: that copy becomes the copy in progress again`);
  else if (moved) reasons.push(`${seen.target.current === '' ? 'current is missing' : `current points to ${JSON.stringify(seen.target.current)}`}, not to the last recovery point points/${current.id}: copied again, not verified`);
  if (forced && reasons.length === 0) reasons.push('sync requested (--sync-now)');
  const disks = replica.environment.targetKind === 'disks';
  if (reasons.length === 0) {
    const adapted = wantsRefixup(replica, record);
    if (!adapted) return { ...withRun, kind: 'none', reasons: [upToDate(replica, current!, now, due)] };
    const rerun = planRefixup(replica, record!, adapted, seen.target.pointConfig, seen.target.layout, seen.target.volumes);
    const why = adapted.fixups?.rewriting ? `a re-run of the fixups on recovery point ${adapted.id} did not finish` : `the fixup settings (ipRemap, fixups) changed since recovery point ${adapted.id} was adapted`;
    if (!('unavailable' in rerun)) {
      const left = rerun.left.length > 0 ? [`fixups leave ${rerun.left.length} file(s) as they are: ${rerun.left.map((l) => `${l.path} (${l.why})`).join('; ')}`] : [];
      return { ...withRun, kind: 'fixup', reasons: [`${why}: re-run on it, nothing is copied`, ...left], fixup: rerun };
    }
    reasons.push(`${why}, and ${rerun.unavailable}: copied again`);
  }

  const rollback = !facts && disks ? planRollback(replica, record, seen.target.volumes ?? []) : undefined;
  if (rollback) {
    const cause = 'error' in seen.origin ? seen.origin.error : 'not observed';
    const why = `the last sync did not finish and origin ${replica.origin.name} cannot be reached (${cause}): the landing volumes go back to recovery point ${rollback.point} from their snapshots, with nothing copied`;
    return { ...withRun, kind: 'rollback', reasons: [why, ...reasons], rollback };
  }
  if (!facts) return { ...withRun, kind: 'blocked', reasons: [`origin ${replica.origin.name}: ${'error' in seen.origin ? seen.origin.error : 'not observed'}`, ...reasons] };
  let selection: Selection;
  try {
    selection = selectFilesystems(facts, replica.origin.root, replica.exclude, replica.policy.snapshot, replica.origin.name);
  } catch (err) {
    return { ...withRun, kind: 'blocked', reasons: [(err as Error).message, ...reasons] };
  }
  const installs: PlannedInstall[] = [];
  const missing = (on: 'origin' | 'target', host: string, present: boolean | undefined): string | undefined => {
    if (present !== false) return undefined;
    if (!replica.policy.autoInstallPackages) return `${on} ${host} has no rsync (install it, or set policy autoInstallPackages: true)`;
    installs.push({ on, host: on === 'origin' ? replica.origin.endpoint.address : replica.target.endpoint.address, package: 'rsync' });
    reasons.push(`rsync will be installed on ${on} ${host} (autoInstallPackages)`);
    return undefined;
  };
  const blockedBy = missing('origin', replica.origin.name, facts.tools.rsync) ?? missing('target', replica.target.endpoint.name, targetTools.rsync);
  if (blockedBy) return { ...withRun, kind: 'blocked', reasons: [blockedBy, ...reasons] };

  let landing: DisksPlanned | undefined;
  if (disks) {
    const originLayout = 'facts' in seen.origin ? seen.origin.layout : undefined;
    if (!originLayout || !seen.target.layout) return { ...withRun, kind: 'blocked', reasons: [`the disk layout of the ${originLayout ? `landing host ${replica.target.endpoint.name}` : `origin ${replica.origin.name}`} was not read`, ...reasons] };
    const planned = planDisks(replica, facts, selection.units, originLayout, seen.target.layout, seen.target.volumes, record);
    if ('blocked' in planned) return { ...withRun, kind: 'blocked', reasons: [planned.blocked, ...reasons] };
    landing = planned;
    for (const v of planned.plan.volumes ?? []) reasons.push(`landing volume ${v.path} is written as ${v.loop}, the loop device it is attached as (its partitions ${v.loop}p1…)`);
    reasons.push(planned.plan.rollback);
  } else {
    const room = roomFor(replica, selection, seen.target, current);
    if (room?.blocks) return { ...withRun, kind: 'blocked', reasons: [room.message, ...reasons] };
    if (room) reasons.push(room.message);
  }
  const fixups = wantsFixups(replica) ? plannedFixups(replica, facts, 'facts' in seen.origin ? seen.origin.configFiles : undefined, landing?.devices) : undefined;
  if (fixups && 'blocked' in fixups) return { ...withRun, kind: 'blocked', reasons: [fixups.blocked, ...reasons] };
  if (fixups && fixups.left.length > 0) reasons.push(`fixups leave ${fixups.left.length} file(s) as they are: ${fixups.left.map((l) => `${l.path} (${l.why})`).join('; ')}`);
  const sync = syncPlan(replica, facts, selection, record, installs, now, disks ? orphanSnapshots(record, seen.target.volumes ?? []) : (seen.target.leftoverPoints ?? []), Boolean(moved), restore, fixups, landing?.plan, seen.target.snapshotPoints);
  const needed = toolsNeeded(sync.units, landing?.plan);
  const lacking = [missingTools('origin', replica.origin.name, needed.origin, facts.tools), missingTools('target', replica.target.endpoint.name, needed.target, targetTools)].filter((r) => r !== undefined);
  if (lacking.length > 0) return { ...withRun, kind: 'blocked', reasons: [...lacking, ...reasons] };
  return {
    ...withRun,
    kind: 'sync',
    reasons,
    filesystems: sync.units.map((u) => ({ mountPoint: u.fs.mountPoint, fsType: u.fs.fsType, provider: u.provider })),
    skipped: selection.excluded.map((e) => ({ mountPoint: e.fs.mountPoint, reason: e.reason })),
    sync,
  };
}

function syncPlan(
  replica: Replica,
  facts: OriginFacts,
  selection: Selection,
  record: ReplicaRecord | undefined,
  installs: PlannedInstall[],
  now: Date,
  leftovers: readonly string[],
  currentMoved: boolean,
  restore: SyncPlan['restore'],
  fixups: PlannedFixups | undefined,
  disks: DisksPlan | undefined,
  /** Point folders on the target that are btrfs subvolumes. */
  snapshotPoints: readonly string[] = [],
): SyncPlan {
  const last = currentPoint(record);
  const units = selection.units.map((u) => plannedUnit(replica, u, facts, last));
  // A point whose fixups are not the spec's current ones is not the copy the spec asks for.
  // Disks a sync was cut in hold no point whatever the record's list of points (kept in snapshots) says.
  const landingAsLast = !disks || disksHoldLastPoint(record);
  const mayVerify = landingAsLast && last?.manifests !== undefined && last.specHash === replica.specHash && !currentMoved && last.fixups?.hash === fixups?.hash && last.fixups?.rewriting === undefined;
  const recorded = record?.points ?? [];
  // Disks keep older points only in snapshots of their landing volumes: the last one stays a point only if this sync snapshots it.
  const points = disks && !disks.keep ? recorded.slice(0, -1) : recorded;
  // The new point's id is made at apply; any id newer than the others stands for it here.
  const next: RecoveryPoint = { id: '(new)', specHash: replica.specHash, startedAt: now.toISOString(), snapshots: {}, pointInTime: true };
  const prune = {
    ifCopied: [...retain([...points, next], replica.policy.retention, now).dropped.map((p) => p.id), ...leftovers],
    ifUnchanged: mayVerify ? [...retain(recorded, replica.policy.retention, now).dropped.map((p) => p.id), ...leftovers] : [],
  };
  const stepFacts = { replica, units, installs, basePoint: last?.id, baseIsSnapshot: last !== undefined && snapshotPoints.includes(last.id), mayVerify, prune, observedRunId: record?.runId, ...(restore ? { restore } : {}), ...(fixups ? { fixups } : {}) };
  return {
    origin: { name: replica.origin.name, address: replica.origin.endpoint.address, hostname: facts.hostname, machineId: facts.machineId },
    target: disks ? { kind: 'disks', address: replica.target.endpoint.address, record: disksPaths(replica.name).record } : { kind: 'directory', address: replica.target.endpoint.address, path: replica.target.path! },
    transfer: replica.environment.transfer,
    units,
    installs,
    ...(last ? { basePoint: last.id } : {}),
    mayVerify,
    ...(restore ? { restore } : {}),
    ...(fixups ? { fixups } : {}),
    ...(disks ? { disks } : {}),
    prune,
    steps: disks ? disksSyncSteps({ ...stepFacts, disks }) : directorySyncSteps(stepFacts),
  };
}

/** Points of which a landing volume holds a snapshot of this replica's that the record does not name (a run stopped halfway made it): the next prune removes them. */
function orphanSnapshots(record: ReplicaRecord | undefined, volumes: readonly LandingVolume[]): string[] {
  const named = new Set(record?.points.map((p) => p.id));
  return [...new Set(volumes.flatMap((v) => v.snapshots.map((s) => s.point)))].filter((p) => !named.has(p)).sort();
}

/**
 * Whether a first copy fits on the target: the space the copied filesystems use on the origin
 * against the free space where the replica goes. Only a first copy into nothing is known well
 * enough to refuse, and only where the figure is the data's: exclude.paths leave some out, and a
 * btrfs filesystem's used space is the whole filesystem's (every subvolume, snapshots included,
 * counted again for each mounted subvolume), so there it only warns.
 */
function roomFor(replica: Replica, selection: Selection, target: TargetObservation, current: RecoveryPoint | undefined): { message: string; blocks: boolean } | undefined {
  if (current || target.partial || target.freeBytes === undefined) return undefined;
  const needed = selection.units.reduce((sum, u) => sum + u.fs.usedBytes, 0);
  if (needed <= target.freeBytes) return undefined;
  const figures = `the first copy needs about ${gib(needed)} (used on the origin's copied filesystems), ${replica.target.endpoint.name} has ${gib(target.freeBytes)} free for ${replica.target.path}`;
  const excluding = selection.units.some((u) => reanchorAll(replica.exclude.paths, u.relativePath).length > 0);
  const btrfs = selection.units.some((u) => u.fs.fsType === 'btrfs');
  if (excluding || btrfs) return { message: `may not fit: ${figures}${excluding ? ', less what exclude.paths leaves out' : ''}${btrfs ? ', where btrfs counts its whole filesystem' : ''}`, blocks: false };
  return { message: `the target is too small: ${figures}; free space there or choose another path`, blocks: true };
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * A record that is not this replica's: another replica's, or a copy of another server (another
 * machine-id). Syncing over it would take it over and prune its points; an operator decides.
 */
function foreignRecord(replica: Replica, record: ReplicaRecord | undefined, facts: OriginFacts | undefined): string | undefined {
  if (!record) return undefined;
  const where = `${replica.target.endpoint.name}:${replica.target.path ?? disksPaths(replica.name).record}`;
  if (record.replica !== replica.name) return `the record at ${where} belongs to replica ${JSON.stringify(record.replica)}, not ${replica.name}: point the replica at its own folder, or move that record away`;
  const id = record.origin.machineId;
  // Both differ: an image that makes a new machine-id at each boot keeps its hostname.
  if (facts && id && facts.machineId && id !== facts.machineId && record.origin.hostname !== facts.hostname && record.points.length > 0) {
    return `the target holds a copy of another server (machine-id ${id}, origin ${replica.origin.name} has ${facts.machineId}); if the origin was reinstalled, move ${where} away to start a new replica`;
  }
  return undefined;
}

function plannedUnit(replica: Replica, unit: CopyUnit, facts: OriginFacts, last: RecoveryPoint | undefined): PlannedUnit {
  const excludePaths = reanchorAll(replica.exclude.paths, unit.relativePath);
  const limited = replica.policy.bandwidthBytesPerSecond !== undefined;
  const live = unit.provider === 'none';
  // tar cannot apply rsync's exclusion patterns nor its bandwidth limit: such copies go by rsync alone.
  const method: PlannedUnit['method'] =
    !last && !live && excludePaths.length === 0 && !limited
      ? { kind: 'tar' }
      : { kind: 'rsync', why: last || replica.policy.parallelStreams <= 1 ? '' : excludePaths.length > 0 ? 'exclude.paths applies to it' : live ? 'it is copied live' : 'the policy limits its bandwidth' };
  return { ...unit, innerMounts: outermost(mountsBelow(facts.mountPoints, unit.fs.mountPoint)), excludePaths, method };
}

/**
 * Mount points not inside another one of the list: the walk of a filesystem stops at the first
 * (find -xdev), so what is mounted below it (a login's /run/user/1000 below /run) never matters.
 */
function outermost(mounts: readonly string[]): string[] {
  return mounts.filter((m) => !mounts.some((other) => other !== m && m.startsWith(`${other}/`)));
}

/**
 * A copy promoted by a run that was killed before it wrote its record: `current` names the record's
 * pending point, which the record does not hold as consistent. Promote and record are two atomic
 * steps; nothing can make them one, so the next sync puts the copy back instead.
 */
function unrecordedPromotion(record: ReplicaRecord | undefined, target: TargetObservation): SyncPlan['restore'] {
  const pending = record?.pending;
  if (!pending || record.points.some((p) => p.id === pending.id)) return undefined;
  // Killed inside promote, after the copy became points/ID and before current moved to it: the same.
  const promoted = target.current === `points/${pending.id}` || (target.pointFolders?.includes(pending.id) === true && target.partial === false);
  if (!promoted) return undefined;
  const last = record.points.at(-1);
  return { point: pending.id, ...(last ? { current: last.id } : {}) };
}

/**
 * What the fixups will make of the origin's files, as the plan shows it: each file that changes with
 * its diff and the hash of the text it was computed from, and each file left alone with why.
 */
function plannedFixups(replica: Replica, facts: OriginFacts, observed: ConfigFiles | undefined, devices?: ReadonlyMap<string, string>): PlannedFixups | { blocked: string } {
  if (!observed) return { blocked: `origin ${replica.origin.name}: its configuration files were not read, so the fixups cannot be planned` };
  const byPath = new Map(observed.files.map((f) => [f.path, f.text]));
  const files: PlannedFixups['files'][number][] = [];
  const left: { path: string; why: string }[] = observed.refused.map((r) => ({ path: r.path, why: r.why }));
  for (const outcome of runFixups(observed.files, fixupInputsOf(replica, { originHostname: facts.hostname, ...(devices ? { devices } : {}) }))) {
    const before = textDigest(byPath.get(outcome.path) ?? '');
    if (outcome.status === 'changed') files.push({ path: outcome.path, before, text: outcome.text, diff: outcome.diff, ...(outcome.renamedTo ? { renamedTo: outcome.renamedTo } : {}) });
    else if (outcome.status === 'renamed') files.push({ path: outcome.path, before, renamedTo: outcome.renamedTo, diff: outcome.diff });
    else if (outcome.status === 'unparsable') left.push({ path: outcome.path, why: `${outcome.problem}${outcome.line !== undefined ? ` (line ${outcome.line})` : ''}` });
  }
  return { hash: fixupsHash(replica), files, left };
}
