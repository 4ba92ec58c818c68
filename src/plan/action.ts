import type { CopyUnit } from '../snapshot/select.js';
import type { LayoutStep, LayoutSummary } from './layout.js';
import type { ApplyInputs } from './inputs.js';

/**
 * `fixup`: only the fixup settings changed; the fixups are re-run on the current recovery point, nothing is copied.
 * `rollback`: a disks sync was cut and the origin cannot be reached: the landing volumes go back to their last point.
 */
export type ActionKind = 'sync' | 'fixup' | 'rollback' | 'none' | 'blocked';

/**
 * One step of a sync as the plan declares it; apply emits an event for each, in this order.
 * `when: 'changed'` steps are skipped when the compare step finds the origin unchanged since the
 * last recovery point (the sync then verifies that point instead of copying a new one).
 */
export interface PlannedStep {
  /** Unique within the action, stable across plan and apply: `snapshot /srv/data`, `hooks preSync`. */
  readonly id: string;
  readonly kind: StepKind;
  /** Where it acts: `origin`, `target` or `local` (the rmm host). */
  readonly on: 'origin' | 'target' | 'local' | 'both';
  /** What it does, in the user's words. */
  readonly detail: string;
  readonly when: 'always' | 'changed';
  /** Whether it changes something on a host (what the text plan lists). */
  readonly changes: boolean;
}

export type StepKind =
  | 'lock'
  | 'check'
  | 'restore'
  | 'install'
  | 'record-start'
  | 'clean'
  | 'hooks'
  | 'snapshot'
  | 'compare'
  | 'channel'
  | 'copy'
  | 'release'
  | 'revoke'
  | 'fixup'
  | 'promote'
  | 'record'
  | 'prune'
  | 'layout'
  | 'landing-snapshot'
  | 'rollback'
  | 'mount'
  | 'bootloader'
  | 'initramfs'
  | 'unmount'
  | 'unlock';

/** A filesystem to copy, with everything the copy needs that the plan decided. */
export interface PlannedUnit extends CopyUnit {
  /** Every mount point below this filesystem (relative to it), of any type: its manifest names them without attributes. */
  readonly innerMounts: readonly string[];
  /** exclude.paths re-anchored at this filesystem. */
  readonly excludePaths: readonly string[];
  /** tar streams into an empty copy (rsync resumes a folder a killed run left), or rsync, and why. */
  readonly method: { readonly kind: 'tar' } | { readonly kind: 'rsync'; readonly why: string };
}

export interface PlannedInstall {
  readonly on: 'origin' | 'target';
  readonly host: string;
  readonly package: 'rsync';
}

/** What a sync action carries: everything apply needs, so apply re-derives nothing. */
export interface SyncPlan {
  readonly origin: { readonly name: string; readonly address: string; readonly hostname: string; readonly machineId: string };
  readonly target: { readonly kind: 'directory'; readonly address: string; readonly path: string } | { readonly kind: 'disks'; readonly address: string; readonly record: string };
  readonly transfer: 'direct' | 'relay';
  readonly units: readonly PlannedUnit[];
  readonly installs: readonly PlannedInstall[];
  /** The recovery point the new one is built on (link-dest) and compared with; absent on a first sync. */
  readonly basePoint?: string;
  /** Whether the compare step can find the origin unchanged (the last point has manifests). */
  readonly mayVerify: boolean;
  /**
   * A copy a killed run promoted without recording it: `current` names it, the record only as pending.
   * The restore step puts it back in points/.partial (this sync resumes it) and `current` back on
   * `current` (the last recorded point), or removes `current` when there is none.
   */
  readonly restore?: { readonly point: string; readonly current?: string };
  /** The fixups this sync makes on its copy before it becomes current; absent when the replica gets none. */
  readonly fixups?: PlannedFixups;
  /** Disks targets: the layout, mounts, bootloader and initramfs of the landing disks. */
  readonly disks?: DisksPlan;
  /** Points retention removes after this sync: when it copies a new point, and when it verifies the last. */
  readonly prune: { readonly ifCopied: readonly string[]; readonly ifUnchanged: readonly string[] };
  readonly steps: readonly PlannedStep[];
}

