import { createHash } from 'node:crypto';
import { PassThrough, type Writable } from 'node:stream';
import { RmmError } from '../errors.js';
import type { PlannedUnit } from '../plan/action.js';
import type { SnapshotView } from '../snapshot/take.js';
import { RemoteCommandError, UNREACHABLE, type RemoteHost, type RemoteProcess } from '../transport/index.js';
import { withLifeline } from '../transport/lifeline.js';
import { formatSidecar, listFlags, type FlagMap } from './attributes.js';
import type { PushChannel } from './channel.js';
import { findArgs, type ManifestScan } from './manifest.js';
import { prefetchArgv, PrefetchFeed } from './prefetch.js';
import type { CopyMeter } from './progress.js';
import { addStats, parseProgress, parseRsyncStats, RECEIVER_XATTR_SKIP, rsyncOptions, RSYNC_BASE, ZERO_STATS, type RsyncProgress, type RsyncStats } from './rsync.js';
import { createArgv, createFoldersArgv, createOptions, extractCommand, extractFoldersCommand, LIST_COMMAND, MAKE_AND_SHOW, readMadeFolder, routeNames, ShareDealer, TAR_STREAM } from './tar.js';
import { killReceivers, killSenders, stalledCopy, StallWatchdog } from './watchdog.js';

/** One filesystem's copy from its snapshot view into a folder on the target. */
export interface CopyJob {
  readonly origin: RemoteHost;
  readonly target: RemoteHost;
  /** The origin's name, for messages. */
  readonly originName: string;
  readonly view: SnapshotView;
  readonly unit: PlannedUnit;
  readonly channel: PushChannel;
  /** The folder on the target the copy goes into. */
  readonly dest: string;
  /** A folder on the copy's filesystem on the target, written out while tar streams run. */
  readonly flushDir: string;
  /** The same filesystem in the last recovery point, for rsync's --link-dest. */
  readonly linkDest?: string;
  /** rsync writes over the last copy: changes put in place at the end (a disks replica). */
  readonly delayUpdates?: boolean;
  /** exclude.paths of the spec, anchored at the origin's root. */
  readonly excludePaths: readonly string[];
  /** Files rmm writes in the copy itself (a replica that boots: its boot files as patterns, its adapted files as paths): neither sent nor deleted. */
  readonly keepOut?: { readonly patterns: readonly string[]; readonly paths: readonly string[] };
  /** Files sent but never deleted from the copy (patterns): the kernels a replica boots until its bootloader step. */
  readonly protect?: readonly string[];
  readonly bandwidthBytesPerSecond?: number;
  readonly parallelStreams: number;
  /** A copy that moves no data for this long has failed (policy stallTimeout). */
  readonly stallTimeoutMs: number;
  /** The walk that gives the view's manifest (tar streams' listing is the same walk). */
  readonly scan: ManifestScan;
  /**
   * Where the target keeps this copy's flags sidecar (src/sync/attributes.ts), in a folder that
   * exists; none: the flags are not recorded.
   */
  readonly attributesFile?: string;
  /**
   * The entries to send, NUL-terminated, relative to the filesystem (src/sync/delta.ts): the copy
   * already holds the rest. None: rsync walks the whole view and deletes what it does not hold.
   */
  readonly filesFrom?: Buffer;
  /**
   * With filesFrom: the flags of the entries that did not change, carried from the last point's
   * sidecar, and the entries whose flags are read (NUL-terminated, `./`-prefixed); none: a walk
   * reads every entry's.
   */
  readonly flagsSince?: { readonly carried: FlagMap; readonly names: Buffer };
  /**
   * With filesFrom: rsync writes a changed file in place (--inplace: only its changed blocks), for
   * a copy none of whose listed files another point shares (a btrfs snapshot, whose blocks are
   * copied on write; or files made reflinks of the point's, the others made anew from --link-dest's
   * basis). Needs rsync 3.1.3 or later on both hosts, which keeps holes with --sparse.
   */
  readonly inPlace?: boolean;
  /**
   * With filesFrom and inPlace: large files, each there already and no other point's, that a second
   * rsync writes in place beside the first (which sends filesFrom). Its writes change no folder's
   * entries, so the folders' times the first sets stay right.
   */
  readonly apart?: Buffer;
  /** Without filesFrom, into a copy that holds the last point's whole tree: see RsyncPlan deleteExcluded. */
  readonly deleteExcluded?: { readonly protectMounts: readonly string[] };
  /** A line for the operator about how the copy goes. */
  readonly note: (text: string) => void;
  /** Takes what the copy's processes say of how far they are. */
  readonly meter: CopyMeter;
}

