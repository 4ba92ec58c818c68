import type { RemoteHost } from '../transport/index.js';
import { RmmError } from '../errors.js';

/**
 * A filesystem's manifest is one hash over every entry's inode number, change time, modification
 * time, size, mode, owner, group, link count, type and path. Linux sets an inode's change time
 * (ctime) on every write, chmod, chown, ACL or xattr change, link, unlink and rename, and user
 * space cannot set it back. So if a filesystem's manifest now equals the one taken of the view a
 * recovery point was copied from, no entry changed since: the point still equals the origin, and
 * the sync can be a verification instead of a copy. It costs one lstat per entry on the origin
 * (about 0.25 s per 100,000 files with a warm cache), and 64 hex digits on the wire.
 *
 * The same filesystem seen live and through its snapshot must give the same manifest, so entries
 * that differ between the two views by construction are named without their attributes: the root
 * (rmm's own snapshot entries change its times), mount points (live, another filesystem's root;
 * in a snapshot, an empty folder) and btrfs subvolume roots (inode 256; in a snapshot, an empty
 * folder with inode 2). rmm's snapshots are left out.
 */
export interface ManifestScan {
  /** Where to scan: a live mount point, or a snapshot's view of it. */
  readonly dir: string;
  readonly fsType: string;
  /** Every mount point below the filesystem's (relative to it), of any type. */
  readonly mountPoints: readonly string[];
  /** exclude.paths re-anchored at this filesystem: those that can be pruned safely are. */
  readonly excludePaths: readonly string[];
  /** A name at the filesystem's top that is rmm's, not the origin's: this run's btrfs snapshot. */
  readonly ownSnapshot?: string;
}

export function findArgs(scan: ManifestScan): string[] {
  const { skipped, named } = walkFilters(scan);
  return [
    'find', '.', '-xdev',
    '(', '-path', '.', '-printf', 'root %m %U %G\\0', ')',
    '-o', '(', ...skipped, ')', '-prune',
    '-o', '(', ...named, '-false', ')', '-printf', 'mount %p\\0', '-prune',
    '-o', '-printf', '%i %C@ %T@ %s %m %U %G %n %y %p\\0',
  ];
}

/**
 * find's tests for what a walk of the view leaves out (`skipped`: rmm's own snapshot, prunable
 * exclusions) and what it names without attributes (`named`, each test followed by `-o`: mount
 * points, btrfs subvolume roots). Other walks of a view (the flags listing) skip the same.
 */
export function walkFilters(scan: ManifestScan): { skipped: string[]; named: string[] } {
  const named: string[] = [];
  for (const m of scan.mountPoints) named.push('-path', `./${escapeGlob(m)}`, '-o');
  if (scan.fsType === 'btrfs') named.push('(', '-type', 'd', '(', '-inum', '256', '-o', '-inum', '2', ')', ')', '-o');
  // Only this run's own snapshot: a user's file named like rmm's snapshots is the origin's, and copied.
  const skipped: string[] = scan.ownSnapshot ? ['-path', `./${escapeGlob(scan.ownSnapshot)}`] : ['-false'];
  for (const p of scan.excludePaths.map(prunable)) if (p) skipped.push('-o', ...p);
  return { skipped, named };
}

/**
 * The find test for an exclude.paths pattern, only where find prunes exactly what rsync skips (or
 * less): an anchored path without wildcards, optionally ending in `/`, `/*` or `/**`. A pattern
 * that is not pruned only makes the manifest see more, so a change there costs a copy, not a miss.
 */
export function prunable(pattern: string): string[] | undefined {
  const m = /^\/([^*?[\\]+?)(\/|\/\*|\/\*\*)?$/.exec(pattern);
  if (!m) return undefined;
  const path = `./${escapeGlob(m[1]!.replace(/\/+$/, ''))}`;
  switch (m[2]) {
    case undefined:
      return ['-path', path];
    case '/':
      return ['(', '-path', path, '-type', 'd', ')'];
    default:
      // rsync skips the folder's entries (and so all below); find's `*` crosses `/`, so the same set.
      return ['-path', `${path}/*`];
  }
}

/** A path as a find -path pattern matching that name only. */
export function escapeGlob(path: string): string {
  return path.replace(/[*?[\]\\]/g, '\\$&');
}

// $1 where the walk's records are kept, gzipped ('': not kept), $2 directory, then the find command.
// One hash line out; a failed walk says so on stderr. /run is memory: 100,000 records take ~10 MB,
// ~2.5 MB gzipped.
const HASH_ONE = `k=$1; cd "$2" && shift 2 || exit
if [ -z "$k" ]; then { "$@" || echo rmm-walk-failed >&2; } | sha256sum; exit; fi
umask 077
exec 4>&1
{ { "$@" || echo rmm-walk-failed >&2; } | tee /dev/fd/3 | sha256sum >&4; } 3>&1 | gzip -1 > "$k"`;

export class ManifestError extends RmmError {}

/**
 * Hashes each scan's manifest on the origin, in parallel over one connection; `keepAs`: files on the
 * origin (in /run) where a scan's records are kept too, gzipped, for a copy to read. A walk that failed
 * (an entry vanished from a live view, an unreadable folder) gives undefined: no manifest, so the
 * next sync copies.
 */
export async function scanManifests(origin: RemoteHost, scans: readonly ManifestScan[], keepAs: readonly (string | undefined)[] = []): Promise<(string | undefined)[]> {
  // Every walk ends before this does, even when one fails: a walk inside a view keeps it mounted.
  const settled = await Promise.allSettled(
    scans.map(async (scan, i) => {
      const res = await origin.exec(['sh', '-c', HASH_ONE, 'rmm-manifest', keepAs[i] ?? '', scan.dir, ...findArgs(scan)], { sudo: true, timeoutMs: 3_600_000, allowFailure: true });
      if (res.exitCode !== 0 || res.stderr.includes('rmm-walk-failed')) return undefined;
      const hash = /^([0-9a-f]{64})\b/.exec(res.stdout)?.[1];
      if (!hash) throw new ManifestError('manifest.unreadable', `${origin.info.host}: cannot read the manifest of ${scan.dir}: ${res.stdout.slice(0, 200)}`);
      return hash;
    }),
  );
  return settled.map((s) => {
    if (s.status === 'rejected') throw s.reason;
    return s.value;
  });
}

// $1 directory, then the find command: its records as they are, for rmm to hash and keep.
const LIST_ONE = `cd "$1" && shift && { "$@" || echo rmm-walk-failed >&2; }`;

/**
 * The walk's records themselves (the view's listing, src/sync/delta.ts), whose sha256 is the
 * manifest scanManifests gives. Undefined when the walk failed.
 */
export async function listView(origin: RemoteHost, scan: ManifestScan): Promise<Buffer | undefined> {
  const proc = await origin.spawn(['sh', '-c', LIST_ONE, 'rmm-list', scan.dir, ...findArgs(scan)], { sudo: true });
  const chunks: Buffer[] = [];
  proc.channel.on('data', (chunk: Buffer) => chunks.push(chunk));
  const status = await proc.exit;
  if (status.exitCode !== 0 || status.stderr.includes('rmm-walk-failed')) return undefined;
  return Buffer.concat(chunks);
}
