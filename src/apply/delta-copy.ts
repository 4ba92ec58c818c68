import { posix } from 'node:path';
import type { PlannedFixupFile, PlannedUnit } from '../plan/action.js';
import { parseFixupEntry, type RecoveryPoint } from '../record/record.js';
import { parseSidecar, type FlagMap } from '../sync/attributes.js';
import { diffListings, filtersSignature, ListingParser, listingHash, nulList, parseListing, type ListedEntry, type Listing, type ListingDiff } from '../sync/delta.js';
import type { DirectoryTarget } from '../target/directory/driver.js';
import { unitHolding } from './kept-fixups.js';

/** One filesystem's entries to send, once the copy no longer holds what changed or went. */
export interface ChangedEntries {
  /** What rsync sends (NUL-terminated), but `apart`. */
  readonly list: Buffer;
  /** Large files there already, written in place by an rsync of their own beside the first (with inPlace). */
  readonly apart: Buffer;
  readonly diff: ListingDiff;
  /** The last point's flags of the entries that stay, and the entries whose flags are read; none: all are read. */
  readonly flags?: { readonly carried: FlagMap; readonly names: Buffer };
  /**
   * rsync writes changed files in place: the copy is a btrfs snapshot of the last point, or its
   * changed files of IN_PLACE_MIN_BYTES or more were made reflinks of the point's (xfs, btrfs).
   */
  readonly inPlace: boolean;
}

/**
 * A changed file this large is written in place by an rsync of its own, beside the other entries'
 * (src/sync/copy.ts). On a target whose points share files by hard links it is first made a reflink
 * of the last point's: rsync then writes only its changed blocks, not the whole file anew, and the
 * points share the others (a point costs the blocks that changed, not the file). A smaller file is
 * made anew from the last point's, as before: that copy is likely still in the target's page cache
 * from the last sync, while a reflink is a new inode, read from disk. On the bench (a 512 MiB file,
 * 1 MiB changed, synced again at once) reflinking it made the re-sync 0.3-0.5 s slower
 * (bench/experiments/ab-resync.mjs: 5.97 s against 5.50 s), so only files of 1 GiB or more, which
 * a cache holds less often and whose rewrite costs most, are.
 */
export const IN_PLACE_MIN_BYTES = 1024 * 1024 * 1024;

/**
 * A later sync onto a directory target by what changed since the last point (src/sync/delta.ts):
 * once per sync, the last point's kept listings are read and checked against its record's
 * manifests; if any filesystem has one, the copy starts as hard links to every file of the last
 * point. Then each filesystem with a listing drops from the copy what changed or went, and rsync
 * sends only the changed and new entries. A filesystem without one is copied in full, as before
 * (its part of the copy unshared first).
 */
export class ChangesSincePoint {
  #listings: Promise<ReadonlyMap<string, Listing> | undefined> | undefined;
  #snapshot = false;
  #stopped = false;
  /** The last point's listings as read from the target, checked and parsed, by mount point, once prefetch() started reading them. */
  #kept: ReadonlyMap<string, Promise<Listing | undefined>> | undefined;

  constructor(
    private readonly driver: DirectoryTarget,
    private readonly base: RecoveryPoint | undefined,
    private readonly units: readonly PlannedUnit[],
    private readonly excludePaths: readonly string[],
    /** Files the fixups rewrite in this copy: the last point holds its own adapted text of them. */
    private readonly fixups: readonly PlannedFixupFile[],
    private readonly note: (text: string) => void,
  ) {}

  signature(unit: PlannedUnit): string {
    return filtersSignature({ excludePaths: this.excludePaths, nestedMounts: unit.nestedMounts, innerMounts: unit.innerMounts, relativePath: unit.relativePath });
  }

  /**
   * Starts reading the last point's listings, before it is known that they are needed (the compare
   * step): they are read and parsed while the origin walks its view, a slice at a time, so that the
   * walk's answer is not kept waiting; stop() ends the parse once the origin proves unchanged.
   */
  prefetch(): void {
    const base = this.base;
    if (!base?.manifests || this.#kept) return;
    this.#kept = new Map(
      this.units.map((u) => {
        const reading = this.#baseListing(base, u);
        reading.catch(() => {}); // a failure is the copy's, when it awaits the listing; an unchanged origin never does
        return [u.fs.mountPoint, reading];
      }),
    );
  }

  /** The prefetched listings are not needed after all (the origin is unchanged): their parse ends. */
  stop(): void {
    this.#stopped = true;
  }