/**
 * Copies one filesystem: by tar streams when the plan said so and the folder is empty (a first
 * copy), else by rsync (a later sync, or a first copy a killed run left half done). Returns the
 * copy's figures and, from tar streams' listing, the view's manifest.
 */
export async function copyFilesystem(job: CopyJob, folderEmpty: boolean): Promise<{ stats: RsyncStats; manifest?: string; listing?: Buffer }> {
  // The view holds still until it is released: its flags are read beside the copy.
  const since = job.flagsSince;
  const listed = job.attributesFile === undefined ? undefined : listFlags(job.origin, job.scan, job.view.sourcePath, since?.names);
  const flags = since ? listed?.then((l) => l && new Map([...since.carried, ...l])) : listed;
  flags?.catch(() => {}); // awaited below; a copy that fails first must not leave it unhandled
  const copied = await copyFiles(job, folderEmpty).catch(async (err: unknown) => {
    await flags?.catch(() => {}); // a walk inside the view keeps it busy: it ends before the view is released
    throw err;
  });
  if (flags) await recordFlags(job, job.attributesFile!, await flags);
  return copied;
}

async function recordFlags(job: CopyJob, file: string, flags: Map<string, string> | undefined): Promise<void> {
  if (!flags) {
    job.note(`copy ${job.unit.fs.mountPoint}: file attributes (chattr flags) not recorded: the origin has no lsattr (e2fsprogs)`);
    return;
  }
  await job.target.writeFileAtomic(file, formatSidecar(flags), { sudo: true, mode: 0o600 });
  if (flags.size > 0) job.note(`copy ${job.unit.fs.mountPoint}: file attributes of ${flags.size} entr${flags.size === 1 ? 'y' : 'ies'} recorded with the recovery point (not set on the replica's files)`);
}

