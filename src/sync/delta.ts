import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { RmmError } from '../errors.js';

/**
 * A later sync's copy by what changed. The manifest walk (src/sync/manifest.ts) prints one record
 * per entry of a view: inode, change time, modification time, size, mode, owner, group, links, type
 * and path. Linux sets an inode's change time on every write, chmod, chown, ACL or xattr change,
 * link, unlink and rename, and user space cannot set it back; so an entry whose record is the same
 * in the last point's listing and in this view's has not changed, and every name of a hard-linked
 * inode changes together. The new point starts as hard links to the last point's files (made on the
 * target in one pass), without the entries that changed or went; rsync then sends only the changed
 * and new entries, with the last point as its basis (--link-dest), instead of walking both trees.
 */

export interface ListedEntry {
  /** The whole record, as the walk printed it (latin1: one character per byte of a name). */
  readonly record: string;
  /** find's %y letter, `d` for the root, `m` for a mount point (named without attributes). */
  readonly type: string;
  readonly size: number;
  /** Its inode's link count (1 for the root and mount points, listed without attributes). */
  readonly links: number;
}

/** A view's entries by path relative to the filesystem (`.` its root), names as latin1 strings. */
export type Listing = ReadonlyMap<string, ListedEntry>;

export class ListingError extends RmmError {
  constructor(message: string) {
    super('listing.unreadable', message);
  }
}

const ENTRY = /^\d+ \S+ \S+ (\d+) [0-7]+ \d+ \d+ (\d+) (\S) \.\/(.+)$/s;
const ROOT = /^root [0-7]+ \d+ \d+$/;
const MOUNT = /^mount \.\/(.+)$/s;

/**
 * Reads a walk's output, which may come from a host or a file kept on the target: every path must
 * be a plain relative path (no empty, `.` or `..` part), each listed once.
 */
export function parseListing(bytes: Buffer): Listing {
  const parser = new ListingParser(bytes);
  parser.step(Infinity);
  return parser.listing;
}

/**
 * parseListing a slice at a time, for a caller that parses beside other work without holding the
 * event loop for the whole listing (100,000 records take 0.1-0.3 s).
 */
export class ListingParser {
  readonly #records: string[];
  readonly #listing = new Map<string, ListedEntry>();
  #next = 0;

  constructor(bytes: Buffer) {
    const text = bytes.toString('latin1');
    if (text !== '' && !text.endsWith('\0')) throw new ListingError('the listing does not end with a whole record');
    this.#records = text.split('\0');
  }

