import type { Readable, Writable } from 'node:stream';
import { shellJoin } from '../transport/quote.js';
import type { PrefetchFeed } from './prefetch.js';

/**
 * A first copy into an empty folder needs none of rsync's comparing: it is bound by per-file work
 * on both sides, which several `tar | ssh | tar` streams over disjoint shares of the files spread
 * over the cores. Measured on the bench's 100,000 small files (2 cores): one rsync 14-20 s, one
 * tar stream 16.8 s, two 10.6 s; 4 x 512 MiB: one stream 5.4 s, two with 1 MiB records 3.8 s.
 *
 * The names reach each tar on its stdin while `find` walks the tree, so the streams start at
 * once instead of after a listing. tar carries every file with its owner, mode, nanosecond
 * mtime, ACLs, xattrs, holes and hard links (all names of an inode go to one stream). Every folder
 * goes to every stream ahead of what it holds, so no folder's time is left wrong: a tar sets the
 * times of the folders it unpacked after it last wrote into them (when it leaves them, or at its
 * end), so whichever stream writes into a folder last also sets its time after that. Folders'
 * default ACLs come last, in a pass over the folders once every stream has ended (see AclMode).
 * tar skips sockets, so an rsync pass follows when there are any. Entries that tar must give an
 * owner go to streams of their own (see ShareDealer).
 */

export interface ListedFile {
  readonly path: string;
  /** find's %y: d, f, l, b, c, p, s. */
  readonly type: string;
  readonly size: number;
  readonly inode: string;
  readonly links: number;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits, setuid, setgid and sticky included. */
  readonly mode: number;
}

// $1 source dir, then the manifest's find (src/sync/manifest.ts findArgs): every entry but rmm's
// snapshots, folders before what they hold, NUL-terminated records; the streams need nothing else,
// and its hash is the view's manifest.
export const LIST_COMMAND = 'cd "$1" && shift && exec "$@"';

/**
 * One record of the manifest's find: `root MODE UID GID` for the folder itself, `mount PATH` for a
 * mount point (a folder, pruned), else `INODE CTIME MTIME SIZE MODE UID GID LINKS TYPE PATH`.
 */
export function parseEntry(record: string): ListedFile | undefined {
  const m = /^(\d+) \S+ \S+ (\d+) ([0-7]+) (\d+) (\d+) (\d+) (\S) (.*)$/s.exec(record);
  if (m) return { inode: m[1]!, size: Number(m[2]), mode: parseInt(m[3]!, 8), uid: Number(m[4]), gid: Number(m[5]), links: Number(m[6]), type: m[7]!, path: m[8]! };
  const root = /^root ([0-7]+) (\d+) (\d+)$/.exec(record);
  if (root) return { path: '.', type: 'd', size: 0, inode: '', links: 2, mode: parseInt(root[1]!, 8), uid: Number(root[2]), gid: Number(root[3]) };
  // A mount point's own attributes are another filesystem's: only that it is a folder counts here.
  const mount = /^mount (.*)$/s.exec(record);
  return mount ? { path: mount[1]!, type: 'd', size: 0, inode: '', links: 2, mode: 0o755, uid: 0, gid: 0 } : undefined;
}

/** Who the target's tar runs as: what it creates is this user's and group's, unless its folder is setgid. */
export interface TarUser {
  readonly uid: number;
  readonly gid: number;
}

/** Splits a stream of NUL-terminated records that arrive in chunks of any size. */
export class RecordSplitter {
  #pending = '';

