import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';
import { isPlainPath } from './delta.js';
import { walkFilters, type ManifestScan } from './manifest.js';

/**
 * File attributes (chattr flags: immutable, append-only, noatime, nodump, nocow, ...) are neither
 * xattrs nor ACLs: rsync and tar do not carry them. A directory target keeps its recovery points as
 * hard-link farms, where one inode is every point's copy of an unchanged file: a flag set on it would
 * change every point that shares it, rsync's --link-dest does not compare flags (a flag-only change
 * would reuse the old inode with the old flags), and `i` or `a` would make link(2), rsync's updates
 * and pruning fail with EPERM. So the flags of each copied filesystem are recorded beside its
 * recovery point, as data (a sidecar the target driver keeps with the point), and no flag is set on
 * the replica's files: where a copy becomes a running system, the flags are set from the sidecar,
 * immutable and append-only last.
 */

/** Flags that say what the kernel did, not what anyone asked for: extents, encrypted, indexed, inline, verity. */
const STATE_FLAGS = new Set(['e', 'E', 'I', 'N', 'V']);

/** Letters lsattr (e2fsprogs 1.47) may print for a flag. */
const FLAG_LETTERS = /^[a-zA-Z]+$/;

/** Each copied file's and folder's flags, by path relative to the filesystem ('.' its root), as bytes in latin1. */
export type FlagMap = ReadonlyMap<string, string>;

// $1 the folder, then a find that prints NUL-terminated names. Per batch of names: the names, each
// NUL-terminated, an empty record, then lsattr's lines for them (which hold no NUL), then a NUL.
// lsattr prints `FLAGS NAME` with the name as it is (a newline in a name makes more lines), so the
// names themselves are sent too: rmm reads each line as the one of the name it expects next.
export const FLAGS_LISTING = `cd "$1" && shift || exit
command -v lsattr >/dev/null 2>&1 || { echo rmm-no-lsattr; exit 0; }
"$@" | xargs -0 -r sh -c 'printf "%s\\0" "$@"; printf "\\0"; lsattr -d -- "$@" 2>/dev/null; printf "\\0"' rmm-lsattr`;

/** The walk of the flags listing: regular files and folders (what lsattr reads), as the manifest skips and names. */
export function flagsFindArgs(scan: ManifestScan): string[] {
  const { skipped, named } = walkFilters(scan);
  // The root first: a btrfs view's root is a subvolume root, which `named` would prune.
  return ['find', '.', '-xdev', '(', '-path', '.', '-print0', ')', '-o', '(', ...skipped, ')', '-prune', '-o', '(', ...named, '-false', ')', '-prune', '-o', '(', '-type', 'f', '-o', '-type', 'd', ')', '-print0'];
}

/** A field with no flag but state flags: most files' (`--------------e-------` on ext4). */
const NO_FLAGS = /^[-eEINV]*$/;

/** The set letters of one lsattr flags field, state flags left out, sorted. */
export function flagLetters(field: string): string {
  if (NO_FLAGS.test(field)) return '';
  return [...new Set(field.replace(/-/g, ''))]
    .filter((c) => !STATE_FLAGS.has(c))
    .sort()
    .join('');
}

/**
 * Reads FLAGS_LISTING's output (as latin1, one character per byte). A name lsattr could not read
 * (it vanished, or its filesystem has no flags) has no line and is left out; entries without flags
 * are left out.
 */
export function parseFlagsListing(out: string): Map<string, string> {
  const reader = new FlagsListingReader();
  reader.push(out);
  if (reader.rest() !== '') throw new AttributesError('attributes.unreadable', 'the flags listing ended inside a batch');
  return reader.flags;
}

/**
 * Reads the listing as it comes, in chunks much smaller than a batch: each character is looked at
 * once (a batch is parsed when its end arrives), and a filesystem of millions of files never needs
 * its whole listing in memory (a string that long is more than Node allows).
 */
export class FlagsListingReader {
  readonly flags = new Map<string, string>();
  /** The chunks of the batch being read. */
  #chunks: string[] = [];
  /** Reading the batch's names (until an empty one), or its lsattr lines (until a NUL). */
  #inLines = false;
  /** The last character of the names read so far was a NUL (or none was read: an empty first name ends them too). */
  #afterNul = true;

