import type { ConfigFiles } from '../observe/config-files.js';
import type { DiskLayout } from '../observe/layout.js';
import type { DisksMount, PlannedFixupFile, PointFileChange } from '../plan/action.js';
import type { TargetInventory } from '../record/rebuild.js';
import type { RecoveryPoint, ReplicaRecord } from '../record/record.js';
import type { CopyUnit } from '../snapshot/select.js';
import type { LandingVolume } from './disks/volumes.js';

/** What a target holds and has, as observed before a plan. */
export interface TargetObservation {
  readonly record: ReplicaRecord | undefined;
  /** Tools the sync needs on the target, and whether each is there. */
  readonly tools: Readonly<Record<string, boolean>>;
  /** Points the record dropped whose folders are still on the target; the next prune removes them. */
  readonly leftoverPoints?: readonly string[];
  /** Where `current` points (directory targets), as read; '' when there is none. */
  readonly current?: string;
  /** Whether a copy a run left unfinished is there (it is resumed). */
  readonly partial?: boolean;
  /** The point folders on the target (named like point ids), whatever the record says. */
  readonly pointFolders?: readonly string[];
  /** Those of them that are btrfs subvolumes: a new point starts as a snapshot of one. */
  readonly snapshotPoints?: readonly string[];
  /** Free bytes where the replica goes. */
  readonly freeBytes?: number;
  /** Disks targets: the landing host's disks. */
  readonly layout?: DiskLayout;
  /** Disks targets: the landing devices that are logical volumes, attached as loop devices, with rmm's snapshots of them. */
  readonly volumes?: readonly LandingVolume[];
  /** The current point's configuration files, read when the plan may re-run its fixups (src/plan/refixup.ts). */
  readonly pointConfig?: PointConfig;
}

/** A recovery point's configuration files as it holds them, and the origin's texts its fixups kept. */
export interface PointConfig {
  readonly point: string;
  readonly files: ConfigFiles;
  readonly originals: ConfigFiles;
  /** Why the files could not be read, when they could not. */
  readonly unavailable?: string;
  /** A disks replica: how its filesystems mount, and the device references its fixups wrote. */
  readonly disks?: { readonly mounts: readonly DisksMount[]; readonly devices: Readonly<Record<string, string>> };
}

/**
 * Everything specific to one kind of target. A sync (src/apply/sync.ts) drives it through the
 * steps of its plan; the copy engine (src/sync/) writes into `copyDir`. `directory` lives in
 * ./directory/; a `disks` driver (layout, mounts, chroot, bootloader, device snapshots) goes in
 * ./disks/ beside it and implements the same interface.
 */
export interface TargetDriver {
  readonly kind: 'directory' | 'disks';
  /** Where the replica's lock lives on the target. */
  readonly lockFile: string;
  observe(): Promise<TargetObservation>;
  readRecord(): Promise<ReplicaRecord | undefined>;
  writeRecord(record: ReplicaRecord): Promise<void>;
  /** Makes the folder the new copy is written into. */
  /** `first`: no recovery point is there yet to start from. */
  prepareCopy(first?: boolean): Promise<void>;
  /** Where one filesystem's copy goes. */
  copyDir(unit: CopyUnit): string;
  /** Where a copy's flags sidecar goes (src/sync/attributes.ts), in a folder prepareCopy made; kept with the point it becomes. */
  attributesFile?(unit: CopyUnit): string;
  /** The folder a copy's writes are flushed in (the copy's filesystem on the target). */
  readonly flushDir: string;
  /** The same filesystem in a recovery point, for rsync's --link-dest. */
  pointDir(point: string, unit: CopyUnit): string;
  isEmpty(dir: string): Promise<boolean>;
  /** Removes the files of a copy in progress that share their inode with another (a recovery point's). */
  unshare(dir: string, skip?: readonly string[]): Promise<void>;
  /** Whether `current` is the given point (a copy switched by hand is never verified). */
  currentIs(point: string): Promise<boolean>;
  /** The new copy becomes recovery point `id` and `current`. */
  promote(id: string): Promise<void>;
  /** Undoes promote: `current` back to `previous` (or gone), the copy back where a next run resumes it. */
  demote(id: string, previous: RecoveryPoint | undefined): Promise<void>;
  /** Puts back a copy a killed run promoted without recording it, in place of any older copy in progress. */
  restore(id: string, previous: RecoveryPoint | undefined): Promise<void>;
  prune(ids: readonly string[]): Promise<void>;
  /**
   * Rewrites (and renames) the new copy's files as the plan's fixups say, each only if it is the text
   * the plan read. `kept`: the origin's texts of files the copy left out, by path (disks targets, src/apply/kept-fixups.ts).
   */
  applyFixups(files: readonly PlannedFixupFile[], kept?: ReadonlyMap<string, string>): Promise<void>;
  readPointConfig(point: string): Promise<PointConfig>;
  /** Rewrites recovery point `point` in place as a fixup re-run's plan says, each file only if it is what the plan read. */
  rewritePoint(point: string, changes: readonly PointFileChange[]): Promise<void>;
  /** The recovery points the target actually holds, whatever its record says (`rmm repair`). */
  inventory(): Promise<TargetInventory>;
  /** Keeps a damaged record aside and writes a rebuilt one; returns where the damaged one went. */
  replaceRecord(record: ReplicaRecord | undefined, repointCurrent: string | undefined, stamp: string): Promise<string>;
}