  push(chunk: string, onRecord: (record: string) => void): void {
    const parts = (this.#pending + chunk).split('\0');
    this.#pending = parts.pop() ?? '';
    for (const p of parts) if (p) onRecord(p);
  }
}

/**
 * Deals entries to streams as they are listed: each to the least loaded, counting its bytes plus a
 * fixed cost for the metadata work every file needs; every name of a hard-linked inode to the
 * stream its inode hashes to, so tar links them.
 *
 * Given who the target's tar runs as, it also keeps apart the entries tar must give an owner. tar -x
 * as root gives every entry its owner with fchown, then its mode again with fchmod (as fchown may
 * clear setuid bits): 12% of tar -x's time on the bench's 100,000 files (perf), though what root
 * creates is root's already, as most of a system's files are. So the first `streams` streams unpack
 * with --no-same-owner and get only what comes out right that way: regular files and symlinks of
 * tar's own user and group, with one link, in no folder whose new entries take its group (setgid, or
 * below a setgid folder). Everything else goes to the next `streams` streams, which give owners as
 * before; each opens with the first entry dealt to it (`opened`), as many systems have few such.
 */
export class ShareDealer {
  /** One per stream: the streams that need not give owners first, when there are two kinds. */
  readonly loads: number[];
  readonly opened: boolean[];
  files = 0;
  folders = 0;
  bytes = 0;
  sockets = 0;
  /** The archive the entries dealt so far make, all streams together (see archiveCost). */
  archiveBytes = 0;
  /** Folders whose new entries take the folder's group: setgid ones and all below them. */
  readonly #groupFolders = new Set<string>();

  constructor(
    readonly streams: number,
    readonly tarUser?: TarUser,
  ) {
    const n = Math.max(1, streams);
    this.loads = new Array<number>(tarUser ? 2 * n : n).fill(0);
    this.opened = this.loads.map((_, i) => !tarUser || i < n);
  }

  /** Whether stream i gives every entry its owner (and so may take any entry). */
  givesOwners(i: number): boolean {
    return !this.tarUser || i >= this.loads.length / 2;
  }