  push(chunk: string): void {
    let from = 0;
    let at = 0;
    while (at < chunk.length) {
      if (!this.#inLines) {
        if (this.#afterNul && chunk.charCodeAt(at) === 0) {
          this.#inLines = true;
          at += 1;
          continue;
        }
        const nul = chunk.indexOf('\0', at);
        if (nul < 0) {
          this.#afterNul = false;
          break;
        }
        this.#afterNul = true;
        at = nul + 1;
        continue;
      }
      const end = chunk.indexOf('\0', at);
      if (end < 0) break;
      this.#chunks.push(chunk.slice(from, end + 1));
      this.#batch(this.#chunks.join(''));
      this.#chunks = [];
      this.#inLines = false;
      this.#afterNul = true;
      from = at = end + 1;
    }
    if (from < chunk.length) this.#chunks.push(chunk.slice(from));
  }

  /** What follows the last whole batch: empty when the listing ended where a batch did. */
  rest(): string {
    return this.#chunks.join('');
  }

  /** One whole batch: its names, each NUL-terminated, an empty name, lsattr's lines, a NUL. */
  #batch(text: string): void {
    const namesEnd = text.startsWith('\0') ? -1 : text.indexOf('\0\0');
    addBatch(namesEnd < 0 ? [] : text.slice(0, namesEnd).split('\0'), text.slice(namesEnd + 2, -1), this.flags);
  }
}

function addBatch(names: readonly string[], lines: string, flags: Map<string, string>): void {
  let at = 0;
  const field = /([a-zA-Z-]+) /y;
  for (const name of names) {
    field.lastIndex = at;
    const m = field.exec(lines);
    const start = at + (m?.[0].length ?? 0);
    if (!m || !lines.startsWith(name, start) || lines.charCodeAt(start + name.length) !== 10) continue; // no line for this name
    at = start + name.length + 1;
    const letters = flagLetters(m[1]!);
    if (letters) flags.set(relative(name), letters);
  }
}

function relative(name: string): string {
  return name === '.' ? '.' : name.replace(/^\.\//, '');
}

export class AttributesError extends RmmError {}

/**
 * Lists the flags of a view's files and folders on the origin. Undefined when the origin has no
 * lsattr: the flags are then unknown, which is not the same as none.
 */
export async function listFlags(origin: RemoteHost, scan: ManifestScan, dir: string, names?: Buffer): Promise<Map<string, string> | undefined> {
  // `names`: only these entries (NUL-terminated, `./`-prefixed as find prints them), not a walk.
  const list = names ? ['cat'] : flagsFindArgs(scan);
  const proc = await origin.spawn(['sh', '-c', FLAGS_LISTING, 'rmm-flags', dir, ...list], { sudo: true });
  const reader = new FlagsListingReader();
  proc.channel.on('data', (c: Buffer) => reader.push(c.toString('latin1')));
  proc.channel.end(names);
  await proc.wait([0]);
  const rest = reader.rest();
  if (rest === 'rmm-no-lsattr\n') return undefined;
  if (rest !== '') throw new AttributesError('attributes.unreadable', 'the flags listing ended inside a batch');
  return reader.flags;
}

const SIDECAR_HEADER = 'rmm-attributes 1\n';

/** The sidecar's bytes: a versioned header, then `FLAGS\0PATH\0` for each entry with flags, in path order. */
export function formatSidecar(flags: FlagMap): Buffer {
  const body = [...flags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, letters]) => `${letters}\0${path}\0`);
  return Buffer.from(SIDECAR_HEADER + body.join(''), 'latin1');
}

/**
 * Reads a sidecar back from a target, which makes it untrusted: the header and version, letters
 * only in the flags, paths relative, inside the filesystem (no `..`, no empty part) and each once.
 */
export function parseSidecar(data: Buffer, where: string): Map<string, string> {
  const text = data.toString('latin1');
  const bad = (why: string): AttributesError => new AttributesError('attributes.damaged', `${where} is not a valid flags sidecar: ${why}`);
  if (!text.startsWith(SIDECAR_HEADER)) throw bad(text.startsWith('rmm-attributes ') ? 'written by a newer rmm (unknown version)' : 'no header');
  const fields = text.slice(SIDECAR_HEADER.length).split('\0');
  if (fields.pop() !== '' || fields.length % 2 !== 0) throw bad('a record is cut off');
  const flags = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) {
    const [letters, path] = [fields[i]!, fields[i + 1]!];
    if (!FLAG_LETTERS.test(letters)) throw bad(`flags ${JSON.stringify(letters)} are not letters`);
    if (path !== '.' && !isPlainPath(path)) {
      throw bad(`path ${JSON.stringify(path)} is not inside the filesystem`);
    }
    if (flags.has(path)) throw bad(`path ${JSON.stringify(path)} is listed twice`);
    flags.set(path, letters);
  }
  return flags;
}