async function copyFiles(job: CopyJob, folderEmpty: boolean): Promise<{ stats: RsyncStats; manifest?: string; listing?: Buffer }> {
  const { unit, view, channel } = job;
  const options = rsyncOptions({
    excludePaths: job.excludePaths,
    nestedMounts: unit.nestedMounts,
    relativePath: unit.relativePath,
    ...(job.bandwidthBytesPerSecond !== undefined ? { bandwidthBytesPerSecond: job.bandwidthBytesPerSecond } : {}),
    ...(job.linkDest !== undefined ? { linkDest: job.linkDest } : {}),
    ...(job.delayUpdates ? { delayUpdates: true } : {}),
    ...(job.keepOut ? { keepOut: job.keepOut.patterns, keepOutPaths: job.keepOut.paths } : {}),
    ...(job.protect ? { protect: job.protect } : {}),
    ...(job.deleteExcluded ? { deleteExcluded: true, protectMounts: job.deleteExcluded.protectMounts } : {}),
  });
  const transport = ['-e', channel.rsh, ...(channel.rsyncPath ? ['--rsync-path', channel.rsyncPath] : []), '--mkpath'];
  const source = `${view.sourcePath.replace(/\/$/, '')}/`;
  const destination = `${channel.destinationPrefix}${job.dest}/`;
  // 24: files vanished while copying; only possible without a snapshot, and the record says so.
  const okCodes = view.pointInTime ? [0] : [0, 24];
  // --timeout: a receiver that is gone (a full target's, a cut link's) never leaves the sender waiting.
  const stall = `--timeout=${Math.max(1, Math.round(job.stallTimeoutMs / 1000))}`;
  // This run's own snapshot only (an empty folder in the view): a user's file named like it is copied.
  const own = job.scan.ownSnapshot ? [`--exclude=/${job.scan.ownSnapshot}`] : [];
  // A list of entries: no walk of either tree, and nothing to delete (the copy holds only what stays).
  // Each listed entry changed by its change time, maybe with its size and time as they were (a file
  // rewritten, its time set back): --ignore-times compares its blocks instead of trusting them.
  const listFile = (part = '') => `${channel.workDir}/files-from-${unit.fs.mountPoint.replaceAll('/', '_')}${part}`;
  const listed = (file: string, inPlace: boolean) => [...RSYNC_BASE.filter((o) => o !== '--delete'), ...RECEIVER_XATTR_SKIP, `--files-from=${file}`, '--from0', '--ignore-times', ...(inPlace ? ['--inplace'] : [])];
  const argvOf = (base: readonly string[]) => ['rsync', ...base, stall, ...own, ...options, ...transport, source, destination];
  const run = async (argv: string[], onProgress?: (p: RsyncProgress) => void) => (await channel.allowRsync(argv), runRsync(job, argv, okCodes, onProgress));
  const rsync = () => run(argvOf(job.deleteExcluded ? [...RSYNC_BASE, ...RECEIVER_XATTR_SKIP] : RSYNC_BASE));

  job.note(`sync ${unit.fs.mountPoint} -> ${job.target.info.host}:${job.dest}`);
  const tar = unit.method.kind === 'tar' && folderEmpty;
  if (job.filesFrom) {
    // Large files written in place have an rsync of their own: the delta of each (both ends read it
    // whole, one after the other) runs beside the other files' instead of after them.
    const parts = [
      { list: job.filesFrom, file: listFile(), inPlace: job.inPlace === true },
      { list: job.inPlace && job.apart ? job.apart : Buffer.alloc(0), file: listFile('.large'), inPlace: true },
    ].filter((p) => p.list.length > 0);
    if (parts.length === 0) return { stats: ZERO_STATS };
    for (const p of parts) {
      const long = firstTooLong(p.list, source);
      if (long !== undefined) throw pathTooLong(job, long);
    }
    await Promise.all(parts.map((p) => job.origin.writeFileAtomic(p.file, p.list, { sudo: true, mode: 0o600 })));
    // Written out as it arrives (as tar streams are): PROMOTE's flush then finds little left.
    const flusher = await job.target.spawn(withLifeline(['sh', '-c', FLUSH_LOOP, 'rmm-flush', job.flushDir]), { sudo: true });
    flusher.channel.resume();
    try {
      const progress = summedProgress(parts.length, (p) => job.meter.rsync(p));
      // Both run to their end (or their stall timeout): a failed one fails the copy, after the other.
      const runs = await Promise.allSettled(parts.map((p, i) => run(argvOf(listed(p.file, p.inPlace)), (q) => progress(i, q))));
      const failed = runs.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      return { stats: runs.map((r) => (r as PromiseFulfilledResult<RsyncStats>).value).reduce(addStats) };
    } finally {
      flusher.channel.end();
      await flusher.exit;
    }
  }
  if (!tar) {
    const why = unit.method.kind === 'rsync' ? unit.method.why : job.parallelStreams > 1 ? 'a copy interrupted earlier is resumed' : '';
    if (why) job.note(`parallel ${unit.fs.mountPoint}: one rsync stream, as ${why}`);
    return { stats: await rsync() };
  }
  const streamed = await tarStreams(job);
  if (!streamed.needsRsync) return streamed;
  // The rsync pass counts every file itself.
  const stats = { ...streamed.stats, files: 0, bytesTotal: 0 };
  return { stats: addStats(stats, await rsync()), manifest: streamed.manifest, listing: streamed.listing };
}

