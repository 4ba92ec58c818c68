import { shellJoin } from '../transport/quote.js';

/**
 * A first copy into an empty folder needs none of rsync's comparing: it is bound by per-file work
 * on both sides, which several `tar | ssh | tar` streams over disjoint shares of the files spread
 * over the cores. Measured on the bench's 100,000 small files (2 cores): one rsync 20 s, one tar
 * stream 16.8 s, two 10.6 s; 4 x 512 MiB: one stream 5.4 s, two with 1 MiB records 3.8 s. A
 * single rsync pass afterwards (1.8 s, nothing left to send) makes the copy exactly what rsync
 * would have made: folders' owners, modes, times, ACLs and xattrs, sockets, and anything tar
 * reads differently.
 */

/** One share of a filesystem's non-folder entries; hard links to one inode stay in one share, so tar keeps them linked. */
export interface Share {
  readonly paths: string[];
  readonly bytes: number;
}

export interface ListedFile {
  readonly path: string;
  /** find's %y: f, l, b, c, p, s. */
  readonly type: string;
  readonly size: number;
  readonly inode: string;
  readonly links: number;
}

// $1 source dir. Every entry but folders and rmm's snapshots: type, inode, link count, size, path, NUL-separated.
export const LIST_ENTRIES = `cd "$1" && find . -xdev ! -type d ! -path './.rmm-snap.*' -printf '%y %i %n %s %P\\0'`;

export function parseEntries(stdout: string): ListedFile[] {
  const out: ListedFile[] = [];
  for (const record of stdout.split('\0')) {
    const m = /^(\S) (\d+) (\d+) (\d+) (.*)$/s.exec(record);
    if (m) out.push({ type: m[1]!, inode: m[2]!, links: Number(m[3]), size: Number(m[4]), path: m[5]! });
  }
  return out;
}

/**
 * What the rsync pass after the streams must cover. tar carries every file with its owner, mode,
 * nanosecond mtime, ACLs, xattrs, holes and hard links (within a share, where they all are), but
 * it creates parent folders with default attributes and skips sockets. So the pass needs only the
 * folders, unless there is a socket: then it is a whole pass.
 */
export function finishingPass(files: readonly ListedFile[]): 'folders' | 'all' {
  return files.some((f) => f.type === 's') ? 'all' : 'folders';
}

/** rsync filters that limit a pass to folders (their owners, modes, times, ACLs, xattrs). */
export const FOLDERS_ONLY = ['--include=*/', '--exclude=*'];

/**
 * Largest first into the least loaded share (LPT), so the streams finish together. An entry costs
 * its bytes plus a fixed amount for the metadata work every file needs, however small.
 */
export function splitIntoShares(files: readonly ListedFile[], shares: number): Share[] {
  const PER_FILE_COST = 64 * 1024;
  const groups = new Map<string, ListedFile[]>();
  const items: { files: ListedFile[]; size: number }[] = [];
  for (const f of files) {
    if (f.links < 2) {
      items.push({ files: [f], size: f.size });
      continue;
    }
    const group = groups.get(f.inode);
    if (group) group.push(f);
    else {
      const g = [f];
      groups.set(f.inode, g);
      items.push({ files: g, size: f.size });
    }
  }
  const out = Array.from({ length: Math.max(1, shares) }, () => ({ load: 0, bytes: 0, paths: [] as string[] }));
  for (const item of items.sort((a, b) => b.size - a.size)) {
    const lightest = out.reduce((min, s) => (s.load < min.load ? s : min));
    for (const f of item.files) lightest.paths.push(f.path);
    lightest.load += item.size + PER_FILE_COST * item.files.length;
    lightest.bytes += item.size;
  }
  return out.filter((s) => s.paths.length > 0).map(({ paths, bytes }) => ({ paths, bytes }));
}

// 1 MiB records: a tenth of the system calls of tar's default 10 KiB on each side of the pipe.
const RECORD = ['-b', '2048'];
// --xattrs makes it POSIX (pax) format, which keeps nanosecond mtimes; atime and ctime are not copied.
const CREATE = ['-c', ...RECORD, '--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--acls', '--xattrs', '--xattrs-exclude=trusted.SGI_*', '--xattrs-exclude=xfsroot.*', '--sparse', '--no-recursion', '--null', '--verbatim-files-from'];
const EXTRACT = ['-x', ...RECORD, '--read-full-records', '-p', '--numeric-owner', '--acls', '--xattrs', '--xattrs-include=*', '--xattrs-exclude=trusted.SGI_*', '--xattrs-exclude=xfsroot.*'];

/** The command the target's shell runs for one stream: make the folder, unpack stdin into it. */
export function extractCommand(dest: string, sudo: boolean): string {
  const tar = shellJoin([...(sudo ? ['sudo', '-n'] : []), 'tar', ...EXTRACT, '-C', dest, '-f', '-']);
  return `${shellJoin([...(sudo ? ['sudo', '-n'] : []), 'mkdir', '-p', '--', dest])} && ${tar}`;
}

/** The same as argv, for a stream that rmm itself carries to the target (relay). */
export function extractArgv(dest: string): string[] {
  return ['sh', '-c', 'mkdir -p -- "$1" && shift && exec "$@"', 'rmm-untar', dest, 'tar', ...EXTRACT, '-C', dest, '-f', '-'];
}

/** Packs one share to stdout, for a stream that rmm carries (relay). $1 source dir, $2 list file. */
export function createArgv(source: string, list: string): string[] {
  return ['sh', '-c', 'cd "$1" && shift && exec tar "$@"', 'rmm-tar', source, ...CREATE, '-T', list, '-f', '-'];
}

// $1 source dir, $2 list file, $3 the ssh command (words), $4 user@host, $5 the target's command.
// tar's own status comes back through a file (sh has no pipefail); TERM (the lifeline) ends both
// sides: ssh directly, tar by the broken pipe.
export const TAR_STREAM = `cd "$1" || exit 1
st="$2.status"
trap 'pkill -TERM -P $$; exit 143' TERM
{ tar ${CREATE.map((o) => `'${o}'`).join(' ')} -T "$2" -f -; echo "$?" > "$st"; } | $3 "$4" "$5" &
wait "$!"
r=$?
c=$(cat "$st" 2>/dev/null || echo 2)
if [ "$c" != 0 ]; then echo "rmm: tar on the origin exited $c" >&2; exit "$c"; fi
exit "$r"`;
