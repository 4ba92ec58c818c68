import type { HookPhase, Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import { runHooks } from '../hooks/run.js';
import { ensureRsync } from '../observe/packages.js';
import type { DisksPlan, PlannedAction, PlannedStep, PlannedUnit, SyncPlan } from '../plan/action.js';
import { fixupEntry, type RecoveryPoint, type ReplicaRecord } from '../record/record.js';
import { SnapshotError } from '../snapshot/errors.js';
import { cleanLeftoverSnapshots, snapshotName, takeSnapshot, type SnapshotView } from '../snapshot/take.js';
import { mountsBelow } from '../snapshot/select.js';
import type { PushChannel } from '../sync/channel.js';
import { copyFilesystem } from '../sync/copy.js';
import { gunzipListing, listingHash } from '../sync/delta.js';
import { listView, scanManifests, type ManifestScan } from '../sync/manifest.js';
import { CopyMeter } from '../sync/progress.js';
import { addStats, rsyncAtLeast, ZERO_STATS, type RsyncStats } from '../sync/rsync.js';
import { targetDriver, type TargetDriver } from '../target/index.js';
import { DirectoryTarget } from '../target/directory/driver.js';
import { ChangesSincePoint } from './delta-copy.js';
import { disksDriver, type DisksTarget } from '../target/disks/driver.js';
import type { RemoteHost } from '../transport/index.js';
import type { EventSink } from './events.js';
import { originKernels } from './kernels.js';
import { adaptedPath, keptPaths, readOriginTexts, rewrittenIn } from './kept-fixups.js';
import { lockReplica, type ReplicaLock } from './lock.js';
import { InterruptedError, InterruptibleHost, interruptibleStep } from './interrupt.js';
import { runSteps, type Step, type StepOutcome, type StepScope } from './runner.js';

export interface SyncContext {
  readonly origin: RemoteHost;
  readonly target: RemoteHost;
  readonly runId: string;
  /** Who holds the lock, as other runs are told. */
  readonly holder: string;
  readonly emit: EventSink;
  /** Opens the path the copy takes from origin to target: direct, or through rmm for relay. */
  readonly openChannel: (origin: RemoteHost, target: RemoteHost) => Promise<PushChannel>;
  /** Removes every one-run key of the replica from the target and its work files from the origin. */
  readonly revokeAccess: () => Promise<void>;
  /** Aborted when the operator stops rmm: the running step ends, and the undos run. */
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

/** What a sync did: copied a new recovery point, or verified that the last one still equals the origin. */
export interface SyncOutcome {
  readonly point: RecoveryPoint;
  readonly copied: boolean;
}

/** The target changed between the plan and the lock: another run synced it, or someone edited its record. */
export class TargetMovedError extends RmmError {
  constructor(readonly facts: { replica: string; host: string; planned: string; found: string }) {
    super('replica.moved', `the target changed since the plan (last run ${facts.planned} -> ${facts.found}); nothing was written, plan again`);
  }
}

/**
 * One sync of one replica, exactly as its plan's action says: each planned step in order, through
 * the step runner, which stops at the first failure and undoes what was acquired. A failure
 * anywhere leaves the last consistent point and `current` as they were, and the record not
 * consistent for the new point.
 */
export async function runSync(replica: Replica, action: PlannedAction, ctx: SyncContext): Promise<SyncOutcome> {
  const plan = action.sync;
  if (action.kind !== 'sync' || !plan) throw new RmmError('apply.not_a_sync', `replica ${replica.name}: the plan has no sync for it`);
  const hosts = ctx.signal ? [new InterruptibleHost(ctx.origin, ctx.signal), new InterruptibleHost(ctx.target, ctx.signal)] : [];
  const sync = new Sync(replica, action, plan, hosts.length > 0 ? { ...ctx, origin: hosts[0]!, target: hosts[1]! } : ctx);
  const steps = plan.steps.map((s) => interruptibleStep(sync.step(s), hosts));
  const { unchanged } = await runSteps(steps, (e) => ctx.emit({ type: 'step', replica: replica.name, ...e }), ctx.signal);
  return sync.outcome(unchanged);
}

/** The state one sync carries from step to step. */
class Sync {
  readonly #driver: TargetDriver;
  readonly #now: () => Date;
  #lock: ReplicaLock | undefined;
  #previous: ReplicaRecord | undefined;
  #started!: { at: string; id: string };
  #committed = false;
  readonly #views = new Map<string, SnapshotView>();
  #channel: Promise<PushChannel> | undefined;
  #prepared = false;
  /** The view listings the compare step kept on the origin, with their hashes, by mount point. */
  readonly #listings = new Map<string, { file: string; hash: string }>();
  #stats: RsyncStats = ZERO_STATS;
  readonly #manifests = new Map<string, string | undefined>();
  #result: SyncOutcome | undefined;
  #unchanged = false;
  /** Origin texts of the adapted files this sync kept out of its copy (disks), by path. */
  readonly #kept = new Map<string, string>();
  /** Filesystems copied live (provider none): their manifest when the snapshots were taken. */
  readonly #liveAtSnapshot = new Map<string, string | undefined>();
  /** Those of them that had not changed when their copy ended: a point in time after all. */
  readonly #stillAtSnapshot = new Set<string>();
  /** The kernels the origin has, read beside the copy of its /boot (disks): the bootloader step removes the others. */
  #originKernels: readonly string[] = [];
  /** The point a failed sync merged the landing volumes back to (disks on logical volumes). */
  #rolledBack: string | undefined;
  /** The comparison with the last point's listings (directory targets; null for others). */
  #since: ChangesSincePoint | null | undefined;
  #inPlaceOk: Promise<boolean> | undefined;

  constructor(
    private readonly replica: Replica,
    private readonly action: PlannedAction,
    private readonly plan: SyncPlan,
    private readonly ctx: SyncContext,
  ) {
    this.#driver = targetDriver(replica, ctx.target);
    this.#now = ctx.now ?? (() => new Date());
  }

  outcome(unchanged: boolean): SyncOutcome {
    if (!this.#result) throw new RmmError('apply.incomplete', `replica ${this.replica.name}: the sync ended without recording a point (unchanged: ${unchanged})`);
    return this.#result;
  }

  /** The implementation of one planned step. A kind apply does not know is refused, never guessed. */
  step(planned: PlannedStep): Step {
    const { origin, target } = this.ctx;
    const on = (host: RemoteHost) => host.info.host;
    const where = planned.on === 'origin' ? on(origin) : planned.on === 'target' ? on(target) : planned.on === 'local' ? 'the rmm host' : `${on(origin)} -> ${on(target)}`;
    const make = (run: (scope: StepScope) => Promise<StepOutcome>): Step => ({ planned, host: where, run });
    const unit = (): PlannedUnit => {
      const mountPoint = planned.id.slice(planned.kind.length + 1);
      const found = this.plan.units.find((u) => u.fs.mountPoint === mountPoint);
      if (!found) throw new RmmError('apply.bad_plan', `step ${planned.id}: the plan has no filesystem ${mountPoint}`);
      return found;
    };
    switch (planned.kind) {
      case 'lock':
        return make((scope) => this.lock(scope));
      case 'check':
        return make(() => this.check());
      case 'restore':
        return make(() => this.restore());
      case 'fixup':
        return make(() => this.fixup());
      case 'install':
        return make(() => this.install(planned.on === 'target' ? target : origin));
      case 'record-start':
        return make((scope) => this.recordStart(scope));
      case 'clean':
        return make(() => this.clean());
      case 'hooks':
        return make(() => this.hooks(planned.id.slice('hooks '.length) as HookPhase));
      case 'snapshot':
        return make((scope) => this.snapshot(unit(), scope));
      case 'compare':
        return make((scope) => this.compare(scope));
      case 'channel':
        return make((scope) => this.openChannel(scope));
      case 'copy':
        return make(() => this.copy(unit()));
      case 'release':
        return make(() => this.release(unit()));
      case 'revoke':
        return make(() => this.revoke());
      case 'promote':
        return make((scope) => this.promote(scope));
      case 'record':
        return make(() => this.record());
      case 'prune':
        return make(() => this.prune());
      case 'layout':
        return make(() => this.layout(planned.id.slice('layout '.length)));
      case 'landing-snapshot':
        return make((scope) => this.keepLanding(scope));
      case 'mount':
        return make((scope) => this.mount(scope));
      case 'bootloader':
        return make(() => this.bootloader());
      case 'initramfs':
        return make(async () => {
          if (!(await this.disks().initramfs(this.disksPlan()))) this.note('initramfs', 'the initramfs is made of what the last sync made it of: kept, not rebuilt');
        });
      case 'unmount':
        return make(() => this.disks().unmount(this.disksPlan().mountRoot));
      case 'unlock':
        return make(async () => this.#lock?.release());
      default:
        throw new RmmError('apply.bad_plan', `replica ${this.name}: the plan has a step this rmm does not know: ${JSON.stringify((planned as PlannedStep).id)}`);
    }
  }

  private get name(): string {
    return this.replica.name;
  }

  private disks(): DisksTarget {
    return disksDriver(this.#driver, this.name);
  }

  private disksPlan(): DisksPlan {
    if (!this.plan.disks) throw new RmmError('apply.bad_plan', `replica ${this.name}: the plan has no disks`);
    return this.plan.disks;
  }

  /** One command of the landing disks' layout, as the plan showed it. */
  private async layout(id: string): Promise<void> {
    const step = this.disksPlan().layout.find((s) => s.id === id);
    if (!step) throw new RmmError('apply.bad_plan', `step layout ${id}: the plan has no such layout step`);
    await this.disks().layout(step);
  }

  private async bootloader(): Promise<void> {
    const removed = await this.disks().bootloader(this.disksPlan(), this.#originKernels);
    if (removed.length > 0) this.note('bootloader', `kernel(s) the origin no longer has removed from the replica: ${removed.join(', ')}`);
  }

  /**
   * The landing volumes' snapshot of the last point, before anything is written. A failure after it
   * merges it back (the mounts are undone first): the disks are that point again, and consistent.
   */
  private async keepLanding(scope: StepScope): Promise<void> {
    const plan = this.disksPlan();
    const keep = plan.keep;
    const volumes = plan.volumes ?? [];
    if (!keep || volumes.length === 0) throw new RmmError('apply.bad_plan', `replica ${this.name}: a landing snapshot step with no volumes to snapshot`);
    if (!keep.reuse) {
      try {
        await this.disks().snapshotVolumes(keep.point, volumes);
      } catch (err) {
        // Some volumes may have one: a point needs all of them, and nothing was written yet.
        await this.disks().pruneSnapshots([keep.point], volumes).catch(() => undefined);
        throw err;
      }
    }
    scope.onUndo(async (failure) => {
      if (this.#committed || failure === undefined) return;
      await this.disks().rollbackVolumes(plan.mountRoot, keep.point, volumes);
      this.#rolledBack = keep.point;
    });
  }

  /** Mounted until the unmount step; on any failure unmounted too. */
  private async mount(scope: StepScope): Promise<void> {
    const plan = this.disksPlan();
    scope.onUndo(() => this.disks().unmount(plan.mountRoot));
    await this.disks().mount(plan.mountRoot, plan.mounts);
  }

  private note(step: string, text: string): void {
    this.ctx.emit({ type: 'note', replica: this.name, step, text });
  }

  private async lock(scope: StepScope): Promise<void> {
    this.#lock = await lockReplica(this.ctx.target, this.#driver.lockFile, this.name, this.ctx.holder, this.replica.target.endpoint.heartbeatTimeoutMs);
    scope.onUndo(async () => this.#lock?.release());
  }

  /** Under the lock, the target must still be as planned: the plan's steps were made from what it held then. */
  private async check(): Promise<void> {
    this.#previous = await this.#driver.readRecord();
    const found = this.#previous?.runId;
    if (found !== this.action.observedRunId) {
      throw new TargetMovedError({ replica: this.name, host: this.ctx.target.info.host, planned: this.action.observedRunId ?? 'none', found: found ?? 'none' });
    }
    if (this.plan.disks) await this.disks().assertLanding(this.plan.disks);
  }

  private async install(host: RemoteHost): Promise<void> {
    const result = await ensureRsync(host, true);
    this.note('install', `rsync on ${host.info.host}: ${result}`);
  }

  private base(): Omit<ReplicaRecord, 'state' | 'updatedAt'> {
    const o = this.plan.origin;
    return {
      schemaVersion: 1,
      replica: this.name,
      origin: { name: o.name, hostname: o.hostname, machineId: o.machineId },
      specHash: this.replica.specHash,
      runId: this.ctx.runId,
      // Disks are written over: from the sync's start the last point is only where a snapshot keeps it.
      points: this.plan.target.kind === 'disks' && !this.plan.disks?.keep ? (this.#previous?.points ?? []).slice(0, -1) : (this.#previous?.points ?? []),
    };
  }

  private pending(): RecoveryPoint {
    return { id: this.#started.id, specHash: this.replica.specHash, startedAt: this.#started.at, snapshots: {}, pointInTime: false };
  }

  private async recordStart(scope: StepScope): Promise<void> {
    const started = after(this.#now(), this.#previous?.points.at(-1));
    this.#started = { at: started.toISOString(), id: pointId(started) };
    scope.onUndo(async (failure) => {
      if (this.#committed || failure === undefined) return;
      // The point being written stays in .partial for the next run to resume; the last consistent one is untouched.
      const error = failure instanceof Error ? failure.message : String(failure);
      if (this.#rolledBack !== undefined) {
        const note = `${error}; the landing volumes were rolled back to recovery point ${this.#rolledBack}`;
        this.note('record-start', `the disks are recovery point ${this.#rolledBack} again: its snapshots were merged back`);
        const pointInTime = this.#previous?.points.find((p) => p.id === this.#rolledBack)?.pointInTime !== false;
        await this.#driver.writeRecord({ ...this.base(), state: pointInTime ? 'consistent' : 'inconsistent', updatedAt: this.#now().toISOString(), error: note });
        return;
      }
      const state = failure instanceof Error && failure.cause instanceof InterruptedError ? 'interrupted' : 'failed';
      await this.#driver.writeRecord({ ...this.base(), state, updatedAt: this.#now().toISOString(), pending: this.pending(), error });
    });
    await this.#driver.writeRecord({ ...this.base(), state: 'in-progress', updatedAt: this.#started.at, pending: this.pending() });
  }

  /** Rewrites the copy's files as the plan showed, before the copy becomes current. */
  private async fixup(): Promise<void> {
    const fixups = this.plan.fixups;
    if (!fixups) throw new RmmError('apply.bad_plan', 'step fixup: the plan has no fixups');
    await this.#driver.applyFixups(fixups.files, this.#kept);
    if (fixups.files.length > 0) this.note('fixup', `fixups rewrote ${fixups.files.length} file(s) of the copy`);
    // What a later fixup re-run starts from, without the origin (a changed ipRemap during a failover).
    if (this.plan.disks) await this.disks().keepAdapted(this.#started.id, this.plan.disks);
  }

  /** Puts back a copy a killed run promoted without recording it (the plan's `restore`). */
  private async restore(): Promise<void> {
    const restore = this.plan.restore;
    if (!restore) throw new RmmError('apply.bad_plan', 'step restore: the plan names no point to put back');
    const previous = this.#previous?.points.find((p) => p.id === restore.current);
    await this.#driver.restore(restore.point, previous);
  }

  private async clean(): Promise<void> {
    const btrfs = this.plan.units.filter((u) => u.provider === 'btrfs').map((u) => u.fs.mountPoint);
    const removed = await cleanLeftoverSnapshots(this.ctx.origin, btrfs, this.name);
    if (removed.length > 0) this.note('clean', `clean removed ${removed.length} snapshot(s) left by an interrupted run`);
  }

  private async hooks(phase: HookPhase): Promise<void> {
    const { origin, target, runId } = this.ctx;
    const adapting = phase === 'preFixup' || phase === 'postFixup' ? { targetRoot: this.#driver.flushDir } : {};
    await runHooks(phase, { replica: this.replica, origin, target, runId, ...adapting, report: (line) => this.note(`hooks ${phase}`, line), ...(this.ctx.signal ? { signal: this.ctx.signal } : {}) });
  }

  private async snapshot(unit: PlannedUnit, scope: StepScope): Promise<void> {
    const limits = { heartbeatTimeoutMs: this.replica.origin.endpoint.heartbeatTimeoutMs, maxFreezeMs: this.replica.policy.snapshot.maxFreezeMs };
    const view = await takeSnapshot(this.ctx.origin, unit, this.name, this.ctx.runId, limits);
    this.#views.set(unit.fs.mountPoint, view);
    scope.onUndo(() => this.releaseView(unit.fs.mountPoint));
    if (unit.provider === 'none') this.#liveAtSnapshot.set(unit.fs.mountPoint, (await scanManifests(this.ctx.origin, [this.scanOf(unit, unit.fs.mountPoint)]))[0]);
  }

  /**
   * A filesystem that cannot be snapshotted (vfat: an EFI system partition) is copied live; scanned
   * again after its copy, unchanged since the snapshots were taken means its copy is of that moment.
   */
  private async checkLiveCopy(unit: PlannedUnit): Promise<void> {
    const mountPoint = unit.fs.mountPoint;
    const before = this.#liveAtSnapshot.get(mountPoint);
    const after = (await scanManifests(this.ctx.origin, [this.scanOf(unit, mountPoint)]))[0];
    if (before !== undefined && after === before) {
      this.#stillAtSnapshot.add(mountPoint);
      this.#manifests.set(mountPoint, before);
    } else this.note(`copy ${mountPoint}`, `${mountPoint} changed while it was copied live: this copy is not a point in time`);
  }

  private scanOf(unit: PlannedUnit, dir: string): ManifestScan {
    const own = unit.provider === 'btrfs' ? { ownSnapshot: snapshotName(this.name, this.ctx.runId) } : {};
    return { dir, fsType: unit.fs.fsType, mountPoints: unit.innerMounts, excludePaths: unit.excludePaths, ...own };
  }

  /**
   * Scanned live, after the snapshots: equal to the base point's manifests means no entry changed
   * from the moment that point's view was scanned until now, so this run's views equal it too. A
   * frozen filesystem's live scan is its view's: for a directory target its records are kept on the
   * origin, and the copy compares them with the last point's (src/apply/delta-copy.ts) and keeps them
   * with the new point, so the view is walked once. A snapshot is walked by the copy: its files are
   * not in memory yet (a new btrfs snapshot's 100,000 entries took 2 s to walk, the live ones 0.5 s).
   */
  private async compare(scope: StepScope): Promise<StepOutcome> {
    const base = this.#previous?.points.find((p) => p.id === this.plan.basePoint);
    const units = this.plan.units;
    // Read beside the scan: the copy that follows a change compares with them first.
    this.changesSincePoint()?.prefetch();
    const frozen = (u: PlannedUnit) => this.plan.target.kind === 'directory' && u.provider === 'fsfreeze' && this.#views.get(u.fs.mountPoint)?.pointInTime === true;
    const kept = units.map((u, i) => (frozen(u) ? `${this.listingPrefix()}${this.ctx.runId}.${i}` : undefined));
    // A killed run's listings go first, a failed run's with its undo: /run is memory.
    const clear = () => this.ctx.origin.exec(['sh', '-c', 'rm -f -- "$1"*', 'rmm-clear', this.listingPrefix()], { sudo: true });
    if (kept.some((k) => k)) {
      await clear();
      scope.onUndo(async () => void (await clear()));
    }
    const scanned = await scanManifests(this.ctx.origin, units.map((u) => this.scanOf(u, u.fs.mountPoint)), kept);
    const same = base?.manifests !== undefined && units.every((u, i) => scanned[i] !== undefined && scanned[i] === base.manifests![u.fs.mountPoint] && base.snapshots[u.fs.mountPoint] === u.provider);
    this.#unchanged = same && (await this.#driver.currentIs(base.id));
    if (this.#unchanged) this.changesSincePoint()?.stop();
    units.forEach((u, i) => kept[i] && scanned[i] && this.#listings.set(u.fs.mountPoint, { file: kept[i]!, hash: scanned[i]! }));
    if (this.#unchanged && kept.some((k) => k)) await clear();
    return this.#unchanged ? 'unchanged' : undefined;
  }

  /** Where the origin keeps this replica's view listings between the compare and the copy. */
  private listingPrefix(): string {
    return `/run/.rmm-listing.${this.name}.`;
  }

  /**
   * The view's listing: the records the compare step kept on the origin (checked against its hash,
   * then removed), or a walk of the view when there are none.
   */
  private async viewListing(unit: PlannedUnit, view: SnapshotView): Promise<Buffer | undefined> {
    const kept = this.#listings.get(unit.fs.mountPoint);
    if (kept) {
      const packed = await this.ctx.origin.readFile(kept.file, { sudo: true });
      await this.ctx.origin.exec(['rm', '-f', '--', kept.file], { sudo: true });
      const bytes = await gunzipListing(packed);
      if (bytes && listingHash(bytes) === kept.hash) return bytes;
    }
    return listView(this.ctx.origin, this.scanOf(unit, view.sourcePath));
  }

  private async openChannel(scope: StepScope): Promise<void> {
    const opening = this.ctx.openChannel(this.ctx.origin, this.ctx.target);
    this.#channel = opening;
    // A no-op once the revoke step closed it.
    scope.onUndo(async () => {
      if (this.#channel !== opening) return;
      const channel = await opening.catch(() => undefined);
      // One that failed halfway may have left a key on either host.
      await (channel ? channel.close() : this.ctx.revokeAccess());
    });
    await opening;
  }

  private async copy(unit: PlannedUnit): Promise<void> {
    const view = this.#views.get(unit.fs.mountPoint)!;
    const channel = await this.#channel!;
    if (!this.#prepared) {
      await this.#driver.prepareCopy(!this.plan.basePoint);
      this.#prepared = true;
    }
    const dest = this.#driver.copyDir(unit);
    const empty = unit.method.kind === 'tar' && (await this.#driver.isEmpty(dest));
    // Recovery point folders (directory targets) share files with the last point; disks are written over.
    const points = this.plan.target.kind === 'directory';
    // A view holds still until it is released, so its listing is taken while it is held: by a walk
    // (before the copy when the last point's listing is there to compare it with), or from the tar
    // streams' listing, which is the same walk. Its hash is the view's manifest.
    const walk = empty || !view.pointInTime ? undefined : this.viewListing(unit, view);
    walk?.catch(() => {}); // awaited below; a copy that fails first must not leave it unhandled
    const since = points && !empty ? this.changesSincePoint() : undefined;
    const changes = since && (await since.start(() => this.#driver.isEmpty(this.#driver.flushDir))) ? await since.changes(unit, await walk, () => this.rsyncKeepsHolesInPlace()) : undefined;
    // A copy a killed run left (or one started from the last point's files) holds files linked from
    // the last point: rsync would change an attribute that differs on the origin in place, in every
    // point sharing the file. A btrfs snapshot of the point shares none.
    // Other filesystems' folders inside this one are theirs: not unshared, not deleted from here.
    const inside = mountsBelow(this.plan.units.map((u) => u.fs.mountPoint), unit.fs.mountPoint);
    if (points && this.plan.basePoint && !empty && !changes && !since?.snapshot && !(await this.#driver.isEmpty(dest))) await this.#driver.unshare(dest, inside);
    // The listing compared is kept with the copy while rsync runs.
    const keeping = changes ? walk!.then((l) => l && since!.keep(unit, l)) : undefined;
    keeping?.catch(() => {}); // awaited below
    const keepOut = empty ? undefined : await this.keepAdaptedOut(unit, view);
    const kernels = this.plan.disks ? await originKernels(this.ctx.origin, view, unit, this.plan.units) : undefined;
    if (kernels) this.#originKernels = kernels;
    const { replica } = this;
    // A copy of the changes starts with what the last point holds of the filesystem.
    const diff = changes?.diff;
    const estimate = diff ? { bytes: diff.bytes, files: diff.entries, heldBytes: diff.bytes - diff.sendBytes, heldFiles: diff.entries - diff.send.length } : { bytes: unit.fs.usedBytes };
    const inPlace = changes?.inPlace === true;
    if (inPlace && since?.snapshot) this.note(`copy ${unit.fs.mountPoint}`, 'changed files are updated in place: only their changed blocks are written, the rest stays shared with the last point');
    const meter = new CopyMeter(estimate, (p) => this.ctx.emit({ type: 'progress', replica: this.name, mountPoint: unit.fs.mountPoint, ...p }));
    meter.start();
    const copied = await copyFilesystem(
      {
        origin: this.ctx.origin,
        target: this.ctx.target,
        originName: replica.origin.name,
        view,
        unit,
        channel,
        dest,
        flushDir: dest,
        ...(this.#driver.attributesFile ? { attributesFile: this.#driver.attributesFile(unit) } : {}),
        // A snapshot's files cannot be hard links to another point's (each point is a subvolume):
        // rsync would replace each unchanged file by a copy of the point's.
        ...(points && this.plan.basePoint && !since?.snapshot ? { linkDest: this.#driver.pointDir(this.plan.basePoint, unit) } : {}),
        ...(points ? {} : { delayUpdates: true }),
        ...(changes ? { filesFrom: changes.list, apart: changes.apart, ...(changes.flags ? { flagsSince: changes.flags } : {}) } : {}),
        ...(inPlace ? { inPlace: true } : {}),
        // A snapshot of the last point walked in full holds what it held: what the view excludes now goes too.
        ...(since?.snapshot && !changes ? { deleteExcluded: { protectMounts: inside } } : {}),
        excludePaths: replica.exclude.paths,
        ...(keepOut ? { keepOut } : {}),
        ...(this.plan.disks && !empty ? { protect: this.plan.disks.kernelFiles } : {}),
        ...(replica.policy.bandwidthBytesPerSecond !== undefined ? { bandwidthBytesPerSecond: replica.policy.bandwidthBytesPerSecond } : {}),
        parallelStreams: replica.policy.parallelStreams,
        stallTimeoutMs: replica.policy.stallTimeoutMs,
        scan: this.scanOf(unit, view.sourcePath),
        note: (text) => this.note(`copy ${unit.fs.mountPoint}`, text),
        meter,
      },
      empty,
    )
      .finally(() => walk?.catch(() => {}))
      .catch(async (err: unknown) => {
        // A copy that failed because its snapshot overflowed is that overflow's failure; any other
        // trouble asking (a dead session) must not hide the copy's own error.
        await view.assertIntact?.().catch((check: unknown) => {
          if (check instanceof SnapshotError && check.code === 'snapshot.overflowed') throw check;
        });
        throw err;
      });
    await view.assertIntact?.();
    const listing = walk ? await walk : copied.listing;
    this.#manifests.set(unit.fs.mountPoint, walk ? listing && listingHash(listing) : copied.manifest);
    if (keeping) await keeping;
    else if (listing && view.pointInTime) await this.changesSincePoint()?.keep(unit, listing);
    if (unit.provider === 'none') await this.checkLiveCopy(unit);
    // A copy of the changes holds every entry of the view: its figures are the whole filesystem's.
    const s = changes ? { ...copied.stats, files: changes.diff.entries, bytesTotal: changes.diff.bytes } : copied.stats;
    meter.finish({ bytes: s.bytesTotal, files: s.files });
    this.ctx.emit({ type: 'filesystem.done', replica: this.name, mountPoint: unit.fs.mountPoint, files: s.files, bytesSent: s.bytesSent, bytesTotal: s.bytesTotal });
    this.#stats = addStats(this.#stats, s);
  }

  /**
   * Whether both hosts' rsync keep a sparse file's holes when writing in place (3.1.3 or later):
   * asked once per run, through sudo, as the copy runs it.
   */
  private rsyncKeepsHolesInPlace(): Promise<boolean> {
    const ask = (host: RemoteHost) => host.exec(['rsync', '--version'], { sudo: true, allowFailure: true, timeoutMs: 60_000 }).then((r) => rsyncAtLeast(r.stdout));
    this.#inPlaceOk ??= Promise.all([ask(this.ctx.origin), ask(this.ctx.target)]).then((ok) => ok.every(Boolean));
    return this.#inPlaceOk;
  }

  /** The comparison with the last point's listings, for a directory target (one per sync). */
  private changesSincePoint(): ChangesSincePoint | undefined {
    if (this.#since !== undefined) return this.#since ?? undefined;
    const base = this.plan.basePoint ? this.#previous?.points.find((p) => p.id === this.plan.basePoint) : undefined;
    const driver = this.#driver;
    this.#since = driver instanceof DirectoryTarget ? new ChangesSincePoint(driver, base, this.plan.units, this.replica.exclude.paths, this.plan.fixups?.files ?? [], (text) => this.note('copy', text)) : null;
    return this.#since ?? undefined;
  }

  /**
   * A later disks sync writes over a replica that boots: the boot files rmm makes, and the files its
   * fixups adapt that the last sync left adapted, stay out of the copy, so that a sync that stops
   * halfway leaves them as they were (the fixup, initramfs and bootloader steps write them anew).
   * Returns what the copy keeps out: the boot files as patterns, the adapted files as paths.
   */
  private async keepAdaptedOut(unit: PlannedUnit, view: SnapshotView): Promise<{ patterns: readonly string[]; paths: readonly string[] } | undefined> {
    const disks = this.plan.disks;
    if (!disks) return undefined;
    const files = this.plan.fixups ? rewrittenIn(unit, this.plan.units, this.plan.fixups.files) : [];
    const present = await this.disks().regularFiles(files.map(adaptedPath));
    const kept = files.filter((f) => present.has(adaptedPath(f)));
    for (const [path, text] of await readOriginTexts(this.ctx.origin, view, unit, kept)) this.#kept.set(path, text);
    if (kept.length > 0) this.note(`copy ${unit.fs.mountPoint}`, `${kept.length} adapted file(s) of the replica kept out of the copy, rewritten by the fixups once every filesystem has arrived`);
    return { patterns: disks.keptOut, paths: keptPaths(kept) };
  }

  /**
   * A snapshot that cannot be removed (a busy mount, a btrfs delete that fails) does not undo a copy
   * that is complete: the next run's clean step removes it. A freeze that ended before its copy did
   * does: that copy is not a point in time.
   */
  private async release(unit: PlannedUnit): Promise<void> {
    const mountPoint = unit.fs.mountPoint;
    try {
      await this.releaseView(mountPoint);
    } catch (err) {
      if (err instanceof SnapshotError && err.code === 'snapshot.freeze_ended') throw err;
      this.note(`release ${mountPoint}`, `warning: could not release the snapshot of ${mountPoint}, tried again when the sync ends (the next run removes what is left): ${(err as Error).message}`);
    }
  }

  private async releaseView(mountPoint: string): Promise<void> {
    const view = this.#views.get(mountPoint);
    if (!view) return;
    await view.release();
    // Only once it is gone: a release that failed is tried again by the undo.
    this.#views.delete(mountPoint);
  }

  private async revoke(): Promise<void> {
    const channel = await this.#channel;
    await channel?.close();
    this.#channel = undefined;
  }

  private async promote(scope: StepScope): Promise<void> {
    this.#lock?.assertHeld();
    const id = this.#started.id;
    const previous = this.#previous?.points.find((p) => p.id === this.plan.basePoint);
    // Registered first: a promote that fails halfway is put back too.
    scope.onUndo(async () => {
      if (!this.#committed) await this.#driver.demote(id, previous);
    });
    await this.#driver.promote(id);
  }

  private async record(): Promise<void> {
    // Only the holder of the lock may say what the target holds.
    this.#lock?.assertHeld();
    const base = this.base();
    const now = this.#now().toISOString();
    const units = this.plan.units;
    let point: RecoveryPoint;
    if (this.#unchanged && this.plan.basePoint) {
      // As of this run's start: the scan that proved it ran after the snapshots, which came later.
      const previous = this.#previous?.points ?? [];
      const last = previous.find((p) => p.id === this.plan.basePoint)!;
      point = { ...last, verifiedAt: this.#started.at };
      const points = keep(previous.map((p) => (p.id === last.id ? point : p)), this.plan.prune.ifUnchanged);
      // The disks are that point still: the snapshot this sync took of it keeps nothing they do not.
      const fresh = this.plan.disks?.keep && !this.plan.disks.keep.reuse ? this.plan.disks : undefined;
      if (fresh) await this.disks().pruneSnapshots([fresh.keep!.point], fresh.volumes ?? []);
      await this.#driver.writeRecord({ ...base, points, ...pruning(this.plan.prune.ifUnchanged), state: point.pointInTime ? 'consistent' : 'inconsistent', updatedAt: now });
      this.#committed = true;
      this.#result = { point, copied: false };
      this.note('record', `unchanged since recovery point ${point.id}`);
      return;
    }
    const hashes = units.map((u) => this.#manifests.get(u.fs.mountPoint));
    const pointInTime = units.every((u) => u.provider !== 'none' || this.#stillAtSnapshot.has(u.fs.mountPoint));
    point = {
      ...this.pending(),
      snapshots: Object.fromEntries(units.map((u) => [u.fs.mountPoint, u.provider])),
      pointInTime,
      finishedAt: now,
      stats: summary(this.#stats),
      // A live copy (provider none) that changed while it was copied gets none: it is never verified, only copied again.
      ...(pointInTime && hashes.every((h) => h !== undefined) ? { manifests: Object.fromEntries(units.map((u, i) => [u.fs.mountPoint, hashes[i]!])) } : {}),
      ...(this.plan.fixups ? { fixups: { hash: this.plan.fixups.hash, files: this.plan.fixups.files.map((f) => fixupEntry(f.path, f.renamedTo)) } } : {}),
    };
    const points = keep([...base.points, point], this.plan.prune.ifCopied);
    await this.#driver.writeRecord({ ...base, points, ...pruning(this.plan.prune.ifCopied), state: pointInTime ? 'consistent' : 'inconsistent', updatedAt: now });
    this.#committed = true;
    this.#result = { point, copied: true };
  }

  private async prune(): Promise<void> {
    const ids = this.#result?.copied === false ? this.plan.prune.ifUnchanged : this.plan.prune.ifCopied;
    if (this.plan.disks) await this.disks().pruneSnapshots(ids, this.plan.disks.volumes ?? []);
    else await this.#driver.prune(ids);
    // The next sync starts from this point's files: their links are made once this run is over.
    const point = this.#result?.point.id;
    if (this.#driver instanceof DirectoryTarget && point) await this.#driver.afterRun(point);
  }
}

/** What the record says the prune step removes, so that a next sync finishes a prune that failed. */
function pruning(ids: readonly string[]): { pruning?: readonly string[] } {
  return ids.length > 0 ? { pruning: [...new Set(ids)] } : {};
}

/** The points that stay after the plan's prune list (never the newest). */
function keep(points: readonly RecoveryPoint[], pruned: readonly string[]): RecoveryPoint[] {
  return points.filter((p, i) => i === points.length - 1 || !pruned.includes(p.id));
}

/**
 * A new point's start: now, or one second after the last point's when that is not earlier (a run
 * in the same second, another rmm host's clock ahead of this one's), so that ids stay unique and
 * points stay oldest first, as the record's reader requires.
 */
function after(now: Date, last: RecoveryPoint | undefined): Date {
  if (!last) return now;
  const next = Math.floor(Math.max(Date.parse(last.startedAt), Date.parse(idTime(last.id))) / 1000) * 1000 + 1000;
  return now.getTime() >= next ? now : new Date(next);
}

/** 20261124T214223Z -> 2026-11-24T21:42:23Z */
function idTime(id: string): string {
  return id.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
}

export function pointId(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function summary(stats: RsyncStats): NonNullable<RecoveryPoint['stats']> {
  return { files: stats.files, filesTransferred: stats.filesTransferred, bytesTotal: stats.bytesTotal, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
}
