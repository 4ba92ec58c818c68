import type { Disk, FsInfo, Partition, VolumeGroup } from '../observe/layout.js';
import { LOCAL_FS_TYPES } from '../observe/facts.js';

/**
 * How big each piece of a replica's layout must be on the landing disks. Pure arithmetic in bytes:
 * what may shrink (a copied filesystem, down to its used bytes plus HEADROOM), what grows (one
 * partition per disk), and where every partition then starts.
 */

export const HEADROOM = 0.2;
export const MiB = 1024 ** 2;
/** pvcreate's default data alignment: the first extent starts 1 MiB into a physical volume. */
export const PV_DATA_OFFSET = MiB;
/** mkfs.xfs refuses filesystems smaller than this (xfsprogs 5.19 and later). */
const FS_FLOOR: Readonly<Record<string, number>> = { xfs: 300 * MiB };

/** The least a piece may get, and why, in the user's words. */
export interface Need {
  readonly bytes: number;
  readonly why: string;
}

export function isCopied(fs: FsInfo | undefined): boolean {
  return fs !== undefined && fs.mountPoint !== undefined && LOCAL_FS_TYPES.has(fs.type);
}

export function isSwap(p: Partition): boolean {
  return p.fs?.type === 'swap' || p.type === '82' || p.type === '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';
}

const BIOS_BOOT = '21686148-6449-6E6F-744E-656564454649';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

export function isExtended(p: Partition): boolean {
  return ['5', 'f', '85'].includes(p.type);
}

function isBootArea(p: Partition): boolean {
  return p.type === BIOS_BOOT || p.type === ESP || p.type === 'ef';
}

/** The least a filesystem may get: its used bytes plus headroom, never more than it has now. */
export function fsNeed(fs: FsInfo | undefined, sizeBytes: number, usedOverride?: ReadonlyMap<string, number>): Need & { shrinks: boolean } {
  const used = fs?.mountPoint !== undefined ? (usedOverride?.get(fs.mountPoint) ?? fs.usedBytes) : undefined;
  if (!isCopied(fs) || used === undefined) {
    const what = fs ? `${fs.type}${fs.mountPoint || fs.type === 'swap' ? '' : ', not mounted'}` : 'no filesystem';
    return { bytes: sizeBytes, why: `${fmtBytes(sizeBytes)} that cannot shrink (${what})`, shrinks: false };
  }
  const bytes = Math.min(sizeBytes, Math.max(Math.ceil(used * (1 + HEADROOM)), FS_FLOOR[fs!.type] ?? 0));
  return { bytes, why: `${fmtBytes(used)} used + ${HEADROOM * 100}% headroom`, shrinks: true };
}

/** Each logical volume's size on the landing host: the origin's when the volume group has room, else shrunk toward its need. */
export function sizeLogicalVolumes(vg: VolumeGroup, lvs: VolumeGroup['lvs'], capacity: number, usedOverride?: ReadonlyMap<string, number>): Map<string, number> | Need {
  const ext = vg.extentBytes;
  const keep = lvs.map((lv) => lv.sizeBytes);
  const min = lvs.map((lv) => roundUp(fsNeed(lv.fs, lv.sizeBytes, usedOverride).bytes, ext));
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  if (sum(keep) <= capacity) return new Map(lvs.map((lv, i) => [lv.name, keep[i]!]));
  if (sum(min) > capacity) return vgNeed(vg, lvs, usedOverride);
  const ratio = (capacity - sum(min)) / (sum(keep) - sum(min));
  return new Map(lvs.map((lv, i) => [lv.name, min[i]! + roundDown((keep[i]! - min[i]!) * ratio, ext)]));
}

/** What a volume group's logical volumes need together, with the figures. */
export function vgNeed(vg: VolumeGroup, lvs: VolumeGroup['lvs'], usedOverride?: ReadonlyMap<string, number>): Need {
  let shrinking = 0;
  let fixed = 0;
  for (const lv of lvs) {
    const need = fsNeed(lv.fs, lv.sizeBytes, usedOverride);
    if (need.shrinks) shrinking += roundUp(need.bytes, vg.extentBytes);
    else fixed += need.bytes;
  }
  const parts = [shrinking > 0 ? `${fmtBytes(shrinking)} for used space + ${HEADROOM * 100}% headroom` : '', fixed > 0 ? `${fmtBytes(fixed)} that cannot shrink` : ''];
  return { bytes: shrinking + fixed, why: `the logical volumes of ${vg.name} need ${parts.filter(Boolean).join(' and ') || 'nothing'}` };
}