  /**
   * The streams an entry goes to. A folder goes to every open stream, ahead of its files: tar
   * creating missing parents itself races with another tar doing the same (GNU tar 1.34: "Cannot
   * open: No such file or directory" in 29 of 30 tries with two streams), while a folder entry that
   * exists already is fine. A stream opened later gets the folders listed before it first.
   */
  route(file: ListedFile): number[] {
    if (file.type !== 'd') return [this.deal(file)];
    this.folders++;
    if (this.tarUser && ((file.mode & 0o2000) !== 0 || this.#groupFolders.has(parentOf(file.path)))) this.#groupFolders.add(file.path);
    const to = this.loads.flatMap((_, i) => (this.opened[i] ? [i] : []));
    this.archiveBytes += to.length * archiveCost(0);
    return to;
  }

  deal(file: ListedFile): number {
    const PER_FILE_COST = 64 * 1024;
    const half = this.loads.length / 2;
    const [from, to] = !this.tarUser ? [0, this.loads.length] : this.#createsRight(file) ? [0, half] : [half, this.loads.length];
    const i = file.links > 1 ? from + (hash(file.inode) % (to - from)) : this.#leastLoaded(from, to);
    // A stream that opens now first gets every folder listed so far (routeNames).
    if (!this.opened[i]) this.archiveBytes += this.folders * archiveCost(0);
    this.opened[i] = true;
    this.loads[i]! += file.size + PER_FILE_COST;
    this.files++;
    this.bytes += file.size;
    this.archiveBytes += archiveCost(file.type === 'f' ? file.size : 0);
    if (file.type === 's') this.sockets++;
    return i;
  }

  /** An rsync pass after the streams is needed only for what tar skips: sockets. */
  get needsRsync(): boolean {
    return this.sockets > 0;
  }

  #leastLoaded(from: number, to: number): number {
    let best = from;
    for (let i = from + 1; i < to; i++) if (this.loads[i]! < this.loads[best]!) best = i;
    return best;
  }

  /** Whether tar --no-same-owner creates the entry with its owner and group. */
  #createsRight(file: ListedFile): boolean {
    const user = this.tarUser!;
    return (file.type === 'f' || file.type === 'l') && file.links === 1 && file.uid === user.uid && file.gid === user.gid && !this.#groupFolders.has(parentOf(file.path));
  }
}

/**
 * What an entry adds to a stream's archive: a pax header (its nanosecond mtime: two 512-byte
 * blocks), its own header, and its data padded to 512 bytes. Longer for long names and xattrs, and
 * each stream's end is padded to a whole record: an estimate, for progress only.
 */
export function archiveCost(size: number): number {
  return 3 * 512 + Math.ceil(size / 512) * 512;
}

function parentOf(path: string): string {
  return path.slice(0, Math.max(0, path.lastIndexOf('/')));
}

export interface RouteExtras {
  /** Where the regular files' names also go, in the same order, to be read ahead. */
  readonly prefetch?: PrefetchFeed;
  /** Collects the folders' names for the folders pass, NUL-terminated, one Buffer per chunk of the listing. */
  readonly folders?: Buffer[];
  /** Called when the dealer first deals to a stream that was not open: its sink must start taking names. */
  readonly onOpen?: (stream: number) => void;
  /** Takes the listing's bytes as they come. */
  readonly digest?: { update(data: string, encoding: 'latin1'): unknown };
}

/**
 * Deals the lister's records to the streams' stdin as they arrive: one write per stream per chunk
 * of the listing (a write per name made one SSH packet per name: 1.1 s of rmm's CPU and 2 s of the
 * origin's sshd for 100,000 files), and the listing paused while any stream has a full window.
 */
export function routeNames(listing: Readable, sinks: readonly Writable[], dealer: ShareDealer, { prefetch, folders, onOpen, digest }: RouteExtras = {}): void {
  const records = new RecordSplitter();
  // Kept for the folders pass, and for streams that open late.
  const kept = folders ?? (dealer.tarUser ? [] : undefined);
  const started = [...dealer.opened];
  // latin1 maps bytes to characters one to one: names that are not UTF-8 reach tar unchanged.
  listing.setEncoding('latin1');
  listing.on('data', (chunk: string) => {
    digest?.update(chunk, 'latin1');
    const batches: string[][] = sinks.map(() => []);
    const readAhead: string[] = [];
    const folderNames: string[] = [];
    records.push(chunk, (record) => {
      const entry = parseEntry(record);
      if (!entry) return;
      for (const i of dealer.route(entry)) {
        if (!started[i]) {
          // Every folder listed so far, ahead of its first entry: the same order as the others got.
          started[i] = true;
          for (const b of kept ?? []) batches[i]!.push(b.toString('latin1'));
          for (const name of folderNames) batches[i]!.push(name);
          onOpen?.(i);
        }
        batches[i]!.push(entry.path, '\0');
      }
      if (entry.type === 'f' && entry.size > 0) readAhead.push(entry.path, '\0');
      else if (entry.type === 'd') folderNames.push(entry.path, '\0');
    });
    prefetch?.send(readAhead);
    // Copied out: a name sliced from the chunk would keep the whole chunk alive until the pass.
    if (kept && folderNames.length > 0) kept.push(Buffer.from(folderNames.join(''), 'latin1'));
    let full = 0;
    batches.forEach((batch, i) => {
      if (batch.length === 0 || sinks[i]!.write(Buffer.from(batch.join(''), 'latin1'))) return;
      full++;
      listing.pause();
      sinks[i]!.once('drain', () => --full === 0 && listing.resume());
    });
  });
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

// 1 MiB records: a tenth of the system calls of tar's default 10 KiB on each side of the pipe.
const RECORD = ['-b', '2048'];
const DEFAULT_ACL = 'system.posix_acl_default';
// --xattrs makes it POSIX (pax) format, which keeps nanosecond mtimes; atime and ctime are not
// copied. Names on stdin. XFS also shows root an ACL as trusted.SGI_ACL_*: sent once, as system.*.
const NAMES_IN = ['--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--xattrs', '--xattrs-exclude=trusted.SGI_*', '--xattrs-exclude=xfsroot.*', '--no-recursion', '--null', '--verbatim-files-from', '-T', '-'];
const XATTRS_IN = ['--xattrs', '--xattrs-include=*', '--xattrs-exclude=trusted.SGI_*', '--xattrs-exclude=xfsroot.*'];

/**
 * How the streams carry ACLs. 'xattrs': as the xattrs they are (system.posix_acl_access and
 * _default). tar's --acls makes tar -x set an ACL on every entry, one built from its mode when the
 * archive has none: a setxattr per file (bench, 100,000 small files, caches dropped, 4 pairs:
 * 9.10 s -> 8.47 s, 1.1 CPU-s less). Without it, a file the origin keeps without an ACL in a folder
 * with a default ACL would inherit one if another stream had already set that folder's, so default
 * ACLs are left out of the streams and set by the folders pass after every stream has ended. That
 * holds only while nothing above the copy hands its entries an ACL: when the copy's folder inherits
 * one (a default ACL on the target's storage), 'acls': every entry's ACL set by --acls, as the
 * origin has it or from its mode, replacing what it inherited; no folders pass.
 */
export type AclMode = 'xattrs' | 'acls';

const CREATE: Record<AclMode, string[]> = {
  xattrs: ['-c', ...RECORD, '--sparse', ...NAMES_IN],
  acls: ['-c', ...RECORD, '--sparse', '--acls', ...NAMES_IN],
};
const EXTRACT: Record<AclMode, string[]> = {
  xattrs: ['-x', ...RECORD, '--read-full-records', '-p', '--numeric-owner', ...XATTRS_IN, `--xattrs-exclude=${DEFAULT_ACL}`],
  acls: ['-x', ...RECORD, '--read-full-records', '-p', '--numeric-owner', '--acls', ...XATTRS_IN],
};
// The folders pass: every folder again with its owner, mode and times (the same values) and, of its
// xattrs, only its default ACL.
const CREATE_FOLDERS = ['-c', ...NAMES_IN, `--xattrs-include=${DEFAULT_ACL}`];
const EXTRACT_FOLDERS = ['-x', '-p', '--numeric-owner', '--xattrs', `--xattrs-include=${DEFAULT_ACL}`];

/** tar -c's options for a stream: names on stdin, the archive on stdout (with `-f -`). */
export function createOptions(acl: AclMode): string[] {
  return CREATE[acl];
}

/** tar on the origin for a stream rmm carries itself (relay): names on stdin, the archive on stdout. */
export function createArgv(source: string, acl: AclMode): string[] {
  return ['tar', '-C', source, ...CREATE[acl], '-f', '-'];
}

/**
 * The command the target's shell runs for one stream: unpack stdin into the folder (made by
 * MAKE_AND_SHOW); without `givesOwners`, every entry stays who tar runs as (see ShareDealer).
 */
export function extractCommand(dest: string, sudo: boolean, acl: AclMode, givesOwners = true): string {
  return untar(givesOwners ? EXTRACT[acl] : EXTRACT[acl].map((o) => (o === '--numeric-owner' ? '--no-same-owner' : o)), dest, sudo);
}

/** The folders pass on the origin: folder names on stdin, their archive on stdout. */
export function createFoldersArgv(source: string): string[] {
  return ['tar', '-C', source, ...CREATE_FOLDERS, '-f', '-'];
}

/** The folders pass on the target: unpacks stdin over the folders the streams made. */
export function extractFoldersCommand(dest: string, sudo: boolean): string {
  return untar(EXTRACT_FOLDERS, dest, sudo);
}

// $1 the copy's folder, made once before the streams, then listed as `ls -ldn` does, which marks an
// entry with an ACL by a `+` after its mode (coreutils: any ACL beyond the mode, access or default);
// then who runs it (run as the streams' tar is), user and group; then the owner of a file made in a
// folder of another group, `unknown` if that could not be tried. Tried rather than read from the
// mount options: ext4 hides a grpid that is the superblock's default, and NFS, FUSE or an overlay
// decide owners by rules of their own.
export const MAKE_AND_SHOW = `mkdir -p -- "$1" && ls -ldn -- "$1" && id -u && id -g || exit
p=$(mktemp -d "$1/.rmm-probe.XXXXXX") || { echo unknown; exit 0; }
{ chgrp -- "$(( $(id -g) + 1 ))" "$p" && : > "$p/f" && stat -c %u:%g -- "$p/f"; } || echo unknown
rm -rf -- "$p"`;

/** Whether `ls -ld`'s (or `ls -ldn`'s) line shows an ACL on the entry. */
export function showsAcl(lsLine: string): boolean {
  return /^\S{10}\+/.test(lsLine);
}

/**
 * What MAKE_AND_SHOW's output means for the streams: how they carry ACLs, and who their tar runs as
 * when entries it creates take that user and group (in xattrs mode, the copy's folder not setgid,
 * and a file made in a folder of another group came out tar's own, as it does where the filesystem
 * is not mounted `grpid`).
 */
export function readMadeFolder(stdout: string): { acl: AclMode; tarUser?: TarUser } {
  const [ls = '', uid = '', gid = '', probe = ''] = stdout.split('\n');
  const acl: AclMode = showsAcl(ls) ? 'acls' : 'xattrs';
  const setgid = /^\S{6}[sS]/.test(ls);
  if (acl === 'acls' || setgid || !/^\d+$/.test(uid) || !/^\d+$/.test(gid) || probe !== `${uid}:${gid}`) return { acl };
  return { acl, tarUser: { uid: Number(uid), gid: Number(gid) } };
}

function untar(options: readonly string[], dest: string, sudo: boolean): string {
  return shellJoin([...(sudo ? ['sudo', '-n'] : []), 'tar', ...options, '-C', dest, '-f', '-']);
}

// $1 source dir, $2 the ssh command (words), $3 user@host, $4 the target's command, $5 a file for
// tar's own status (sh has no pipefail), in rmm's work folder; then tar -c's options. Names on
// stdin; their end ends the stream, so a lost rmm ends it too. On stdout, for rmm's stall watchdog
// (src/sync/watchdog.ts), the bytes tar has read and written so far, each second they changed, then
// the archive bytes it wrote, for progress (src/sync/progress.ts): it
// writes what reaches the pipe to ssh, which stops taking them when the target stops reading (tar then
// reads no more either), and reads a long sparse or unchanged stretch without writing. (Counted by the kernel,
// /proc/PID/io, so the archive passes through no other process; a count it cannot read is `?`,
// which always counts as moving.) The counter holds no descriptor of ssh's pipe (dash keeps a copy of
// a redirected compound command's descriptors, which its sleep inherited), and ends with tar.
export const TAR_STREAM = `cd "$1" || exit 1
rsh=$2 to=$3 remote=$4 st=$5
shift 5
exec 3<&0 4>&1
{
  tar "$@" -f - <&3 3<&- 4>&- &
  t=$!
  exec 3<&-
  (
    exec >&4 4>&- </dev/null
    while kill -0 "$t" 2>/dev/null; do
      n= w=
      { while read -r k v; do case $k in rchar:) n=$((\${n:-0} + v));; wchar:) n=$((\${n:-0} + v)) w=$v;; esac; done; } 2>/dev/null < "/proc/$t/io"
      [ -n "$n" ] || n="?$(date +%s)"
      [ "$n" = "\${p-}" ] || { p=$n; echo "$n \${w:-?}"; }
      sleep 1 >/dev/null 2>&1
    done
  ) &
  m=$!
  exec 4>&-
  wait "$t"
  echo "$?" > "$st"
  kill "$m" 2>/dev/null
} | $rsh "$to" "$remote" 3<&- 4>&-
r=$?
exec 3<&- 4>&-
c=$(cat "$st" 2>/dev/null || echo 2)
rm -f "$st"
if [ "$c" != 0 ]; then echo "rmm: tar on the origin exited $c" >&2; exit "$c"; fi
exit "$r"`;