async function tarStreams(job: CopyJob): Promise<{ stats: RsyncStats; needsRsync: boolean; manifest: string; listing: Buffer }> {
  const { origin, view, channel, dest, scan } = job;
  const mountPoint = view.unit.fs.mountPoint;
  const made = readMadeFolder((await job.target.exec(['sh', '-c', MAKE_AND_SHOW, 'rmm-dest', dest], { sudo: true })).stdout);
  const { acl } = made;
  const count = Math.max(1, job.parallelStreams);
  // Streams that give owners double the channels the copy may hold: up to 8 + 8, the lister, the
  // read-ahead and the freezes stay within the session's connections (src/transport/session.ts).
  // A tar that cannot give owners (a login that is not root, without sudo) needs no second kind.
  const tarGivesOwners = channel.sudo || job.target.info.user === 'root';
  const dealer = new ShareDealer(count, count <= 8 && tarGivesOwners ? made.tarUser : undefined);
  const how = acl === 'acls' ? ' (every entry\'s ACL set by tar, as the copy\'s folder inherits one)' : '';
  job.note(`copy ${mountPoint}: ${dealer.streams} tar stream(s) into an empty copy${how}`);
  const flusher = await job.target.spawn(withLifeline(['sh', '-c', FLUSH_LOOP, 'rmm-flush', job.flushDir]), { sudo: true });
  flusher.channel.resume();
  const streams: TarStream[] = [];
  const late: LateStream[] = [];
  const folders: Buffer[] = [];
  // The listing is the manifest's walk: its hash is the view's manifest (src/sync/manifest.ts), and
  // it is kept with the point for the next sync's comparison (src/sync/delta.ts).
  const digest = createHash('sha256');
  const listed: Buffer[] = [];
  const keep = { update: (chunk: string) => (listed.push(Buffer.from(chunk, 'latin1')), digest.update(chunk, 'latin1')) };
  let readAhead: Promise<RemoteProcess | undefined> | undefined;
  let lister: RemoteProcess | undefined;
  // A stream that fails ends the copy at once: the listing may be held, waiting for its window.
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // raced below
  const watchdog = new StallWatchdog(job.stallTimeoutMs, async () => {
    fail(stalledCopy(`copying ${mountPoint} of ${job.originName} to ${job.target.info.host}`, job.stallTimeoutMs));
    await killReceivers(job.target, dest);
    if (!channel.relayed) await killSenders(job.origin, channel.workDir);
  });
  // The archive bytes each stream sent so far, for progress.
  const sent: number[] = dealer.loads.map(() => 0);
  const onSent = (i: number) => (bytes: number) => {
    sent[i] = bytes;
    job.meter.sent(sent.reduce((a, b) => a + b, 0));
  };
  const listedSoFar = (complete: boolean) => job.meter.listed({ bytes: dealer.bytes, files: dealer.files + dealer.folders, archiveBytes: dealer.archiveBytes, complete });
  const open = (i: number): Promise<TarStream> => {
    const remote = extractCommand(dest, channel.sudo, acl, dealer.givesOwners(i));
    const status = `${channel.workDir}/tar-${i}-of-${mountPoint.replaceAll('/', '_')}.status`;
    return channel.relayed ? carriedStream(job, createArgv(view.sourcePath, acl), remote, watchdog, onSent(i)) : pushStream(origin, view.sourcePath, channel, remote, status, createOptions(acl), watchdog, onSent(i));
  };
  try {
    if (!channel.relayed) await channel.allowCommands(dealer.loads.map((_, i) => extractCommand(dest, channel.sudo, acl, dealer.givesOwners(i))));
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
      job.note(`copy ${mountPoint}: one more tar stream, for entries tar must give an owner`);
    };
    // Under a lifeline: when a stream fails, ending its stdin ends the walk, which holds the view.
    lister = await origin.spawn(withLifeline(['sh', '-c', LIST_COMMAND, 'rmm-list', view.sourcePath, ...findArgs(scan)]), { sudo: true });
    // Not awaited: the listing must never wait for the read-ahead, nor for a channel for it.
    readAhead = origin.spawn(prefetchArgv(view.sourcePath), { sudo: true }).then(
      (p) => (p.channel.resume(), p),
      () => undefined,
    );
    routeNames(lister.channel, streams.map((s) => s.names), dealer, { prefetch: new PrefetchFeed(readAhead.then((p) => p?.channel)), onOpen, digest: keep, ...(acl === 'xattrs' ? { folders } : {}) });
    lister.channel.on('data', () => listedSoFar(false)); // after the dealer took the chunk
    try {
      await Promise.race([lister.wait([0]), failed]);
      listedSoFar(true);
    } finally {
      for (const s of streams) s.names.end();
      lister.channel.end();
    }
    await Promise.race([Promise.all(streams.map((s) => s.done)), failed]);
    flusher.channel.end(); // its last write-out runs beside the folders pass
    if (acl === 'xattrs') {
      // Small (three 512-byte blocks per folder), so carried by rmm in either transfer, without another login.
      const pass = await carriedStream(job, createFoldersArgv(view.sourcePath), extractFoldersCommand(dest, channel.sudo), watchdog);
      streams.push(pass);
      for (const names of folders) pass.names.write(names);
      pass.names.end();
      await pass.done;
    }
  } catch (err) {
    for (const s of streams) s.names.destroy();
    if (err instanceof RemoteCommandError) throw copyFailure(job, 'sync.tar', err);
    throw err;
  } finally {
    await watchdog.stop(); // a stalled stream's tar on the target is killed before the copy fails
    // The read-ahead holds the view open: it must end before the view is released. (Its channel
    // comes at the latest when the streams' channels close.)
    const ahead = await readAhead;
    ahead?.channel.end();
    if (!flusher.channel.writableEnded) flusher.channel.end();
    const [, status] = await Promise.all([flusher.exit, ahead?.exit]);
    const failure = /rmm-prefetch: .*/.exec(status?.stderr ?? '')?.[0];
    if (failure) job.note(`read-ahead stopped on the origin (the copy is not affected): ${failure}`);
  }
  const stats = { ...ZERO_STATS, files: dealer.files + dealer.folders, filesTransferred: dealer.files, bytesTotal: dealer.bytes, bytesSent: dealer.bytes };
  return { stats, needsRsync: dealer.needsRsync, manifest: digest.digest('hex'), listing: Buffer.concat(listed) };
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
async function pushStream(origin: RemoteHost, source: string, channel: PushChannel, remote: string, status: string, create: readonly string[], watchdog: StallWatchdog, onSent: (bytes: number) => void): Promise<TarStream> {
  const proc = await origin.spawn(['sh', '-c', TAR_STREAM, 'rmm-tar', source, channel.rsh, channel.destination, remote, status, ...create], { sudo: true });
  watchdog.watch(proc.channel); // its stdout: the bytes it moved so far, when they change
  let pending = '';
  proc.channel.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('latin1')).split('\n');
    pending = lines.pop() ?? '';
    const written = /^\S+ (\d+)$/.exec(lines.at(-1) ?? '');
    if (written) onSent(Number(written[1]));
  });
  return { names: proc.channel, done: proc.wait([0]) };
}