/** A volume group's room on physical volumes of these sizes. */
export function vgCapacity(pvBytes: readonly number[], extentBytes: number): number {
  return pvBytes.reduce((sum, b) => sum + Math.max(0, roundDown(b - PV_DATA_OFFSET, extentBytes)), 0);
}

export interface PlacedPartition {
  readonly origin: Partition;
  readonly startBytes: number;
  readonly sizeBytes: number;
}

export type Placement = { placed: PlacedPartition[]; grown?: { path: string; from: number; to: number } } | { tooSmall: { needBytes: number; detail: string } };

/**
 * Places an origin disk's partitions on a landing disk. Every partition keeps its size except one,
 * the grower (the last LVM physical volume, else the last data partition), which takes what the
 * landing disk has more or gives what it has less; the partitions after it move with it, and an
 * extended partition around it changes size with it. Changes are whole MiB, so starts stay aligned.
 */
export function placePartitions(origin: Disk, landingUsableEnd: number, needOf: (p: Partition) => Need): Placement {
  const sector = origin.logicalSectorBytes;
  const parts = [...origin.partitions].sort((a, b) => a.startSector - b.startSector);
  const end = (p: Partition): number => (p.startSector + p.sizeSectors) * sector;
  const usedEnd = Math.max(0, ...parts.map(end));
  const originUsableEnd = origin.lastLba !== undefined ? (origin.lastLba + 1) * sector : usableEnd(origin.sizeBytes, sector, origin.table);
  const grower = pickGrower(parts);
  const slack = originUsableEnd - usedEnd;
  const delta = landingUsableEnd - originUsableEnd;
  let change = delta >= 0 ? roundDown(delta, MiB) : -roundUp(Math.max(0, -delta - slack), MiB);
  if (grower && change < 0) {
    const need = needOf(grower);
    const room = grower.sizeBytes - need.bytes;
    if (-change > room) {
      const needBytes = usedEnd - roundDown(Math.max(0, room), MiB) + origin.sizeBytes - originUsableEnd;
      return { tooSmall: { needBytes, detail: `${grower.path}: ${need.why}; ${fmtBytes(needBytes - need.bytes)} for its other partitions and the partition table` } };
    }
  }
  if (!grower && change < 0) return { tooSmall: { needBytes: usedEnd + origin.sizeBytes - originUsableEnd, detail: 'its partitions, none of which can shrink' } };
  if (!grower) change = 0;
  const growEnd = grower ? end(grower) : 0;
  const placed = parts.map((p): PlacedPartition => {
    const start = p.startSector * sector;
    if (!grower || change === 0) return { origin: p, startBytes: start, sizeBytes: p.sizeBytes };
    const contains = p === grower || (start <= grower.startSector * sector && end(p) >= growEnd);
    if (contains) return { origin: p, startBytes: start, sizeBytes: p.sizeBytes + change };
    if (start >= growEnd) return { origin: p, startBytes: start + change, sizeBytes: p.sizeBytes };
    return { origin: p, startBytes: start, sizeBytes: p.sizeBytes };
  });
  return { placed, ...(grower && change !== 0 ? { grown: { path: grower.path, from: grower.sizeBytes, to: grower.sizeBytes + change } } : {}) };
}

function pickGrower(parts: readonly Partition[]): Partition | undefined {
  const pv = parts.filter((p) => p.lvmPv !== undefined || p.fs?.type === 'LVM2_member' || p.type === '8e' || p.type === 'E6D6D379-F507-44C2-A23C-238F2A3DF928');
  if (pv.length > 0) return pv[pv.length - 1];
  const data = parts.filter((p) => !isExtended(p) && !isBootArea(p) && !isSwap(p));
  return data[data.length - 1];
}

/** Where partitions must end on a disk: before GPT's backup table, or at the disk's end. */
export function usableEnd(sizeBytes: number, sector: number, table: Disk['table']): number {
  if (table !== 'gpt') return roundDown(sizeBytes, sector);
  return roundDown(sizeBytes, sector) - (1 + Math.ceil((128 * 128) / sector)) * sector;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

export function roundDown(n: number, unit: number): number {
  return Math.floor(n / unit) * unit;
}

export function fmtBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1).replace(/\.0$/, '')} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${n} B`;
}