  /** Parses up to `count` more records; true once all are. Throws ListingError for a record rmm refuses. */
  step(count: number): boolean {
    const end = Math.min(this.#records.length, this.#next + count);
    for (; this.#next < end; this.#next++) addRecord(this.#listing, this.#records[this.#next]!);
    return this.#next >= this.#records.length;
  }

  get listing(): Listing {
    return this.#listing;
  }
}

function addRecord(listing: Map<string, ListedEntry>, record: string): void {
  if (record === '') return;
  let path: string;
  let type: string;
  let size = 0;
  let links = 1;
  const m = ENTRY.exec(record);
  if (m) {
    [path, type, size, links] = [m[4]!, m[3]!, Number(m[1]), Number(m[2])];
  } else if (ROOT.test(record)) {
    [path, type] = ['.', 'd'];
  } else {
    const mount = MOUNT.exec(record);
    if (!mount) throw new ListingError(`a record of the listing is not one the walk prints: ${JSON.stringify(record.slice(0, 120))}`);
    [path, type] = [mount[1]!, 'm'];
  }
  if (path !== '.' && !isPlainPath(path)) throw new ListingError(`the listing names a path rmm refuses to use: ${JSON.stringify(path.slice(0, 120))}`);
  if (listing.has(path)) throw new ListingError(`the listing names ${JSON.stringify(path.slice(0, 120))} twice`);
  listing.set(path, { record, type, size, links });
}

// An empty part (a leading, doubled or trailing slash), `.` or `..`: one scan (100,000 paths of a
// listing in 10-20 ms, where splitting each took 50-90).
const NOT_A_NAME = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** A relative path of named parts only: nothing that could lead above or out of its folder by name. */
export function isPlainPath(path: string): boolean {
  return path !== '' && !path.includes('\0') && !NOT_A_NAME.test(path);
}

export interface ListingDiff {
  /** Paths the new point must not take from the last point (changed entries that are not folders, entries gone), none below another. */
  readonly drop: readonly string[];
  /** Paths rsync sends: changed and new entries (folders without what is in them). */
  readonly send: readonly string[];
  /** The view's entries and the bytes of its regular files: what the new point holds. */
  readonly entries: number;
  readonly bytes: number;
  /** The bytes of the regular files among `send`. */
  readonly sendBytes: number;
  /** Those of `send` that were there before and stay in the copy, for rsync to update in place (`keepChanged`). */
  readonly kept: readonly string[];
}

/**
 * What differs between the last point's listing and this view's. `alwaysRenew`: paths the last
 * point's tree may hold otherwise than its listing says (files its fixups rewrote or renamed):
 * dropped, and sent again if the view has them. `keepChanged`: the copy shares no file with the
 * last point (a btrfs snapshot of it), so a changed entry that is still of its type stays, for
 * rsync to update in place (its delta against the copy's own file); only entries gone or of another
 * type are dropped, and a file that had other names in the last point (writing it in place would
 * change them too: rsync makes it anew). A function: only the entries it accepts stay (on a target
 * whose points share files by hard links, the files the copy then makes reflinks of).
 */
export function diffListings(base: Listing, view: Listing, alwaysRenew: readonly string[] = [], opts: { readonly keepChanged?: boolean | ((before: ListedEntry) => boolean) } = {}): ListingDiff {
  const drop = new Set<string>();
  const send: string[] = [];
  const kept: string[] = [];
  const keeps = (before: ListedEntry) => (typeof opts.keepChanged === 'function' ? opts.keepChanged(before) : opts.keepChanged === true);
  let bytes = 0;
  let sendBytes = 0;
  for (const [path, entry] of view) {
    if (entry.type === 'f') bytes += entry.size;
    const before = base.get(path);
    // The root and mount points are listed without their times (a snapshot changes them): rsync
    // always sets theirs, as a copy of the whole view does.
    if (before && before.record === entry.record && entry.type !== 'm' && path !== '.') continue;
    send.push(path);
    if (entry.type === 'f') sendBytes += entry.size;
    // A folder stays (rsync sets its attributes; its entries are listed on their own); anything else
    // that changed is made anew, so no file shared with the last point is ever written.
    const folder = (t: string) => t === 'd' || t === 'm';
    if (!before || (folder(before.type) && folder(entry.type) && before.type === entry.type)) continue;
    if (before.type === entry.type && before.links === 1 && keeps(before)) kept.push(path);
    else drop.add(path);
  }
  for (const path of base.keys()) if (!view.has(path)) drop.add(path);
  for (const path of alwaysRenew) {
    if (!isPlainPath(path)) continue;
    drop.add(path);
    const entry = view.get(path);
    if (entry && !send.includes(path)) {
      send.push(path);
      if (entry.type === 'f') sendBytes += entry.size;
    }
  }
  return { drop: outermost(drop), send, entries: view.size, bytes, sendBytes, kept: kept.filter((p) => !drop.has(p)) };
}

/** The paths without those below another of them (removing a folder removes what is in it). */
function outermost(paths: ReadonlySet<string>): string[] {
  return [...paths].filter((p) => {
    for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) if (paths.has(p.slice(0, i))) return false;
    return p !== '.';
  });
}

/** NUL-terminated names, as rsync --from0 and xargs -0 read them. */
export function nulList(paths: readonly string[]): Buffer {
  return Buffer.from(paths.map((p) => `${p}\0`).join(''), 'latin1');
}

/** The manifest hash of a listing: what the walk's `| sha256sum` gives on the origin. */
export function listingHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * What a listing was taken with, beyond the view itself: a copy with other exclusions or other
 * filesystems mounted inside holds other entries than its listing says, so the next sync copies in
 * full. Part of the kept listing's file name.
 */
export function filtersSignature(inputs: { readonly excludePaths: readonly string[]; readonly nestedMounts: readonly string[]; readonly innerMounts: readonly string[]; readonly relativePath: string }): string {
  const json = JSON.stringify([inputs.excludePaths, inputs.nestedMounts, inputs.innerMounts, inputs.relativePath]);
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

const gunzipAsync = promisify(gunzip);

/** A listing kept gzipped (on the origin between steps, on the target with its point), unpacked; undefined when it is not gzip or unpacks to more than 4 GiB. */
export async function gunzipListing(packed: Buffer): Promise<Buffer | undefined> {
  return gunzipAsync(packed, { maxOutputLength: 2 ** 32 - 1 }).catch(() => undefined);
}