/**
 * Relay: rmm carries the archive from tar's stdout on the origin to tar's stdin on the target, one
 * cipher layer per hop. Through the tunnel (which rsync uses), the origin's own ssh adds a second
 * layer on each side: bench first copies, two runs each back to back, by tunnel 12.5-12.7 s (small
 * files) and 12.1-12.2 s (large), carried 10.7-11.0 s and 8.8-10.2 s. (It measured no faster
 * earlier, while rmm still sent one SSH packet per file name.)
 */
async function carriedStream(job: Pick<CopyJob, 'origin' | 'target'>, create: string[], remote: string, watchdog: StallWatchdog, onSent?: (bytes: number) => void): Promise<TarStream> {
  const sink = await job.target.spawn(['sh', '-c', remote], { sudo: false });
  sink.channel.resume(); // nothing comes out, but ssh2 closes a channel only once its output is read
  const tar = await job.origin.spawn(create, { sudo: true }).catch((err: unknown) => {
    sink.channel.destroy(); // its tar -x waits for an archive that will not come
    throw err;
  });
  // pipe() ends the target's stdin at the archive's EOF, and not before: the exit status may arrive first.
  tar.channel.pipe(sink.channel);
  watchdog.watch(tar.channel);
  if (onSent) {
    let bytes = 0;
    tar.channel.on('data', (chunk: Buffer) => onSent((bytes += chunk.length)));
  }
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

/** rsync's figures of several streams at once, as one: each stream's last, added up. */
function summedProgress(streams: number, report: (p: RsyncProgress) => void): (stream: number, p: RsyncProgress) => void {
  if (streams === 1) return (_, p) => report(p);
  const last: (RsyncProgress | undefined)[] = new Array(streams).fill(undefined);
  return (stream, p) => {
    last[stream] = p;
    const all = last.filter((q): q is RsyncProgress => q !== undefined);
    const sum = (f: (q: RsyncProgress) => number) => all.reduce((n, q) => n + f(q), 0);
    report({ ...p, bytes: sum((q) => q.bytes), files: sum((q) => q.files), checked: sum((q) => q.checked ?? q.files), bytesPerSecond: sum((q) => q.bytesPerSecond), listed: false });
  };
}

async function runRsync(job: CopyJob, argv: string[], okCodes: number[], onProgress: (p: RsyncProgress) => void = (p) => job.meter.rsync(p)): Promise<RsyncStats> {
  const proc = await job.origin.spawn(withLifeline(argv), { sudo: true });
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
      if (p) onProgress(p);
    }
  });
  try {
    await proc.wait(okCodes);
    proc.channel.end();
  } catch (err) {
    if (err instanceof RemoteCommandError) throw copyFailure(job, 'sync.rsync', err);
    throw err;
  }
  return parseRsyncStats(output);
}