  /** The last point's listing of one filesystem, if it kept one that is the one its record names. */
  async #baseListing(base: RecoveryPoint, unit: PlannedUnit): Promise<Listing | undefined> {
    const bytes = await this.driver.readListing(base.id, unit, this.signature(unit));
    const expected = base.manifests?.[unit.fs.mountPoint];
    // Kept on the target, so checked: it must be the listing whose hash the record holds.
    if (!bytes || expected === undefined || listingHash(bytes) !== expected) return undefined;
    try {
      const parser = new ListingParser(bytes);
      while (!parser.step(5000)) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.#stopped) return undefined;
      }
      return parser.listing;
    } catch {
      // A listing that cannot be read gives no delta: that filesystem is copied in full.
      return undefined;
    }
  }

  /** Whether the copy starts from the last point's files and listings, to copy by what changed (made on the first call). */
  async start(copyEmpty: () => Promise<boolean>): Promise<boolean> {
    this.#listings ??= this.#read(copyEmpty);
    return (await this.#listings) !== undefined;
  }

  /**
   * Whether the copy is a btrfs snapshot of the last point (after start()): it shares no file with
   * that point by a hard link, so rsync may change a file's attributes in place.
   */
  get snapshot(): boolean {
    return this.#snapshot;
  }

  async #read(copyEmpty: () => Promise<boolean>): Promise<ReadonlyMap<string, Listing> | undefined> {
    const base = this.base;
    const manifests = base?.manifests;
    if (!base) return undefined;
    const empty = await copyEmpty();
    const listings = new Map<string, Listing>();
    await Promise.all(
      (manifests ? this.units : []).map(async (unit) => {
        const listing = await (this.#kept?.get(unit.fs.mountPoint) ?? this.#baseListing(base, unit));
        if (listing) listings.set(unit.fs.mountPoint, listing);
      }),
    );
    // With listings to compare, a copy an interrupted run left goes to the trash and the copy starts
    // again from the last point: resumed by a walk, rsync would trust a file's size and time, and
    // link the last point's file for one changed with both put back that the run had not yet sent.
    // Without, it is resumed, unless starting again costs nothing (a btrfs snapshot); a copy starts
    // from the last point only that way, and rsync walks both trees, as into an up-to-date mirror.
    const { start, replaced } = await this.driver.startFrom(base.id, listings.size === 0 ? 'none' : empty ? 'links' : 'fresh');
    if (start === 'none') return undefined;
    if (start === 'unlinkable') {
      this.note(`copy: recovery point ${base.id} has files that cannot be hard-linked (immutable, or at their filesystem's most links): copied in full`);
      return undefined;
    }
    this.#snapshot = start === 'snapshot';
    if (replaced) this.note(`copy: the copy an interrupted run left goes to the trash: the new point starts again from recovery point ${base.id}, and is compared again`);
    this.note(start === 'snapshot' ? `copy: the new point starts as a btrfs snapshot of recovery point ${base.id}` : `copy: the new point starts as hard links to recovery point ${base.id}'s files${start === 'spare' ? ', made after the last run' : ''}`);
    return listings.size > 0 ? listings : undefined;
  }

  /** Keeps this copy's view listing with it, for the next sync's comparison. */
  async keep(unit: PlannedUnit, listing: Buffer): Promise<void> {
    await this.driver.keepListing(unit, this.signature(unit), listing);
  }

  /**
   * For one filesystem, given its view's listing: drops from the copy what changed or went, and
   * returns what rsync sends. Undefined: no comparison is possible, the filesystem is copied in full.
   * `inPlaceOk`: whether rsync on both hosts writes in place keeping holes (3.1.3 or later).
   */
  async changes(unit: PlannedUnit, view: Buffer | undefined, inPlaceOk: () => Promise<boolean>): Promise<ChangedEntries | undefined> {
    const base = (await this.#listings)?.get(unit.fs.mountPoint);
    if (!base || !view) return undefined;
    let listing: Listing;
    try {
      listing = parseListing(view);
    } catch (err) {
      this.note(`copy ${unit.fs.mountPoint}: the view's listing cannot be compared (${(err as Error).message}): copied in full`);
      return undefined;
    }
    // In a snapshot no file is shared with the last point: rsync updates a changed file in place of
    // itself. In hard-linked points a large one is made a reflink of the point's first.
    const reflinks = !this.#snapshot && (await inPlaceOk());
    const keepChanged = this.#snapshot || (reflinks && ((before: ListedEntry) => before.type === 'f' && before.size >= IN_PLACE_MIN_BYTES));
    const diff = diffListings(base, listing, this.#renewed(unit), { keepChanged });
    const inCopy = (p: string) => (unit.relativePath === '' ? p : `${unit.relativePath}/${p}`);
    if (diff.drop.length > 0) await this.driver.drop(nulList(diff.drop.map(inCopy)));
    this.note(`copy ${unit.fs.mountPoint}: ${diff.send.length} of ${diff.entries} entries changed or new since recovery point ${this.base!.id}, ${diff.drop.length} replaced or gone: only those are sent`);
    const inPlace = this.#snapshot ? await inPlaceOk() : diff.kept.length > 0 && (await this.#reflink(unit, base, listing, diff, inCopy));
    const flags = await this.#flagsSince(unit, listing, diff);
    // A file with other names now goes with them (rsync -H links them only within one run).
    const large = new Set(inPlace ? diff.kept.filter((p) => listing.get(p)?.type === 'f' && listing.get(p)?.links === 1 && (base.get(p)?.size ?? 0) >= IN_PLACE_MIN_BYTES) : []);
    if (large.size > 0) this.note(`copy ${unit.fs.mountPoint}: ${large.size} large file(s) written in place by an rsync of their own, beside the other entries'`);
    return { list: nulList(diff.send.filter((p) => !large.has(p))), apart: nulList([...large]), diff, inPlace, ...(flags ? { flags } : {}) };
  }

  /**
   * The copy's kept files made reflinks of the last point's; the new files it holds (none, if the
   * listing is right) removed: rsync then writes no file in place that the point shares. False: the
   * target made no reflinks, and the kept files were removed (rsync makes them anew).
   */
  async #reflink(unit: PlannedUnit, base: Listing, view: Listing, diff: ListingDiff, inCopy: (p: string) => string): Promise<boolean> {
    const fresh = diff.send.filter((p) => view.get(p)?.type === 'f' && !base.has(p));
    const reflinked = await this.driver.reflinkFrom(this.base!.id, diff.kept.map(inCopy), fresh.map(inCopy));
    const what = `${diff.kept.length} changed file(s) of 1 GiB or more`;
    this.note(reflinked ? `copy ${unit.fs.mountPoint}: ${what} updated in place, as reflinks of recovery point ${this.base!.id}'s: only their changed blocks are written` : `copy ${unit.fs.mountPoint}: the target's filesystem makes no reflinks: ${what} made anew`);
    return reflinked;
  }

  /**
   * A flag change is a change of the entry's change time: the entries that stay keep the last
   * point's flags, and only the sent files' and folders' are read. None when the last point's
   * sidecar cannot be read: every entry's are read then.
   */
  async #flagsSince(unit: PlannedUnit, listing: Listing, diff: ListingDiff): Promise<{ carried: FlagMap; names: Buffer } | undefined> {
    const bytes = await this.driver.readAttributes(this.base!.id, unit);
    let before: FlagMap;
    try {
      if (!bytes) return undefined;
      before = parseSidecar(bytes, `the flags sidecar of recovery point ${this.base!.id}`);
    } catch {
      return undefined;
    }
    // A sent entry's flags are read again; a dropped one's went with it, and with it all below it.
    const sent = new Set(diff.send);
    const dropped = new Set(diff.drop);
    const stays = (path: string) => {
      if (sent.has(path)) return false;
      for (let p = path; ; p = p.slice(0, p.lastIndexOf('/'))) {
        if (dropped.has(p)) return false;
        if (!p.includes('/')) return true;
      }
    };
    const carried = new Map([...before].filter(([path]) => stays(path)));
    const read = diff.send.filter((p) => ['f', 'd'].includes(listing.get(p)?.type ?? ''));
    return { carried, names: nulList(read.map((p) => (p === '.' ? '.' : `./${p}`))) };
  }

  /** The paths in this filesystem (relative to it) that the last point's fixups or this sync's rewrite. */
  #renewed(unit: PlannedUnit): string[] {
    const fixed = this.base?.fixups;
    const recorded = [...(fixed?.files ?? []), ...(fixed?.rewriting?.files ?? [])].map(parseFixupEntry);
    const paths = [...recorded, ...this.fixups].flatMap((f) => [f.path, ...(f.renamedTo ? [f.renamedTo] : [])]);
    return paths.filter((p) => p.startsWith('/') && unitHolding(p, this.units) === unit).map((p) => posix.relative(unit.fs.mountPoint, p));
  }
}
