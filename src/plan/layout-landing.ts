import type { Disk, DiskLayout, FsInfo, VolumeGroup } from '../observe/layout.js';
import type { PlacedPartition } from './layout-size.js';
import { partitionPath } from './layout-steps.js';

/** What a landing disk holds: nothing, this replica (as the plan would lay it out), or something else. */
export type LandingHolds = 'this-replica' | 'blank' | 'other';

/**
 * Compares a landing disk with what the plan would put there: the same table type, disk
 * identifier, and partitions (number, start, size, type, GPT GUID), or, for a disk without a table,
 * the same whole-disk signature and UUID.
 */
export function landingHoldsOf(landing: Disk, origin: Disk, placed: readonly PlacedPartition[]): LandingHolds {
  if (!landing.table && !landing.holds && landing.partitions.length === 0) return 'blank';
  if (origin.table) {
    if (landing.table !== origin.table || landing.tableId?.toLowerCase() !== origin.tableId?.toLowerCase()) return 'other';
    if (landing.partitions.length !== placed.length) return 'other';
    const sector = landing.logicalSectorBytes;
    const same = placed.every(({ origin: p, startBytes, sizeBytes }) => {
      const l = landing.partitions.find((x) => x.number === p.number);
      return (
        l !== undefined &&
        l.startSector * sector === startBytes &&
        l.sizeSectors === Math.floor(sizeBytes / sector) &&
        l.type === p.type &&
        (origin.table !== 'gpt' || l.partUuid?.toUpperCase() === p.partUuid?.toUpperCase())
      );
    });
    return same ? 'this-replica' : 'other';
  }
  if (origin.holds && !landing.table && sameFs(landing.holds, origin.holds)) return 'this-replica';
  return 'other';
}

export function sameFs(a: FsInfo | undefined, b: FsInfo | undefined): boolean {
  return a !== undefined && b !== undefined && a.type === b.type && a.uuid !== undefined && a.uuid.toLowerCase() === b.uuid?.toLowerCase();
}

/** Every signature of a layout by device path: partitions, whole disks and logical volumes. */
export function signatures(layout: DiskLayout): Map<string, FsInfo> {
  const out = new Map<string, FsInfo>();
  for (const d of layout.disks) {
    if (d.holds) out.set(d.path, d.holds);
    for (const p of d.partitions) if (p.fs) out.set(p.path, p.fs);
  }
  for (const vg of layout.volumeGroups) for (const lv of vg.lvs) if (lv.fs) out.set(lv.path, lv.fs);
  return out;
}

/** True for a disk's own path and its partitions' paths. */
export function onDisk(disk: Disk, path: string): boolean {
  return path === disk.path || disk.partitions.some((p) => p.path === path);
}

export function volumeGroupsOn(layout: DiskLayout, disk: Disk): VolumeGroup[] {
  return layout.volumeGroups.filter((vg) => vg.pvs.some((pv) => onDisk(disk, pv)));
}

/** Where the landing host uses a disk: its mounted filesystems and swap, also on its volume groups. */
export function mountsOn(layout: DiskLayout, disk: Disk): string[] {
  const mounts = [disk.holds, ...disk.partitions.map((p) => p.fs)].flatMap((fs) => (fs?.mountPoint ? [fs.mountPoint] : []));
  for (const vg of volumeGroupsOn(layout, disk)) for (const lv of vg.lvs) if (lv.fs?.mountPoint) mounts.push(lv.fs.mountPoint);
  return mounts;
}

/** A landing disk's contents in a few words, for a refusal. */
export function describe(layout: DiskLayout, disk: Disk): string {
  const what: string[] = [];
  if (disk.table) what.push(`a ${disk.table === 'gpt' ? 'GPT' : 'MBR'} partition table (${disk.tableId}) with ${disk.partitions.length} partition${disk.partitions.length === 1 ? '' : 's'}`);
  if (disk.holds) what.push(disk.holds.type === 'LVM2_member' ? 'an LVM physical volume' : `a ${disk.holds.type} signature`);
  const vgs = volumeGroupsOn(layout, disk).map((vg) => vg.name);
  if (vgs.length > 0) what.push(`volume group${vgs.length === 1 ? '' : 's'} ${vgs.join(', ')}`);
  return what.join(', ') || 'data';
}

/** The landing path of an origin device on a mapped disk: the disk itself or its partition of the same number. */
export function landingPathOf(origin: Disk, landing: Disk, path: string): string | undefined {
  if (path === origin.path) return landing.path;
  const p = origin.partitions.find((x) => x.path === path);
  return p ? partitionPath(landing.path, p.number) : undefined;
}