/** A failed copy, named by its cause where the output shows one: the target full, the copy stalled. */
function copyFailure(job: CopyJob, code: string, err: RemoteCommandError): RmmError {
  const what = `copying ${job.unit.fs.mountPoint} of ${job.originName} to ${job.target.info.host}`;
  // GNU tar -x reports a full disk as a short write of the file it extracts (`tar: ./f: Wrote only
  // 100864 of 1048576 bytes`); the archive's own short write names `-` instead.
  if (/No space left on device|Disk quota exceeded|tar: (?!-: )[^\n]*: Wrote only \d+ of \d+ bytes/.test(err.stderr + err.stdout)) {
    return new RmmError('target.full', `${what} failed: the target is full (no space left on ${job.target.info.host} for ${job.dest}); free space there or keep fewer recovery points, then apply again`, { cause: err });
  }
  const long = tooLong(err.stderr + err.stdout);
  if (long !== undefined) return pathTooLong(job, long, err);
  // rsync's exit code 30: no data moved for --timeout seconds.
  if (err.exitCode === 30) {
    return new RmmError('sync.stalled', `${what} failed: no data moved for ${Math.round(job.stallTimeoutMs / 1000)} s (policy stallTimeout); the target or the link between the hosts stopped answering`, { cause: err });
  }
  // The origin cannot reach the target itself: say what to check, and the transfer that needs no such path.
  if (!job.channel.relayed && UNREACHABLE.test(err.stderr)) {
    return new RmmError('sync.target_unreachable', `${what} failed: ${err.message}; check that ${job.origin.info.host} reaches ${job.target.info.host} on SSH, or set transfer: relay (the data then goes through rmm's host)`, { cause: err });
  }
  return new RmmError(code, `${what} failed: ${err.message}`, { cause: err });
}

/** Linux's PATH_MAX: rsync (MAXPATHLEN) and tar name each file by its path from the copy's folder, which must be shorter. */
const PATH_MAX = 4096;

function pathTooLong(job: CopyJob, path: string, cause?: unknown): RmmError {
  const what = `copying ${job.unit.fs.mountPoint} of ${job.originName} to ${job.target.info.host}`;
  const shown = path.length > 120 ? `${path.slice(0, 120)}...` : path;
  return new RmmError('sync.path_too_long', `${what} failed: a path there is ${PATH_MAX} bytes or longer (below ${job.unit.fs.mountPoint}), which neither rsync nor tar can copy: ${shown}; shorten it or leave it out (exclude.paths), then apply again`, cause === undefined ? {} : { cause });
}

/**
 * The first listed entry rsync could not name: its path from the view's folder reaches PATH_MAX
 * (rsync cuts such a name and reports it missing, so it is found before rsync starts).
 */
function firstTooLong(list: Buffer, source: string): string | undefined {
  const room = PATH_MAX - Buffer.byteLength(source);
  for (let from = 0; from < list.length; ) {
    const end = list.indexOf(0, from);
    if (end < 0) break;
    if (end - from >= room) return list.toString('latin1', from, Math.min(end, from + 120));
    from = end + 1;
  }
  return undefined;
}

/** The start of the path rsync or tar reported as too long, if either did. */
export function tooLong(output: string): string | undefined {
  // A list of entries (--files-from) names the path itself: rsync's sender cannot stat it.
  const m = /filename overflows max-path len by \d+: ([^\n]*)|^tar: ([^\n]*): Cannot (?:stat|open|open directory): File name too long|link_stat "([^\n]*)" failed: File name too long/m.exec(output);
  if (!m) return undefined;
  const path = m[1] ?? m[2] ?? m[3]!;
  return path.length > 120 ? `${path.slice(0, 120)}...` : path;
}
