import { posix } from 'node:path';
import { createHash } from 'node:crypto';
import { PassThrough, type Writable } from 'node:stream';
import type { Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import { discoverOrigin } from '../observe/origin.js';
import type { OriginFacts } from '../observe/facts.js';
import { ensureRsync } from '../observe/packages.js';
import { readRecord, writeRecord, type RecoveryPoint, type ReplicaRecord } from '../record/record.js';
import { mountsBelow, selectFilesystems, type CopyUnit } from '../snapshot/select.js';
import { cleanLeftoverSnapshots, takeSnapshot, type SnapshotView } from '../snapshot/take.js';
import type { PushChannel } from '../sync/channel.js';
import { findArgs, scanManifests, type ManifestScan } from '../sync/manifest.js';
import { createArgv, createFoldersArgv, createOptions, extractCommand, extractFoldersCommand, LIST_COMMAND, MAKE_AND_SHOW, readMadeFolder, routeNames, ShareDealer, TAR_STREAM } from '../sync/tar.js';
import { prefetchArgv, PrefetchFeed } from '../sync/prefetch.js';
import { addStats, parseProgress, parseRsyncStats, reanchorAll, rsyncOptions, RSYNC_BASE, targetDir, ZERO_STATS, type RsyncStats } from '../sync/rsync.js';
import { RemoteCommandError, type RemoteProcess, type SshSession } from '../transport/index.js';
import { withLifeline } from '../transport/lifeline.js';
import type { EventSink } from './events.js';
import { lockReplica } from './lock.js';
import { currentPoint } from '../plan/plan.js';
import { runHooks } from '../hooks/run.js';
import type { HookPhase } from '../config/spec.js';

export interface ReplicateContext {
  readonly origin: SshSession;
  readonly target: SshSession;
  readonly runId: string;
  readonly holder: string;
  readonly emit: EventSink;
  /** Opens the path rsync takes from origin to target: direct, or through rmm for relay. */
  readonly openChannel: (origin: SshSession, target: SshSession) => Promise<PushChannel>;
  readonly now?: () => Date;
  /** The origin's facts from this run's observation, so apply does not read them twice. */
  readonly facts?: OriginFacts;
}

const PARTIAL = '.partial';

/** Layout of a directory replica on its landing host. */
export function replicaLayout(path: string) {
  return {
    points: posix.join(path, 'points'),
    point: (id: string) => posix.join(path, 'points', id),
    partial: posix.join(path, 'points', PARTIAL),
    current: posix.join(path, 'current'),
    lock: posix.join(path, '.rmm', 'lock'),
  };
}

/** What a sync did: copied a new recovery point, or verified that the last one still equals the origin. */
export interface SyncOutcome {
  readonly point: RecoveryPoint;
  readonly copied: boolean;
}

/**
 * One sync of one directory replica: lock, snapshot, copy into a new recovery point next to the
 * last consistent one, switch `current`, record, prune. A failure anywhere leaves the last
 * consistent point and `current` as they were, and the record not consistent for the new point.
 * When the origin's manifests show that nothing changed since the last point, that point is
 * marked verified instead: no copy, no new point.
 */
export async function replicate(replica: Replica, ctx: ReplicateContext): Promise<SyncOutcome> {
  const now = ctx.now ?? (() => new Date());
  const path = replica.target.path!;
  const layout = replicaLayout(path);
  const { origin, target, emit } = ctx;
  const step = (name: string, detail?: string): void => emit({ type: 'step', replica: replica.name, step: name, ...(detail ? { detail } : {}) });

  step('lock', `${target.info.host}:${layout.lock}`);
  const lock = await lockReplica(target, layout.lock, replica.name, ctx.holder);
  try {
    let facts = ctx.facts;
    if (!facts) {
      step('discover', replica.origin.endpoint.address);
      facts = await discoverOrigin(origin, replica.origin.root);
    }
    const selection = selectFilesystems(facts, replica.origin.root, replica.exclude, replica.policy.snapshot, replica.origin.name);
    const hosts = [['origin', origin], ['target', target]] as const;
    const [rsyncs, previous] = await Promise.all([Promise.all(hosts.map(([, session]) => ensureRsync(session, replica.policy.autoInstallPackages))), readRecord(target, path)]);
    hosts.forEach(([role, session], i) => rsyncs[i] === 'installed' && step('install', `rsync on the ${role} ${session.info.host}`));
    const last = await verifiable(currentPoint(previous), replica, target, layout);
    const started = now();
    const startedAt = started.toISOString();
    const id = pointId(started);
    const pending: RecoveryPoint = { id, specHash: replica.specHash, startedAt, snapshots: {}, pointInTime: false };
    const base: Omit<ReplicaRecord, 'state' | 'updatedAt'> = {
      schemaVersion: 1,
      replica: replica.name,
      origin: { name: replica.origin.name, hostname: facts.hostname, machineId: facts.machineId },
      specHash: replica.specHash,
      runId: ctx.runId,
      points: previous?.points ?? [],
    };
    await writeRecord(target, path, { ...base, state: 'in-progress', updatedAt: startedAt, pending });
    const prune = async (dropped: readonly RecoveryPoint[]) => {
      if (dropped.length === 0) return;
      step('prune', dropped.map((p) => p.id).join(', '));
      await target.exec(['rm', '-rf', '--', ...dropped.map((p) => layout.point(p.id))], { sudo: true });
    };

    try {
      const removed = await cleanLeftoverSnapshots(origin, selection.units.filter((u) => u.provider === 'btrfs').map((u) => u.fs.mountPoint), replica.name);
      if (removed.length > 0) step('clean', `removed ${removed.length} snapshot(s) left by an interrupted run`);
      const hooks = (phase: HookPhase) =>
        runHooks(phase, { replica, origin, target, runId: ctx.runId, report: (line) => step('hook', line) });
      const scanOf = (unit: CopyUnit, dir: string): ManifestScan => ({
        dir,
        fsType: unit.fs.fsType,
        mountPoints: mountsBelow(facts.mountPoints, unit.fs.mountPoint),
        excludePaths: reanchorAll(replica.exclude.paths, unit.relativePath),
      });
      const copy = await copyFromSnapshots(replica, ctx, selection.units, layout, last, hooks, scanOf);
      if (copy === 'unchanged') {
        // As of this run's start: the scan that proved it ran after the snapshots, which came later.
        const verified: RecoveryPoint = { ...last!, verifiedAt: startedAt };
        step('unchanged', `since recovery point ${verified.id}`);
        const { kept, dropped } = retain([...base.points.slice(0, -1), verified], replica.policy.retention, now());
        await writeRecord(target, path, { ...base, points: kept, state: verified.pointInTime ? 'consistent' : 'inconsistent', updatedAt: now().toISOString() });
        await prune(dropped);
        return { point: verified, copied: false };
      }
      const { stats, snapshots, pointInTime, manifests } = copy;
      const point: RecoveryPoint = { ...pending, snapshots, pointInTime, finishedAt: now().toISOString(), stats: summary(stats), ...(manifests ? { manifests } : {}) };

      step('switch', `current -> points/${id}`);
      await target.exec(['sh', '-c', PROMOTE, 'rmm-promote', layout.partial, layout.point(id), layout.current, `points/${id}`], { sudo: true });
      // Before the record says consistent: a post-sync hook that adapts the copy is part of the sync.
      await hooks('postSync');
      const { kept, dropped } = retain([...base.points, point], replica.policy.retention, now());
      const state = point.pointInTime ? 'consistent' : 'inconsistent';
      await writeRecord(target, path, { ...base, points: kept, state, updatedAt: now().toISOString() });
      await prune(dropped);
      return { point, copied: true };
    } catch (err) {
      // The point being written stays in .partial for the next run to resume; the last consistent one is untouched.
      await writeRecord(target, path, { ...base, state: 'failed', updatedAt: now().toISOString(), pending, error: (err as Error).message }).catch(() => {});
      throw err;
    }
  } finally {
    await lock.release().catch(() => {});
  }
}

async function copyFromSnapshots(
  replica: Replica,
  ctx: ReplicateContext,
  units: ReturnType<typeof selectFilesystems>['units'],
  layout: ReturnType<typeof replicaLayout>,
  last: RecoveryPoint | undefined,
  hooks: (phase: HookPhase) => Promise<void>,
  scanOf: (unit: CopyUnit, dir: string) => ManifestScan,
): Promise<CopyResult | 'unchanged'> {
  const { origin, target, emit } = ctx;
  const views: SnapshotView[] = [];
  let channel: PushChannel | undefined;
  let manifests: Promise<unknown> | undefined;
  // A sync that cannot turn out unchanged (no manifests to compare) opens its push channel while
  // the snapshots are taken: five round trips off the copy's path.
  const early = last?.manifests ? undefined : ctx.openChannel(origin, target);
  early?.catch(() => {}); // awaited below, or closed in finally
  try {
    await hooks('preSnapshot');
    for (const unit of units) {
      emit({ type: 'step', replica: replica.name, step: 'snapshot', detail: `${unit.fs.mountPoint} (${unit.provider})` });
      views.push(await takeSnapshot(origin, unit, replica.name, ctx.runId));
    }
    await hooks('postSnapshot');
    // Scanned live, after the snapshots: equal to the point's manifests means no entry changed
    // from the moment that point's view was scanned until now, so this run's views equal it too.
    const live = last?.manifests ? await scanManifests(origin, views.map((v) => scanOf(v.unit, v.unit.fs.mountPoint))) : undefined;
    if (live && views.every((v, i) => live[i] !== undefined && live[i] === last!.manifests![v.unit.fs.mountPoint] && last!.snapshots[v.unit.fs.mountPoint] === v.unit.provider)) return 'unchanged';
    await hooks('preSync');
    channel = await (early ?? ctx.openChannel(origin, target));
    await target.exec(['mkdir', '-p', '--', layout.partial], { sudo: true });
    const routes = await Promise.all(views.map((v) => copyRoute(replica, ctx, v, layout, last)));
    // A view holds still until it is released, so its manifest is taken while it is copied, not
    // after: by a walk beside the copy (0.25 s per 100,000 files), or from the tar streams' listing,
    // which walks the view with the same find (one walk, not two).
    const scans = views.map((v, i) => (routes[i] === 'tar' ? undefined : viewManifest(origin, v, live?.[i], scanOf)));
    manifests = Promise.all(scans);
    manifests.catch(() => {}); // awaited below; a copy that fails first must not leave it unhandled
    let stats = ZERO_STATS;
    const listed: (string | undefined)[] = [];
    for (const [i, view] of views.entries()) {
      const copied = await copyOne(replica, ctx, view, channel, layout, last, routes[i]!, scanOf(view.unit, view.sourcePath));
      const s = copied.stats;
      listed[i] = copied.manifest;
      emit({ type: 'filesystem.done', replica: replica.name, mountPoint: view.unit.fs.mountPoint, files: s.files, bytesSent: s.bytesSent, bytesTotal: s.bytesTotal });
      stats = addStats(stats, s);
    }
    const hashes = await Promise.all(views.map((_, i) => scans[i] ?? listed[i]));
    return {
      stats,
      snapshots: Object.fromEntries(views.map((v) => [v.unit.fs.mountPoint, v.unit.provider])),
      pointInTime: views.every((v) => v.pointInTime),
      // A live copy (provider none) gets none: files may change while it is copied, so it is never
      // verified, only copied again.
      manifests: views.every((v) => v.pointInTime) && hashes.every((h) => h !== undefined) ? Object.fromEntries(views.map((v, i) => [v.unit.fs.mountPoint, hashes[i]!])) : undefined,
    };
  } finally {
    // A walk still inside a view would keep it from being unmounted.
    await manifests?.catch(() => {});
    for (const view of views.reverse()) {
      emit({ type: 'step', replica: replica.name, step: 'release', detail: view.unit.fs.mountPoint });
      await view.release().catch((err: Error) => emit({ type: 'step', replica: replica.name, step: 'release-failed', detail: err.message }));
    }
    channel ??= await early?.catch(() => undefined);
    await channel?.close().catch(() => {});
  }
}

interface CopyResult {
  readonly stats: RsyncStats;
  readonly snapshots: Record<string, string>;
  readonly pointInTime: boolean;
  readonly manifests: Record<string, string> | undefined;
}

/** A held view's manifest: a frozen filesystem's live scan is its view's; a live copy gets none. */
async function viewManifest(origin: SshSession, view: SnapshotView, live: string | undefined, scanOf: (unit: CopyUnit, dir: string) => ManifestScan): Promise<string | undefined> {
  if (!view.pointInTime) return undefined;
  if (view.unit.provider === 'fsfreeze' && live) return live;
  return (await scanManifests(origin, [scanOf(view.unit, view.sourcePath)]))[0];
}

/**
 * The last point, when a sync may verify it instead of copying: made under the same spec, with
 * manifests, and still what `current` points at (the target's copy was not switched by hand).
 */
async function verifiable(last: RecoveryPoint | undefined, replica: Replica, target: SshSession, layout: ReturnType<typeof replicaLayout>): Promise<RecoveryPoint | undefined> {
  if (!last?.manifests) return last;
  const { manifests: _, ...unverifiable } = last;
  if (last.specHash !== replica.specHash) return unverifiable;
  const res = await target.exec(['readlink', '--', layout.current], { sudo: true, allowFailure: true });
  return res.stdout.trim() === `points/${last.id}` ? last : unverifiable;
}

/**
 * How a view is copied: by tar streams (a first copy of a held view into an empty folder, with
 * nothing tar cannot do), or by rsync, saying why when parallel streams were asked for.
 */
async function copyRoute(replica: Replica, ctx: ReplicateContext, view: SnapshotView, layout: ReturnType<typeof replicaLayout>, last: RecoveryPoint | undefined): Promise<CopyRoute> {
  // tar cannot apply rsync's exclusion patterns nor its bandwidth limit: such copies go by rsync alone.
  const excluded = reanchorAll(replica.exclude.paths, view.unit.relativePath).length > 0;
  const limited = replica.policy.bandwidthBytesPerSecond !== undefined;
  if (!last && view.pointInTime && !excluded && !limited && (await isEmptyDir(ctx.target, targetDir(layout.partial, view.unit.relativePath)))) return 'tar';
  if (last || replica.policy.parallelStreams <= 1) return { rsync: undefined };
  return { rsync: excluded ? 'exclude.paths applies to it' : !view.pointInTime ? 'it is copied live' : limited ? 'the policy limits its bandwidth' : 'a copy interrupted earlier is resumed' };
}

type CopyRoute = 'tar' | { readonly rsync: string | undefined };

async function copyOne(
  replica: Replica,
  ctx: ReplicateContext,
  view: SnapshotView,
  channel: PushChannel,
  layout: ReturnType<typeof replicaLayout>,
  last: RecoveryPoint | undefined,
  route: CopyRoute,
  scan: ManifestScan,
): Promise<{ stats: RsyncStats; manifest?: string }> {
  const unit = view.unit;
  const dest = targetDir(layout.partial, unit.relativePath);
  const options = rsyncOptions({
    excludePaths: replica.exclude.paths,
    nestedMounts: unit.nestedMounts,
    relativePath: unit.relativePath,
    ...(replica.policy.bandwidthBytesPerSecond !== undefined ? { bandwidthBytesPerSecond: replica.policy.bandwidthBytesPerSecond } : {}),
    ...(last ? { linkDest: targetDir(layout.point(last.id), unit.relativePath) } : {}),
  });
  const transport = ['-e', channel.rsh, ...(channel.rsyncPath ? ['--rsync-path', channel.rsyncPath] : []), '--mkpath'];
  const source = `${view.sourcePath.replace(/\/$/, '')}/`;
  const destination = `${channel.destinationPrefix}${dest}/`;
  // 24: files vanished while copying; only possible without a snapshot, and the record says so.
  const okCodes = view.pointInTime ? [0] : [0, 24];
  const rsync = () => runRsync(replica, ctx, unit.fs.mountPoint, ['rsync', ...RSYNC_BASE, '--exclude=/.rmm-snap.*', ...options, ...transport, source, destination], okCodes);

  ctx.emit({ type: 'step', replica: replica.name, step: 'sync', detail: `${unit.fs.mountPoint} -> ${ctx.target.info.host}:${dest}` });
  if (route !== 'tar') {
    if (route.rsync) ctx.emit({ type: 'step', replica: replica.name, step: 'parallel', detail: `${unit.fs.mountPoint}: one rsync stream, as ${route.rsync}` });
    return { stats: await rsync() };
  }
  const streamed = await tarStreams(replica, ctx, view, channel, dest, layout.partial, scan);
  if (!streamed.needsRsync) return streamed;
  // The rsync pass counts every file itself.
  const stats = { ...streamed.stats, files: 0, bytesTotal: 0 };
  return { stats: addStats(stats, await rsync()), manifest: streamed.manifest };
}

async function isEmptyDir(target: SshSession, dir: string): Promise<boolean> {
  const res = await target.exec(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-print', '-quit'], { sudo: true, allowFailure: true });
  return res.exitCode === 0 ? res.stdout.trim() === '' : /No such file or directory/.test(res.stderr);
}

/**
 * A first copy into an empty folder: the filesystem's entries split into shares of equal cost, one
 * `tar | ssh | tar` stream each (src/sync/tar.ts), then, when ACLs go as xattrs, one pass over the
 * folders for their default ACLs. An rsync pass follows only for sockets, which tar skips.
 */
async function tarStreams(
  replica: Replica,
  ctx: ReplicateContext,
  view: SnapshotView,
  channel: PushChannel,
  dest: string,
  partial: string,
  scan: ManifestScan,
): Promise<{ stats: RsyncStats; needsRsync: boolean; manifest: string }> {
  const { origin } = ctx;
  const mountPoint = view.unit.fs.mountPoint;
  const made = readMadeFolder((await ctx.target.exec(['sh', '-c', MAKE_AND_SHOW, 'rmm-dest', dest], { sudo: true })).stdout);
  const { acl } = made;
  const count = Math.max(1, replica.policy.parallelStreams);
  // Streams that give owners double the channels the copy may hold: up to 8 + 8, the lister, the
  // read-ahead and the freezes stay within the session's connections (src/transport/session.ts).
  // A tar that cannot give owners (a login that is not root, without sudo) needs no second kind.
  const tarGivesOwners = channel.sudo || ctx.target.info.user === 'root';
  const dealer = new ShareDealer(count, count <= 8 && tarGivesOwners ? made.tarUser : undefined);
  const how = acl === 'acls' ? ' (every entry\'s ACL set by tar, as the copy\'s folder inherits one)' : '';
  ctx.emit({ type: 'step', replica: replica.name, step: 'copy', detail: `${mountPoint}: ${dealer.streams} tar stream(s) into an empty copy${how}` });
  const flusher = await ctx.target.spawn(withLifeline(['sh', '-c', FLUSH_LOOP, 'rmm-flush', partial]), { sudo: true });
  flusher.channel.resume();
  const streams: TarStream[] = [];
  const late: LateStream[] = [];
  const folders: Buffer[] = [];
  // The listing is the manifest's walk: its hash is the view's manifest (src/sync/manifest.ts).
  const digest = createHash('sha256');
  let readAhead: Promise<RemoteProcess | undefined> | undefined;
  let lister: RemoteProcess | undefined;
  // A stream that fails ends the copy at once: the listing may be held, waiting for its window.
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // raced below
  const open = (i: number): Promise<TarStream> => {
    const remote = extractCommand(dest, channel.sudo, acl, dealer.givesOwners(i));
    const status = `${channel.workDir}/tar-${i}-of-${mountPoint.replaceAll('/', '_')}.status`;
    return channel.relayed ? carriedStream(ctx, createArgv(view.sourcePath, acl), remote) : pushStream(origin, view.sourcePath, channel, remote, status, createOptions(acl));
  };
  try {
    for (let i = 0; i < dealer.loads.length; i++) {
      if (dealer.opened[i]) {
        const stream = await open(i);
        stream.done.catch(fail);
        streams.push(stream);
      } else {
        // Its names wait in a buffer, and the listing with them, until its tar has started.
        const stream = lateStream(() => open(i), fail);
        streams.push(stream);
        late[i] = stream;
      }
    }
    const onOpen = (i: number): void => {
      late[i]!.start();
      ctx.emit({ type: 'step', replica: replica.name, step: 'copy', detail: `${mountPoint}: one more tar stream, for entries tar must give an owner` });
    };
    // Under a lifeline: when a stream fails, ending its stdin ends the walk, which holds the view.
    lister = await origin.spawn(withLifeline(['sh', '-c', LIST_COMMAND, 'rmm-list', view.sourcePath, ...findArgs(scan)]), { sudo: true });
    // Not awaited: the listing must never wait for the read-ahead, nor for a channel for it.
    readAhead = origin.spawn(prefetchArgv(view.sourcePath), { sudo: true }).then(
      (p) => (p.channel.resume(), p),
      () => undefined,
    );
    routeNames(lister.channel, streams.map((s) => s.names), dealer, { prefetch: new PrefetchFeed(readAhead.then((p) => p?.channel)), onOpen, digest, ...(acl === 'xattrs' ? { folders } : {}) });
    try {
      await Promise.race([lister.wait([0]), failed]);
    } finally {
      for (const s of streams) s.names.end();
      lister.channel.end();
    }
    await Promise.race([Promise.all(streams.map((s) => s.done)), failed]);
    flusher.channel.end(); // its last write-out runs beside the folders pass
    if (acl === 'xattrs') {
      // Small (three 512-byte blocks per folder), so carried by rmm in either transfer, without another login.
      const pass = await carriedStream(ctx, createFoldersArgv(view.sourcePath), extractFoldersCommand(dest, channel.sudo));
      streams.push(pass);
      for (const names of folders) pass.names.write(names);
      pass.names.end();
      await pass.done;
    }
  } catch (err) {
    for (const s of streams) s.names.destroy();
    if (err instanceof RemoteCommandError) throw new RmmError('sync.tar', `copying ${mountPoint} of ${replica.origin.name} failed: ${err.message}`, { cause: err });
    throw err;
  } finally {
    // The read-ahead holds the view open: it must end before the view is released. (Its channel
    // comes at the latest when the streams' channels close.)
    const ahead = await readAhead;
    ahead?.channel.end();
    if (!flusher.channel.writableEnded) flusher.channel.end();
    const [, status] = await Promise.all([flusher.exit, ahead?.exit]);
    const failure = /rmm-prefetch: .*/.exec(status?.stderr ?? '')?.[0];
    if (failure) ctx.emit({ type: 'step', replica: replica.name, step: 'read-ahead', detail: `stopped on the origin (the copy is not affected): ${failure}` });
  }
  const stats = { ...ZERO_STATS, files: dealer.files + dealer.folders, filesTransferred: dealer.files, bytesTotal: dealer.bytes, bytesSent: dealer.bytes };
  return { stats, needsRsync: dealer.needsRsync, manifest: digest.digest('hex') };
}

// $1 a folder on the copy's filesystem. The kernel starts writing dirty pages back only at 10% of
// RAM or after 30 s, so a first copy would sit in memory until PROMOTE's flush: 2 GiB of large
// files took 3-4 s to flush after a 4.5 s copy; writing out every 0.25 s while the streams run
// left 0.1-0.3 s (bench first-copy large: 8.9 s -> 6.4 s; small files: no change). The lifeline's
// TERM (rmm ends the loop when the streams end) interrupts `wait`: the loop writes out what is left
// at once, beside the folders pass, and PROMOTE's flush finds little; its sleep, holding none of
// the channel's descriptors, does not keep the channel open until it wakes.
export const FLUSH_LOOP = `trap 'sync -f -- "$1" 2>/dev/null; exit 0' TERM
while :; do
  sleep 0.25 </dev/null >/dev/null 2>&1 & wait $! || exit 0
  sync -f -- "$1" 2>/dev/null || :
done`;

/** One tar stream: where its names go, and when it has ended. */
export interface TarStream {
  readonly names: Writable;
  readonly done: Promise<unknown>;
}

export interface LateStream extends TarStream {
  start(): void;
}

/**
 * A stream opened by start(), if ever: until then its names wait in a buffer; `done` at once if
 * never. A failure to open, or of the stream, goes to `onFailure` too.
 */
export function lateStream(open: () => Promise<TarStream>, onFailure: (err: unknown) => void): LateStream {
  const names = new PassThrough();
  let done: Promise<unknown> = Promise.resolve();
  return {
    names,
    get done() {
      return done;
    },
    start() {
      done = open().then(
        (s) => {
          // The copy failed while it opened: its tar on either side must not wait for names.
          if (names.destroyed) s.names.destroy();
          else names.pipe(s.names);
          s.done.catch(onFailure);
          return s.done;
        },
        (err: unknown) => {
          onFailure(err);
          throw err;
        },
      );
      done.catch(() => {}); // awaited with the other streams'
    },
  };
}

/** Direct: the origin sends the stream to the target over its own ssh. */
async function pushStream(origin: SshSession, source: string, channel: PushChannel, remote: string, status: string, create: readonly string[]): Promise<TarStream> {
  const proc = await origin.spawn(['sh', '-c', TAR_STREAM, 'rmm-tar', source, channel.rsh, channel.destination, remote, status, ...create], { sudo: true });
  proc.channel.resume(); // tar writes nothing to stdout; read it so the channel can close
  return { names: proc.channel, done: proc.wait([0]) };
}

/**
 * Relay: rmm carries the archive from tar's stdout on the origin to tar's stdin on the target, one
 * cipher layer per hop. Through the tunnel (which rsync uses), the origin's own ssh adds a second
 * layer on each side: bench first copies, two runs each back to back, by tunnel 12.5-12.7 s (small
 * files) and 12.1-12.2 s (large), carried 10.7-11.0 s and 8.8-10.2 s. (It measured no faster
 * earlier, while rmm still sent one SSH packet per file name.)
 */
async function carriedStream(ctx: ReplicateContext, create: string[], remote: string): Promise<TarStream> {
  const sink = await ctx.target.spawn(['sh', '-c', remote], { sudo: false });
  sink.channel.resume(); // nothing comes out, but ssh2 closes a channel only once its output is read
  const tar = await ctx.origin.spawn(create, { sudo: true }).catch((err: unknown) => {
    sink.channel.destroy(); // its tar -x waits for an archive that will not come
    throw err;
  });
  // pipe() ends the target's stdin at the archive's EOF, and not before: the exit status may arrive first.
  tar.channel.pipe(sink.channel);
  // tar -x ends at the archive's end marker, which can come before the origin's EOF (seen from a
  // qemu guest). pipe() then stops reading, and ssh2 never closes a channel whose output is unread:
  // read the rest (the record's padding) so the origin's channel closes.
  sink.channel.once('close', () => {
    tar.channel.unpipe(sink.channel);
    tar.channel.resume();
  });
  const done = Promise.all([tar.wait([0]), sink.wait([0])]).catch((err: unknown) => {
    tar.channel.destroy();
    sink.channel.destroy();
    throw err;
  });
  return { names: tar.channel, done };
}

async function runRsync(replica: Replica, ctx: ReplicateContext, mountPoint: string, argv: string[], okCodes: number[]): Promise<RsyncStats> {
  const proc = await ctx.origin.spawn(withLifeline(argv), { sudo: true });
  let output = '';
  let pendingLine = '';
  proc.channel.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output += text;
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
    const lines = (pendingLine + text).split(/[\r\n]/);
    pendingLine = lines.pop() ?? '';
    for (const line of lines) {
      const p = parseProgress(line);
      if (p) ctx.emit({ type: 'progress', replica: replica.name, mountPoint, ...p });
    }
  });
  try {
    await proc.wait(okCodes);
    proc.channel.end();
  } catch (err) {
    if (err instanceof RemoteCommandError) throw new RmmError('sync.rsync', `copying ${mountPoint} of ${replica.origin.name} failed: ${err.message}`, { cause: err });
    throw err;
  }
  return parseRsyncStats(output);
}

// $1 partial dir, $2 final point dir, $3 current symlink, $4 its relative target.
// rename() of a symlink over the old one is atomic: `current` is always one whole point.
const PROMOTE = `set -e
mv -T -- "$1" "$2"
ln -sfn -- "$4" "$3.rmm-new"
mv -T -- "$3.rmm-new" "$3"
sync -f -- "$3"`;

function pointId(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function summary(stats: RsyncStats): NonNullable<RecoveryPoint['stats']> {
  return { files: stats.files, filesTransferred: stats.filesTransferred, bytesTotal: stats.bytesTotal, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
}

/** Which points to keep: the newest N, minus those older than maxAge; the newest is always kept. */
export function retain(points: readonly RecoveryPoint[], retention: Replica['policy']['retention'], now: Date): { kept: RecoveryPoint[]; dropped: RecoveryPoint[] } {
  const newestFirst = [...points].reverse();
  const kept = newestFirst.filter((p, i) => i === 0 || (i < retention.recoveryPoints && (retention.maxAgeMs === undefined || now.getTime() - Date.parse(p.startedAt) <= retention.maxAgeMs)));
  const dropped = newestFirst.filter((p) => !kept.includes(p));
  return { kept: kept.reverse(), dropped };
}
