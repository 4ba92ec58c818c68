import { posix } from 'node:path';
import type { Exclusions, SnapshotProvider } from '../config/spec.js';
import type { Filesystem, OriginFacts } from '../observe/facts.js';
import { matchesAny } from '../util/glob.js';
import { InsufficientSnapshotSpaceError, SnapshotError } from './errors.js';

export type ConcreteProvider = Exclude<SnapshotProvider, 'auto'>;

/** One filesystem to copy, and how its point-in-time view is taken. */
export interface CopyUnit {
  readonly fs: Filesystem;
  readonly provider: ConcreteProvider;
  /** Mount point relative to the origin root ('' for the root filesystem itself). */
  readonly relativePath: string;
  /** Mount points inside this filesystem (relative to it) whose contents another unit copies or nobody does. */
  readonly nestedMounts: readonly string[];
  /** For LVM: the share of the LV's size to reserve for the snapshot (the policy's minFreePercent). */
  readonly snapshotPercent: number;
}

export interface Selection {
  readonly units: readonly CopyUnit[];
  readonly excluded: readonly { readonly fs: Filesystem; readonly reason: string }[];
}

/** Decides what to copy and how to snapshot it. Pure: the plan shows its result, apply follows it. */
export function selectFilesystems(
  facts: OriginFacts,
  root: string,
  exclude: Exclusions,
  snapshot: { provider: SnapshotProvider; minFreePercent: number },
  host: string,
): Selection {
  const rootFs = facts.filesystems.find((f) => f.mountPoint === root);
  if (!rootFs) throw new SnapshotError('snapshot.no_root', `${host}: no local filesystem is mounted at ${root}`);
  const excluded: { fs: Filesystem; reason: string }[] = [];
  const kept: Filesystem[] = [];
  for (const fs of facts.filesystems) {
    const reason = exclusionReason(fs, exclude);
    if (reason && fs === rootFs) throw new SnapshotError('snapshot.root_excluded', `${host}: the root filesystem ${fs.source} is excluded by ${reason}; a replica needs its root`);
    if (reason) excluded.push({ fs, reason });
    else kept.push(fs);
  }
  const relative = (mount: string): string => posix.relative(root, mount);
  const units = kept.map((fs): CopyUnit => {
    const nested = mountsBelow(facts.filesystems.map((other) => other.mountPoint), fs.mountPoint);
    return { fs, provider: chooseProvider(fs, snapshot, facts, host), relativePath: relative(fs.mountPoint), nestedMounts: nested, snapshotPercent: Math.max(snapshot.minFreePercent, 5) };
  });
  return { units, excluded };
}

/**
 * The room a snapshot grows into: free space in the filesystem for btrfs, free extents of the
 * volume group (against the LV's size) for LVM. fsfreeze and none need none.
 */
function snapshotSpace(
  provider: ConcreteProvider,
  fs: Filesystem,
  facts: OriginFacts,
): { availableBytes: number; sizeBytes: number; volumeGroup?: string } | undefined {
  if (provider === 'btrfs') return { availableBytes: fs.availableBytes, sizeBytes: fs.sizeBytes };
  if (provider === 'lvm') {
    const lv = facts.logicalVolumes.find((l) => `${l.vg}/${l.lv}` === fs.lvmName);
    return lv ? { availableBytes: lv.vgFreeBytes, sizeBytes: lv.sizeBytes, volumeGroup: lv.vg } : undefined;
  }
  return undefined;
}

function exclusionReason(fs: Filesystem, exclude: Exclusions): string | undefined {
  for (const v of exclude.volumes) {
    if (matchesAny(fs.source, [v]) || (fs.lvmName !== undefined && matchesAny(fs.lvmName, [v]))) return `exclude.volumes ${v}`;
  }
  for (const m of exclude.mounts) if (matchesAny(fs.mountPoint, [m])) return `exclude.mounts ${m}`;
  return undefined;
}

/** The mount points strictly below `parent`, relative to it. */
export function mountsBelow(mountPoints: readonly string[], parent: string): string[] {
  return mountPoints.filter((m) => isInside(m, parent)).map((m) => posix.relative(parent, m));
}

function isInside(path: string, parent: string): boolean {
  return parent === '/' ? path !== '/' : path.startsWith(`${parent}/`);
}

/** Filesystems the kernel cannot freeze (FIFREEZE fails with EOPNOTSUPP): an EFI system partition's vfat among them. */
const UNFREEZABLE = new Set(['vfat', 'msdos', 'exfat', 'ntfs', 'ntfs3', 'fuseblk']);

function chooseProvider(
  fs: Filesystem,
  snapshot: { provider: SnapshotProvider; minFreePercent: number },
  facts: OriginFacts,
  host: string,
): ConcreteProvider {
  const wanted = snapshot.provider;
  const unfreezable = UNFREEZABLE.has(fs.fsType);
  const provider: ConcreteProvider =
    wanted !== 'auto' ? wanted : fs.fsType === 'btrfs' && facts.tools.btrfs ? 'btrfs' : fs.lvmName && facts.tools.lvcreate ? 'lvm' : unfreezable ? 'none' : 'fsfreeze';
  if (provider === 'fsfreeze' && unfreezable)
    throw new SnapshotError('snapshot.unsuitable', `${host}: ${fs.mountPoint} is ${fs.fsType}, which cannot be frozen; use provider auto (it is copied live, and checked unchanged after its copy) or lvm`);
  if (provider === 'btrfs' && fs.fsType !== 'btrfs')
    throw new SnapshotError('snapshot.unsuitable', `${host}: ${fs.mountPoint} is ${fs.fsType}, not btrfs; use provider auto, fsfreeze or lvm`);
  if (provider === 'lvm' && !fs.lvmName)
    throw new SnapshotError('snapshot.unsuitable', `${host}: ${fs.mountPoint} is not on an LVM logical volume; use provider auto or fsfreeze`);
  const tool = { btrfs: 'btrfs', lvm: 'lvcreate', fsfreeze: 'fsfreeze', none: undefined }[provider];
  if (tool && !facts.tools[tool])
    throw new SnapshotError('snapshot.tool_missing', `${host}: provider ${provider} for ${fs.mountPoint} needs '${tool}', which is not installed`);
  const space = snapshotSpace(provider, fs, facts);
  if (space && space.sizeBytes > 0) {
    const freePercent = (space.availableBytes / space.sizeBytes) * 100;
    if (freePercent < snapshot.minFreePercent) {
      throw new InsufficientSnapshotSpaceError({ host, mountPoint: fs.mountPoint, freePercent, requiredPercent: snapshot.minFreePercent, ...space });
    }
  }
  return provider;
}
