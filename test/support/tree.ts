import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { FLAGS_LISTING, parseFlagsListing } from '../../src/sync/attributes.js';

/** Everything a replica must preserve about one file, keyed by its path relative to the tree root. */
export interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Nanoseconds, as rsync -t and tar's pax headers keep them; folders' only when asked (an rsync re-sync through the relay left one folder's time unset, once in a few runs). */
  mtime: string;
  sha256?: string;
  link?: string;
  rdev?: number;
  sparse?: boolean;
  /** Paths in the tree that share this file's inode, as a sorted list: hard links kept within the tree. */
  hardLinks?: string;
}

export interface DescribeOptions {
  folderTimes?: boolean;
}

/**
 * The key of a path in `entries`: the path itself when it is UTF-8, else its bytes in hex behind a
 * NUL (no file name holds one), so names that are not UTF-8 are compared byte for byte too.
 */
export function pathKey(rel: Buffer): string {
  const text = rel.toString('utf8');
  return Buffer.from(text, 'utf8').equals(rel) ? text : `\0bytes:${rel.toString('hex')}`;
}

// By inode and change time (which any write moves): a large file is read once however often its tree is described.
const hashes = new Map<string, string>();

/** A file's sha256, read in pieces (a sparse file of 1 GiB is no 1 GiB buffer). */
function contentHash(abs: Buffer, key: string): string {
  const known = hashes.get(key);
  if (known) return known;
  const hash = createHash('sha256');
  const fd = openSync(abs, 'r');
  try {
    const piece = Buffer.alloc(4 << 20);
    for (let n; (n = readSync(fd, piece, 0, piece.length, null)) > 0; ) hash.update(piece.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const digest = hash.digest('hex');
  hashes.set(key, digest);
  return digest;
}

/**
 * Walks a tree (not crossing into `skip` paths) and describes it; ACLs and xattrs come from getfacl/getfattr dumps.
 * Paths are walked as bytes: any name a filesystem holds (newlines, invalid UTF-8) is described.
 */
export function describeTree(root: string, skip: readonly string[] = [], opts: DescribeOptions = {}): { entries: Map<string, Entry>; acls: string; xattrs: string } {
  const entries = new Map<string, Entry>();
  const inodes = new Map<number, string[]>();
  const rootBytes = Buffer.from(root);
  const walk = (rel: Buffer): void => {
    const abs = rel.length ? Buffer.concat([rootBytes, Buffer.from('/'), rel]) : rootBytes;
    const key = pathKey(rel);
    const st = lstatSync(abs, { bigint: false });
    const big = lstatSync(abs, { bigint: true });
    const ns = big.mtimeNs;
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'other';
    const e: Entry = { type, mode: st.mode, uid: st.uid, gid: st.gid, size: type === 'dir' ? 0 : st.size, mtime: type !== 'dir' || (opts.folderTimes && rel.length > 0) ? ns.toString() : '' };
    if (type === 'file') {
      e.sha256 = contentHash(abs, `${big.dev}:${big.ino}:${big.size}:${big.ctimeNs}:${big.mtimeNs}`);
      e.sparse = st.size > 64 * 1024 && st.blocks * 512 < st.size / 2;
      if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), key]);
    }
    if (type === 'symlink') e.link = pathKey(readlinkSync(abs, { encoding: 'buffer' }));
    if (type === 'chr' || type === 'blk') e.rdev = st.rdev;
    // A skipped path is left out with its contents: on a live origin it may be a mount point, whose
    // attributes are the mounted filesystem's, while a snapshot holds the directory below it.
    const left = skip.includes(key);
    if (!left) entries.set(key || '.', e);
    if (type === 'dir' && !left) {
      const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      for (const name of names) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
    }
  };
  walk(Buffer.alloc(0));
  // A link count above one from outside the tree (another recovery point's copy) is not a hard link within it.
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const key = [...group].sort().join('|');
    for (const rel of group) entries.get(rel)!.hardLinks = key;
  }
  // Only into what is not skipped: getfacl and getfattr would otherwise walk /proc. A name that is
  // not UTF-8 cannot be an argument from here: such a tree is dumped from `.`, its root left out.
  const names = readdirSync(root, { encoding: 'buffer' });
  const named = names.every((n) => pathKey(n) === n.toString());
  const tops = named
    ? names
        .map((n) => n.toString())
        .filter((name) => !skip.includes(name))
        .sort()
    : ['.'];
  const skipped = (line: string): boolean => line === '# file: .' || line.startsWith('# file: .\n') || skip.some((s) => line.startsWith(`# file: ${s}/`));
  const dump = (cmd: string, args: string[]): string =>
    tops.length === 0
      ? ''
      : execFileSync(cmd, [...args, ...tops], { cwd: root, maxBuffer: 1 << 28, encoding: 'utf8' })
          .split('\n\n')
          .map((block) => (named ? block : block.replace(/^# file: \.\//, '# file: ')))
          .filter((block) => !skipped(block))
          // XFS shows its on-disk form of ACLs to root as trusted.SGI_ACL_*; the ACL itself is compared by getfacl.
          .map((block) => {
            const [header = '', ...lines] = block.split('\n').filter((l) => !l.startsWith('trusted.SGI_ACL_'));
            // listxattr order is the filesystem's too.
            return [header, ...(cmd === 'getfattr' ? lines.sort() : lines)].join('\n');
          })
          .filter((block) => block.includes('\n'))
          // getfattr and getfacl list a folder's entries in readdir order, which differs between filesystems.
          .sort()
          .join('\n\n');
  return {
    entries,
    acls: dump('getfacl', ['-R', '-P', '-s', '--']),
    // -h: a symlink's own xattrs, not its target's (which may be missing).
    xattrs: dump('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '--']),
  };
}

/**
 * The chattr flags of a tree's files and folders that have any, by entry key (lsattr, as rmm reads
 * them on an origin). Apart from describeTree: a replica records them beside its tree, not on it.
 */
export function readFlags(root: string, skip: readonly string[] = []): Map<string, string> {
  const pruned = skip.flatMap((s) => ['-o', '-path', `./${s}`]);
  const find = ['find', '.', '(', '-false', ...pruned, ')', '-prune', '-o', '(', '-type', 'f', '-o', '-type', 'd', ')', '-print0'];
  const out = execFileSync('sh', ['-c', FLAGS_LISTING, 'rmm-flags', root, ...find], { maxBuffer: 1 << 28 }).toString('latin1');
  return new Map([...parseFlagsListing(out)].map(([rel, flags]) => [rel === '.' ? '.' : pathKey(Buffer.from(rel, 'latin1')), flags]));
}

/** Differences between two trees, as readable lines (empty when identical). */
export function diffTrees(a: ReturnType<typeof describeTree>, b: ReturnType<typeof describeTree>): string[] {
  const out: string[] = [];
  for (const [rel, ea] of a.entries) {
    const eb = b.entries.get(rel);
    if (!eb) out.push(`missing on target: ${rel}`);
    else if (JSON.stringify(ea) !== JSON.stringify(eb)) out.push(`differs: ${rel}: ${JSON.stringify(ea)} vs ${JSON.stringify(eb)}`);
  }
  for (const rel of b.entries.keys()) if (!a.entries.has(rel)) out.push(`extra on target: ${rel}`);
  if (a.acls !== b.acls) out.push(`ACLs differ: ${firstDifference(a.acls, b.acls)}`);
  if (a.xattrs !== b.xattrs) out.push(`xattrs differ: ${firstDifference(a.xattrs, b.xattrs)}`);
  return out;
}

/** The first block (one file's dump) that is not the same on both sides, for the failure message. */
function firstDifference(a: string, b: string): string {
  const blocksA = a.split('\n\n');
  const blocksB = new Set(b.split('\n\n'));
  const onlyA = blocksA.find((block) => !blocksB.has(block));
  const onlyB = [...blocksB].find((block) => !blocksA.includes(block));
  return JSON.stringify({ origin: onlyA ?? null, target: onlyB ?? null });
}
