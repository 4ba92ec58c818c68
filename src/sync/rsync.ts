import { posix } from 'node:path';

/** Options every copy uses: archive, hard links, ACLs, xattrs, sparse files, numeric owners, one filesystem. */
export const RSYNC_BASE = ['-aHAXS', '--numeric-ids', '--one-file-system', '--delete', '--stats', '--info=progress2', ...XATTR_SKIP()];

/**
 * The same filters given to the receiving rsync itself (`-M`). It learns the sender's filters only
 * with --delete; a copy of listed entries has none, and would then remove a new folder's
 * trusted.SGI_ACL_DEFAULT, which is its default ACL, right after setting it.
 */
export const RECEIVER_XATTR_SKIP: readonly string[] = XATTR_SKIP().map((f) => `-M${f}`);

/**
 * XFS shows its on-disk ACLs to root as trusted.SGI_ACL_* xattrs. rsync would compare and delete
 * them like any xattr, and deleting one deletes the ACL itself. These are the names libattr's
 * /etc/xattr.conf tells copy tools to skip.
 */
function XATTR_SKIP(): string[] {
  return ['trusted.SGI_ACL_*', 'trusted.SGI_CAP_FILE', 'trusted.SGI_DMI_*', 'trusted.SGI_MAC_FILE', 'xfsroot.*'].map((n) => `--filter=-x ${n}`);
}

export interface RsyncPlan {
  /** Paths (rsync patterns) anchored at the origin root, from the spec. */
  readonly excludePaths: readonly string[];
  /** Mount points inside this filesystem, relative to it: their contents are copied separately or not at all. */
  readonly nestedMounts: readonly string[];
  /** This filesystem's mount point relative to the origin root ('' for root). */
  readonly relativePath: string;
  readonly bandwidthBytesPerSecond?: number;
  /** The previous recovery point's copy of this filesystem, for --link-dest. */
  readonly linkDest?: string;
  /**
   * Changed files put in place and deletions made only once every file has arrived: a copy written
   * over the last one (a disks replica) stays that copy if the transfer stops halfway.
   */
  readonly delayUpdates?: boolean;
  /** rsync patterns anchored at the origin root of files rmm writes in the copy itself: neither sent nor deleted. */
  readonly keepOut?: readonly string[];
  /** The same, as literal paths (a `*` in one is a character of its name). */
  readonly keepOutPaths?: readonly string[];
  /** rsync patterns anchored at the origin root of files sent but never deleted from the copy (the kernels a replica may boot until its bootloader step). */
  readonly protect?: readonly string[];
  /**
   * The copy holds the last point's whole tree (a btrfs snapshot of it), walked in full: what the
   * view excludes now (a path, a mount no longer copied) is deleted from it too (--delete-excluded),
   * but for `protectMounts`, mount points (relative to this filesystem) that other copies fill.
   */
  readonly deleteExcluded?: boolean;
  readonly protectMounts?: readonly string[];
}

/**
 * Whether `rsync --version`'s output names a version at least `least` ([major, minor, patch]).
 * 3.1.3 is the first whose --inplace keeps --sparse's holes (it punches them).
 */
export function rsyncAtLeast(versionOutput: string, least: readonly [number, number, number] = [3, 1, 3]): boolean {
  const m = /^rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)/m.exec(versionOutput);
  if (!m) return false;
  const have = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) if (have[i] !== least[i]) return have[i]! > least[i]!;
  return true;
}

/** Options specific to one filesystem's copy: exclusions re-anchored at its mount point, link-dest, bandwidth. */
export function rsyncOptions(plan: RsyncPlan): string[] {
  const args: string[] = [];
  for (const nested of plan.nestedMounts) args.push(`--exclude=/${escapePattern(nested)}/*`);
  for (const anchored of reanchorAll(plan.excludePaths, plan.relativePath)) args.push(`--exclude=${anchored}`);
  for (const anchored of reanchorAll(plan.keepOut ?? [], plan.relativePath)) args.push(`--exclude=${anchored}`);
  for (const anchored of reanchorAll(plan.keepOutPaths ?? [], plan.relativePath)) args.push(`--exclude=${literalPattern(anchored)}`);
  for (const anchored of reanchorAll(plan.protect ?? [], plan.relativePath)) args.push(`--filter=P ${anchored}`);
  for (const m of plan.protectMounts ?? []) args.push(`--filter=P /${escapePattern(m)}/*`);
  if (plan.deleteExcluded) args.push('--delete-excluded');
  if (plan.bandwidthBytesPerSecond !== undefined) args.push(`--bwlimit=${Math.max(1, Math.floor(plan.bandwidthBytesPerSecond / 1024))}`);
  if (plan.linkDest !== undefined) args.push(`--link-dest=${plan.linkDest}`);
  if (plan.delayUpdates) args.push('--delay-updates', '--delete-delay');
  return args;
}

