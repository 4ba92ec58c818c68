import type { RsyncProgress } from './rsync.js';

/** How one filesystem's copy goes, as apply reports it: the figures of the whole filesystem. */
export interface CopyProgress {
  /** Bytes of file data the copy holds so far (what an earlier point already held counts). */
  readonly bytes: number;
  /** Bytes of file data the copy holds at its end: the plan's estimate until tar's listing or rsync knows better. */
  readonly bytesTotal: number;
  readonly files: number;
  /** Entries the filesystem holds; null until known. */
  readonly filesTotal: number | null;
  /** Whole percent, never 100 before the copy has ended. */
  readonly percent: number;
  /** Over the last few seconds; 0 until a second has passed. */
  readonly bytesPerSecond: number;
  /** null while the rate is unknown. */
  readonly etaSeconds: number | null;
}

/** What a copy starts from: the plan's estimate, and what the copy already holds (a sync of changes). */
export interface CopyEstimate {
  readonly bytes: number;
  readonly files?: number;
  /** A sync of the changes: the bytes and entries it does not send. */
  readonly heldBytes?: number;
  readonly heldFiles?: number;
}

/** Tar streams' listing so far: file data, entries, and the archive they make (headers and padding). */
export interface ListedSoFar {
  readonly bytes: number;
  readonly files: number;
  readonly archiveBytes: number;
  readonly complete: boolean;
}

const RATE_WINDOW_MS = 10_000;

/**
 * Turns what a copy's processes say (tar streams' archive bytes, rsync's --info=progress2 lines)
 * into figures of the whole filesystem that never go backwards, at most every `intervalMs`; the
 * final figures, once the copy has ended, always.
 *
 * tar streams say how many archive bytes they sent: the listing says what archive its entries
 * make (a 512-byte header each, data padded to 512 bytes), so the file data and entries sent are
 * that share of what was listed. rsync says how much of the data it has handled itself.
 */
export class CopyMeter {
  #bytes = 0;
  #files = 0;
  #bytesTotal: number;
  #filesTotal: number | null;
  #percent = 0;
  #listed: ListedSoFar | undefined;
  #last = -Infinity;
  #finished = false;
  readonly #samples: { at: number; bytes: number }[] = [];
  readonly #held: { bytes: number; files: number };
  /** The total is known, not estimated: a sync of changes, or a listing that ended. */
  #exact: boolean;

  constructor(
    estimate: CopyEstimate,
    private readonly emit: (p: CopyProgress) => void,
    private readonly intervalMs = 250,
    private readonly now: () => number = Date.now,
  ) {
    this.#held = { bytes: estimate.heldBytes ?? 0, files: estimate.heldFiles ?? 0 };
    this.#bytesTotal = estimate.bytes;
    this.#filesTotal = estimate.files ?? null;
    this.#exact = estimate.files !== undefined;
    this.#bytes = this.#held.bytes;
    this.#files = this.#held.files;
  }

  /** The figures before anything moved: the bar shows at once. */
  start(): void {
    this.#report(true);
  }

  /** Tar streams: the listing grew (or ended). */
  listed(l: ListedSoFar): void {
    this.#listed = l;
    this.#bytesTotal = l.complete ? l.bytes : Math.max(this.#bytesTotal, l.bytes);
    if (l.complete) this.#filesTotal = l.files;
    this.#exact ||= l.complete;
  }

  /** Tar streams: the archive bytes all streams sent so far. */
  sent(archiveBytes: number): void {
    const l = this.#listed;
    if (!l || l.archiveBytes === 0) return;
    const share = Math.min(1, archiveBytes / l.archiveBytes);
    this.#advance(this.#held.bytes + share * l.bytes, this.#held.files + share * l.files);
  }

  /** rsync's own figures: of the entries it was given (a list of changes) or of the whole view. */
  rsync(p: RsyncProgress): void {
    // Once rsync has listed the whole view it knows better than the plan what it copies (the plan's
    // estimate is the filesystem's use, exclusions and all); before, its percent is only of the
    // files it found so far.
    if (!this.#exact && p.listed && p.percent > 0) {
      this.#bytesTotal = Math.max(p.bytes, Math.round((p.bytes * 100) / p.percent));
      this.#exact = true;
    }
    // rsync's bytes are of the files it sent; the entries it checked count the unchanged ones too.
    if (p.listed && this.#filesTotal === null && p.listedEntries !== undefined) this.#filesTotal = p.listedEntries;
    this.#advance(this.#held.bytes + p.bytes, this.#held.files + (p.checked ?? p.files));
  }

  /** The copy ended: its figures are the copy's own. */
  finish(final: { bytes: number; files: number }): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#bytesTotal = final.bytes;
    this.#filesTotal = final.files;
    this.#bytes = final.bytes;
    this.#files = final.files;
    this.#percent = 100;
    this.#report(true);
  }

  #advance(bytes: number, files: number): void {
    if (this.#finished) return;
    this.#bytes = Math.max(this.#bytes, Math.round(bytes));
    this.#files = Math.max(this.#files, Math.round(this.#filesTotal === null ? files : Math.min(files, this.#filesTotal)));
    this.#report(false);
  }

  #report(always: boolean): void {
    const at = this.now();
    if (!always && at - this.#last < this.intervalMs) return;
    this.#last = at;
    // The rate counts from the first bytes that moved: the wait for a copy's processes to start
    // (or for a list of changes to be sent) is not part of it. A sample per report: a few a second.
    if (this.#samples.length > 0 || this.#bytes > this.#held.bytes) this.#samples.push({ at, bytes: this.#bytes });
    while (this.#samples.length > 2 && at - this.#samples[1]!.at >= RATE_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0];
    const span = first ? (at - first.at) / 1000 : 0;
    const rate = first && span >= 1 ? Math.max(0, Math.round((this.#bytes - first.bytes) / span)) : 0;
    const total = Math.max(this.#bytesTotal, this.#bytes);
    if (!this.#finished) this.#percent = Math.max(this.#percent, Math.min(99, total === 0 ? 0 : Math.floor((this.#bytes / total) * 100)));
    const eta = this.#finished ? 0 : rate > 0 ? Math.ceil((total - this.#bytes) / rate) : null;
    this.emit({ bytes: this.#bytes, bytesTotal: total, files: this.#files, filesTotal: this.#filesTotal, percent: this.#percent, bytesPerSecond: rate, etaSeconds: eta });
  }
}