/**
 * The fixups of one sync, computed at plan time from the origin's files. Apply rewrites a copied file
 * only when it is the text the plan read (`before`, a sha256): a file that changed since is refused,
 * and the next plan shows its new diff.
 */
export interface PlannedFixups {
  /** The spec's fixup settings' hash (src/fixup/inputs.ts): the record notes it with the point. */
  readonly hash: string;
  readonly files: readonly PlannedFixupFile[];
  /** Files the fixups read but leave alone (unparsable, not UTF-8, a symlink, too large), with why. */
  readonly left: readonly { readonly path: string; readonly why: string }[];
}

export interface PlannedFixupFile {
  readonly path: string;
  readonly before: string;
  /** The new text; absent when the file only moves. */
  readonly text?: string;
  readonly renamedTo?: string;
  /** The unified diff the plan shows (a rename shows as one). */
  readonly diff: string;
}

/**
 * What a sync onto landing disks does besides the copy: lay the disks out as the origin's (only what
 * is not there yet), mount them as the origin mounts its filesystems, and after the copy and the
 * fixups make the copy boot on its own (bootloader, initramfs), then unmount.
 */
export interface DisksPlan {
  readonly layout: readonly LayoutStep[];
  readonly summary: LayoutSummary;
  /** Where the landing host mounts the copy's filesystems while it writes them. */
  readonly mountRoot: string;
  /** In mount order: each copied filesystem's landing device at the origin's mount point (below mountRoot). */
  readonly mounts: readonly { readonly device: string; readonly mountPoint: string; readonly fsType: string; readonly relativePath: string; readonly volumeGroup?: string }[];
  readonly boot: {
    readonly firmware: 'bios' | 'uefi';
    /** The landing disk GRUB goes on (BIOS), the one holding the origin's boot disk's copy. */
    readonly disk: string;
    /** The ESP's mount point (UEFI). */
    readonly efiDirectory?: string;
  };
  /** Storage and network drivers the initramfs is rebuilt with, whatever the landing host has. */
  readonly drivers: readonly string[];
  /**
   * Boot files rmm makes in the copy itself (initramfs images, GRUB's configuration and modules, the
   * removable-media loader), as rsync patterns anchored at the origin's root: the copy neither sends
   * nor deletes them, so a sync that stops halfway never leaves the origin's in the replica.
   */
  readonly keptOut: readonly string[];
  /**
   * A kernel's files (rsync patterns anchored at the origin's root): sent, never deleted by the copy.
   * The bootloader step removes the kernels the origin no longer has, once GRUB's configuration holds
   * the origin's own, so a sync that stops halfway never leaves a GRUB naming a kernel that is gone.
   */
  readonly kernelFiles: readonly string[];
  /** What a sync that fails leaves: the disks rolled back to their snapshot, or not consistent until a sync completes, and why. */
  readonly rollback: string;
  /** Landing devices that are LVM logical volumes, each written through the loop device it is attached as. */
  readonly volumes?: readonly PlannedVolume[];
  /**
   * The landing volumes' snapshot of the last recovery point, taken before anything is written (or,
   * `reuse`, the one a cut sync took and left): a sync that fails merges it back.
   */
  readonly keep?: { readonly point: string; readonly reuse: boolean };
  /**
   * What each landing disk held when planned (src/plan/disks.ts landingFingerprint): apply re-reads
   * the disks under the lock and lays nothing out on a disk that changed since.
   */
  readonly landingSeen: Readonly<Record<string, string>>;
  /** Origin device references -> what the fixups wrote instead (UUID=…): kept with the replica, a fixup re-run rewrites them alike. */
  readonly fixupDevices: Readonly<Record<string, string>>;
}