/** A path as an rsync pattern matching that name only: rsync reads a backslash as an escape only in a pattern that has a wildcard. */
export function literalPattern(path: string): string {
  return /[*?[]/.test(path) ? escapePattern(path) : path;
}

/** Wildcard characters and backslashes of a path escaped, for a pattern that has wildcards of its own. */
function escapePattern(path: string): string {
  return path.replace(/[\\*?[]/g, (c) => `\\${c}`);
}

/**
 * A pattern anchored at the origin root, seen from a filesystem mounted at `relativePath`.
 * Unanchored patterns apply everywhere; anchored ones only where they fall inside this filesystem.
 */
export function reanchor(pattern: string, relativePath: string): string | undefined {
  if (!pattern.startsWith('/')) return pattern;
  if (relativePath === '') return pattern;
  const prefix = `/${relativePath}`;
  if (pattern === prefix || pattern === `${prefix}/`) return undefined; // the whole filesystem: exclude.mounts says that
  if (pattern.startsWith(`${prefix}/`)) return pattern.slice(prefix.length);
  return undefined;
}

/** The patterns that apply inside a filesystem mounted at `relativePath`, re-anchored there. */
export function reanchorAll(patterns: readonly string[], relativePath: string): string[] {
  return patterns.map((p) => reanchor(p, relativePath)).filter((p): p is string => p !== undefined);
}

export function targetDir(pointDir: string, relativePath: string): string {
  return relativePath === '' ? pointDir : posix.join(pointDir, relativePath);
}

export interface RsyncStats {
  readonly files: number;
  readonly filesTransferred: number;
  readonly bytesTotal: number;
  readonly bytesTransferred: number;
  readonly literalBytes: number;
  readonly matchedBytes: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** Parses rsync's --stats block (numbers may carry thousands separators). */
export function parseRsyncStats(output: string): RsyncStats {
  const num = (label: string): number => {
    const m = new RegExp(`^${label}: ([\\d,.]+)`, 'm').exec(output);
    return m ? Number(m[1]!.replace(/[,.](?=\d{3}\b)/g, '')) : 0;
  };
  return {
    files: num('Number of files'),
    filesTransferred: num('Number of regular files transferred'),
    bytesTotal: num('Total file size'),
    bytesTransferred: num('Total transferred file size'),
    literalBytes: num('Literal data'),
    matchedBytes: num('Matched data'),
    bytesSent: num('Total bytes sent'),
    bytesReceived: num('Total bytes received'),
  };
}

export function addStats(a: RsyncStats, b: RsyncStats): RsyncStats {
  const keys = Object.keys(a) as (keyof RsyncStats)[];
  return Object.fromEntries(keys.map((k) => [k, a[k] + b[k]])) as unknown as RsyncStats;
}

export const ZERO_STATS: RsyncStats = {
  files: 0,
  filesTransferred: 0,
  bytesTotal: 0,
  bytesTransferred: 0,
  literalBytes: 0,
  matchedBytes: 0,
  bytesSent: 0,
  bytesReceived: 0,
};

export interface RsyncProgress {
  readonly bytes: number;
  readonly percent: number;
  readonly rate: string;
  readonly eta: string;
  /** The rate and the time left as numbers (rsync's kB/s, MB/s and GB/s are of 1,024). */
  readonly bytesPerSecond: number;
  readonly etaSeconds: number;
  /** Files transferred so far (rsync's xfr#). */
  readonly files: number;
  /**
   * rsync has listed every file (`to-chk`), so its percent is of the whole transfer; while it still
   * walks the tree (`ir-chk`, incremental recursion) it is only of what it found so far.
   */
  readonly listed: boolean;
  /**
   * Entries rsync has checked so far, sent or found unchanged (of its `to-chk=LEFT/ALL`: ALL - LEFT),
   * and all it listed so far; none on a line without them.
   */
  readonly checked?: number;
  readonly listedEntries?: number;
}

const RATE_UNITS: Readonly<Record<string, number>> = { 'B/s': 1, 'kB/s': 1024, 'MB/s': 1024 ** 2, 'GB/s': 1024 ** 3, 'TB/s': 1024 ** 4 };

/** Parses one --info=progress2 line: `  1,234,567  45%   12.34MB/s    0:00:10 (xfr#10, to-chk=5/100)`. */
export function parseProgress(line: string): RsyncProgress | undefined {
  const m = /^\s*([\d,]+)\s+(\d+)%\s+(\S+)\s+(\d+:\d{2}:\d{2})(?:\s+\(xfr#(\d+)(?:, (ir|to)-chk=(\d+)\/(\d+))?)?/.exec(line);
  if (!m) return undefined;
  const rate = /^([\d.]+)([kMGT]?B\/s)$/.exec(m[3]!);
  const [h, min, sec] = m[4]!.split(':').map(Number) as [number, number, number];
  return {
    bytes: Number(m[1]!.replace(/,/g, '')),
    percent: Number(m[2]),
    rate: m[3]!,
    eta: m[4]!,
    bytesPerSecond: rate ? Math.round(Number(rate[1]) * RATE_UNITS[rate[2]!]!) : 0,
    etaSeconds: h * 3600 + min * 60 + sec,
    files: Number(m[5] ?? 0),
    listed: m[6] === 'to',
    ...(m[7] !== undefined ? { checked: Number(m[8]) - Number(m[7]), listedEntries: Number(m[8]) } : {}),
  };
}