/** A landing device that is a logical volume of the landing host (src/target/disks/volumes.ts). */
export interface PlannedVolume {
  /** As the spec names it. */
  readonly path: string;
  /** The loop device it is attached as, which the layout, the copy and GRUB write. */
  readonly loop: string;
  readonly vg: string;
  readonly lv: string;
  readonly thin: boolean;
}

/** How a disks replica's filesystems mount on its landing host: kept with it (src/target/disks/adapted.ts) for a fixup re-run. */
export type DisksMount = DisksPlan['mounts'][number];

export interface PlannedAction {
  readonly replica: string;
  readonly kind: ActionKind;
  /** Why, in the user's words; the first reason is the main one. */
  readonly reasons: readonly string[];
  /** For sync: what would be copied and how (a summary of `sync.units`). */
  readonly filesystems?: readonly { readonly mountPoint: string; readonly fsType: string; readonly provider: string }[];
  readonly skipped?: readonly { readonly mountPoint: string; readonly reason: string }[];
  /** What the target held when planned, so apply (after its lock) and a saved plan can tell that the world moved. */
  readonly observedRunId?: string;
  readonly specHash: string;
  /** When the schedule next makes the replica due (ISO time); absent without a schedule or a consistent point. */
  readonly nextDueAt?: string;
  /** Everything that shapes the apply, and its hash: a saved plan is refused when any of it changed. */
  readonly inputs: ApplyInputs;
  readonly inputsHash: string;
  readonly sync?: SyncPlan;
  /** For fixup: the re-run of the fixups on the current recovery point. */
  readonly fixup?: RefixupPlan;
  /** For rollback: the point the landing volumes go back to. */
  readonly rollback?: RollbackPlan;
}

/**
 * The fixups re-run on the current recovery point, in place, after a change of the spec's fixup
 * settings only (an ipRemap, a NIC mapping). The new texts are computed from the originals the
 * point kept of every file its fixups changed (.rmm/points/ID/originals/), never from the adapted
 * texts, so each re-run gives what a fresh copy would get; the diffs are against what the point
 * holds now.
 */
export interface RefixupPlan {
  readonly target:
    | { readonly kind: 'directory'; readonly address: string; readonly path: string }
    /** A disks replica is mounted (as its last sync mounted it) for the re-run, and unmounted after. */
    | { readonly kind: 'disks'; readonly address: string; readonly mountRoot: string; readonly mounts: readonly DisksMount[] };
  readonly point: string;
  /** The fixup settings' hash the point is adapted to after the re-run. */
  readonly hash: string;
  /** What the record notes as the point's fixups afterwards (`path`, or `from -> to` for a rename). */
  readonly files: readonly string[];
  readonly changes: readonly PointFileChange[];
  readonly left: readonly { readonly path: string; readonly why: string }[];
  readonly steps: readonly PlannedStep[];
}

/** A cut disks sync undone: each landing volume's snapshot of `point` merged back into it. */
export interface RollbackPlan {
  readonly address: string;
  readonly point: string;
  readonly mountRoot: string;
  readonly volumes: readonly PlannedVolume[];
  readonly steps: readonly PlannedStep[];
}

/** One file of the point rewritten, created or removed, only if the point still holds what the plan read. */
export interface PointFileChange {
  readonly path: string;
  /** The sha256 of the point's file when planned, or `absent`. */
  readonly before: string;
  /** The new text; absent: the file is removed (it moves to a new name, or back to its old one). */
  readonly text?: string;
  /** The file holds the origin's text, kept nowhere yet: it is saved to the point's originals first. */
  readonly keepOriginal: boolean;
  /** For a file created by a rename: the file whose owner and mode it takes (its original name). */
  readonly modeFrom?: string;
  readonly diff: string;
}

export interface Plan {
  readonly createdAt: string;
  readonly actions: readonly PlannedAction[];
}
