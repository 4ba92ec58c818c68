/**
 * The layout of a disks target: which commands turn the landing disks into disks shaped like the
 * origin's, so the copy boots from them. Pure: it reads two observed layouts and returns steps.
 *
 * Decisions:
 * - Identity is kept, as ReaR does: partition tables keep the origin's disk GUID or MBR identifier,
 *   partitions their GUIDs, types, names and boot flags; filesystems, swap and LVM physical volumes
 *   keep their UUIDs and labels (mkfs -U / -m uuid= / -i, mkswap -U, pvcreate --uuid). So every
 *   UUID=, LABEL=, PARTUUID= reference in the copy (fstab, crypttab, root=, resume=) stays right,
 *   and only /dev/<name> references need the `devices` map. Volume group and logical volume
 *   names are kept too (/dev/vg/lv, /dev/mapper/vg-lv are the same); their LVM UUIDs are not.
 * - Sizes: one partition per disk changes size, the last LVM physical volume or else the last data
 *   partition; the others keep theirs (BIOS boot, ESP, /boot, swap). On a smaller landing disk it
 *   shrinks only as far as its copied filesystems' used bytes plus 20% headroom (a physical volume:
 *   its logical volumes' needs); a layout that does not fit is refused with the figures, before
 *   any step. Logical volumes keep their size when the volume group has room, else shrink toward
 *   their needs in proportion.
 * - Safety: steps change only disks named in `disks`. A landing disk that holds something other
 *   than this replica is refused unless `wipe` is set, and refused even then while mounted.
 *   A disk that already holds this replica gets no table step, and nothing that is already there
 *   (same signature and UUID, same volume group or logical volume) is made again: a second plan
 *   of the same layout has no steps.
 */
import type { ReplicaDiskMap } from '../config/schema-types.js';
import type { Disk, DiskLayout, Partition, VolumeGroup } from '../observe/layout.js';
import { matchesAny } from '../util/glob.js';
import { describe, landingHoldsOf, landingPathOf, mountsOn, sameFs, signatures, volumeGroupsOn, type LandingHolds } from './layout-landing.js';
import { fmtBytes, fsNeed, isCopied, isExtended, placePartitions, PV_DATA_OFFSET, roundUp, usableEnd, vgNeed, type Need, type PlacedPartition } from './layout-size.js';
import { canMake, deactivateStep, makeStep, partitionPath, tableStep, wipeStep, type LayoutStep } from './layout-steps.js';
import { planVolumeGroups } from './layout-lvm.js';
import { Refusal, refuse } from './layout-refuse.js';

export type { LandingHolds } from './layout-landing.js';
export type { LayoutStep } from './layout-steps.js';

export interface LayoutInput {
  readonly origin: DiskLayout;
  readonly landing: DiskLayout;
  /** Origin disk -> landing disk. */
  readonly disks: readonly ReplicaDiskMap[];
  /** The replica's volume exclusions: `/dev/sdc`, `/dev/sda3`, `vg/lv`; globs allowed. */
  readonly excludeVolumes: readonly string[];
  /** Erase landing disks that hold something other than this replica. */
  readonly wipe: boolean;
  /** Overrides what the landing layout says a disk holds. */
  readonly landingHolds?: (disk: Disk) => LandingHolds;
  /** Used bytes by mount point, where the origin's layout has none (or older figures). */
  readonly usedBytes?: ReadonlyMap<string, number>;
}

export interface LayoutSummary {
  readonly disks: ReadonlyArray<{ readonly origin: string; readonly landing: string; readonly holds: LandingHolds; readonly action: 'lay out' | 'wipe and lay out' | 'keep' }>;
  /** Origin volumes left out by the exclusions, and what that means. */
  readonly excluded: readonly string[];
  /** Origin disks neither mapped nor excluded that hold nothing rmm copies. */
  readonly notCopied: readonly string[];
  /** Partitions and logical volumes whose size differs from the origin's. */
  readonly resized: readonly string[];
  readonly notes: readonly string[];
}

export type LayoutPlan =
  | { readonly refused: string }
  | {
      readonly steps: readonly LayoutStep[];
      /** Origin device path -> landing device path, where they differ (for the storage fixups). */
      readonly devices: ReadonlyMap<string, string>;
      readonly keepsUuids: true;
      readonly summary: LayoutSummary;
    };

export function planDiskLayout(input: LayoutInput): LayoutPlan {
  try {
    return plan(input);
  } catch (e) {
    if (e instanceof Refusal) return { refused: e.message };
    throw e;
  }
}

export interface MappedDisk {
  readonly origin: Disk;
  readonly landing: Disk;
  readonly placed: readonly PlacedPartition[];
  holds: LandingHolds;
}

function plan(input: LayoutInput): LayoutPlan {
  const { origin, landing } = input;
  const excluded = (path: string): boolean => matchesAny(path, input.excludeVolumes);
  const summary = { disks: [] as Array<LayoutSummary['disks'][number]>, excluded: [] as string[], notCopied: [] as string[], resized: [] as string[], notes: [] as string[] };
  const pairs = mapDisks(input, excluded, summary.excluded);
  const lvm = planVolumeGroups(input, pairs.map((p) => p.origin), excluded, summary);
  for (const d of origin.disks) {
    if (pairs.some((p) => p.origin === d) || excluded(d.path)) continue;
    const copied = copiedOn(d, origin, lvm.keptLvs, excluded);
    if (copied) refuse(`origin disk ${d.path} holds ${copied}, which is copied, but no landing disk is named for it in disks: map it to one, or exclude it`);
    summary.notCopied.push(d.path);
  }

  const mapped: MappedDisk[] = pairs.map(({ origin: o, landing: l }) => {
    const placed = placeOn(o, l, (p) => needOf(p, origin, lvm.kept, input.usedBytes), summary.resized);
    const holds = input.landingHolds?.(l) ?? landingHoldsOf(l, o, placed);
    return { origin: o, landing: l, placed, holds };
  });

  const steps: LayoutStep[] = [];
  const existing = signatures(landing);
  for (const m of mapped) {
    const wiping = m.holds === 'other';
    if (wiping) steps.push(...wipeSteps(landing, m, mapped, input.wipe));
    summary.disks.push({ origin: m.origin.path, landing: m.landing.path, holds: m.holds, action: wiping ? 'wipe and lay out' : m.holds === 'this-replica' ? 'keep' : 'lay out' });
    if (wiping) for (const path of existing.keys()) if (onLanding(m.landing, path, landing)) existing.delete(path);
    if (m.origin.table && m.holds !== 'this-replica') steps.push(tableStep(m.origin, m.landing, m.placed));
    for (const target of devicesToMake(m, excluded, lvm.keptVgNames, summary.notes)) {
      const have = existing.get(target.landing);
      if (sameFs(have, target.fs)) continue;
      if (have?.mountPoint) refuse(`${target.landing} on the landing host is mounted at ${have.mountPoint} but holds ${have.type}, not ${target.origin}'s ${target.fs.type}: unmount it first`);
      if (have && m.holds === 'this-replica') steps.push(wipeStep(target.landing, `the ${have.type} signature that is not the origin's`, 'the table is this replica\'s'));
      steps.push(makeStep(target.landing, target.fs, target.sizeBytes, target.origin));
    }
  }
  steps.push(...lvm.steps(mapped, landing, existing));

  const devices = new Map<string, string>();
  for (const m of mapped) {
    if (m.origin.path !== m.landing.path) devices.set(m.origin.path, m.landing.path);
    for (const p of m.origin.partitions) {
      const to = partitionPath(m.landing.path, p.number);
      if (p.path !== to) devices.set(p.path, to);
    }
  }
  return { steps, devices, keepsUuids: true, summary };
}

function mapDisks(input: LayoutInput, excluded: (path: string) => boolean, notes: string[]): Array<{ origin: Disk; landing: Disk }> {
  const out: Array<{ origin: Disk; landing: Disk }> = [];
  const list = (l: DiskLayout): string => l.disks.map((d) => d.path).join(', ') || 'none';
  for (const map of input.disks) {
    const o = input.origin.disks.find((d) => d.path === map.origin) ?? refuse(`origin disk ${map.origin} in disks is not a disk of the origin (its disks: ${list(input.origin)})`);
    const l = input.landing.disks.find((d) => d.path === map.target) ?? refuse(`landing disk ${map.target} in disks is not a disk of the landing host (its disks: ${list(input.landing)})`);
    if (out.some((p) => p.landing === l)) refuse(`landing disk ${l.path} is named for two origin disks in disks`);
    if (out.some((p) => p.origin === o)) refuse(`origin disk ${o.path} is named twice in disks`);
    if (excluded(o.path)) {
      notes.push(`${o.path}: excluded; nothing is laid out on ${l.path}`);
      continue;
    }
    if (l.readOnly) refuse(`landing disk ${l.path} is read-only`);
    out.push({ origin: o, landing: l });
  }
  for (const d of input.origin.disks) if (excluded(d.path) && !input.disks.some((m) => m.origin === d.path)) notes.push(`${d.path}: excluded; no landing disk needed`);
  return out;
}

/** The first copied filesystem an unmapped origin disk holds, in words; undefined when it holds none. */
function copiedOn(disk: Disk, origin: DiskLayout, keptLvs: ReadonlySet<string>, excluded: (path: string) => boolean): string | undefined {
  const own = [{ path: disk.path, fs: disk.holds }, ...disk.partitions.map((p) => ({ path: p.path, fs: p.fs }))].find((x) => !excluded(x.path) && isCopied(x.fs));
  if (own) return `${own.fs!.mountPoint} (${own.fs!.type} on ${own.path})`;
  for (const vg of volumeGroupsOn(origin, disk)) {
    const lv = vg.lvs.find((l) => keptLvs.has(`${vg.name}/${l.name}`) && isCopied(l.fs));
    if (lv) return `${lv.fs!.mountPoint} (${lv.fs!.type} on ${vg.name}/${lv.name}, whose volume group has a physical volume there)`;
  }
  return undefined;
}

function needOf(p: Pick<Partition, 'lvmPv' | 'fs' | 'sizeBytes'>, origin: DiskLayout, keptVgs: ReadonlyMap<string, VolumeGroup['lvs']>, used?: ReadonlyMap<string, number>): Need {
  const vg = p.lvmPv !== undefined ? origin.volumeGroups.find((g) => g.name === p.lvmPv) : undefined;
  if (!vg) return fsNeed(p.fs, p.sizeBytes, used);
  if (vg.pvs.length > 1) return { bytes: p.sizeBytes, why: `${fmtBytes(p.sizeBytes)} that cannot shrink (a physical volume of ${vg.name}, which has ${vg.pvs.length})` };
  const need = vgNeed(vg, keptVgs.get(vg.name) ?? [], used);
  return { bytes: Math.min(p.sizeBytes, PV_DATA_OFFSET + roundUp(need.bytes, vg.extentBytes)), why: need.why };
}

/** The origin's partitions placed on the landing disk, or a refusal with the figures. */
function placeOn(o: Disk, l: Disk, needOfPartition: (p: Pick<Partition, 'lvmPv' | 'fs' | 'sizeBytes'>) => Need, resized: string[]): PlacedPartition[] {
  const tooSmall = (need: number, why: string): never => refuse(`landing disk ${l.path} is ${fmtBytes(l.sizeBytes)}; origin ${o.path} needs at least ${fmtBytes(need)} (${why})`);
  if (!o.table) {
    if (o.holds) {
      const need = needOfPartition({ lvmPv: o.lvmPv, fs: o.holds, sizeBytes: o.sizeBytes });
      if (l.sizeBytes < need.bytes) tooSmall(need.bytes, need.why);
    }
    return [];
  }
  const placement = placePartitions(o, usableEnd(l.sizeBytes, l.logicalSectorBytes, o.table), needOfPartition);
  if ('tooSmall' in placement) return tooSmall(placement.tooSmall.needBytes, placement.tooSmall.detail);
  for (const p of placement.placed) {
    if (p.startBytes % l.logicalSectorBytes !== 0) refuse(`${p.origin.path} starts at byte ${p.startBytes}, not on a ${l.logicalSectorBytes}-byte sector of landing disk ${l.path}`);
    if (p.origin.name?.includes('"')) refuse(`${p.origin.path} has a GPT name with a double quote, which sfdisk cannot write: ${p.origin.name}`);
  }
  const g = placement.grown;
  if (g) resized.push(`${partitionPath(l.path, numberOf(o, g.path))} ${g.to > g.from ? 'grows' : 'shrinks'} from ${fmtBytes(g.from)} (${g.path}) to ${fmtBytes(g.to)}`);
  return placement.placed;
}

function numberOf(disk: Disk, path: string): number {
  return disk.partitions.find((p) => p.path === path)!.number;
}

/** The steps that clear a landing disk holding something else, or a refusal. */
function wipeSteps(landing: DiskLayout, m: MappedDisk, mapped: readonly MappedDisk[], wipe: boolean): LayoutStep[] {
  const l = m.landing;
  const mounts = mountsOn(landing, l);
  if (mounts.length > 0) refuse(`landing disk ${l.path} is in use by the landing host (mounted at ${mounts.join(', ')}); rmm does not erase it, even with wipe`);
  if (!wipe) refuse(`landing disk ${l.path} holds ${describe(landing, l)}, which is not this replica: set wipe: true to erase it, or name another disk`);
  const steps: LayoutStep[] = [];
  for (const vg of volumeGroupsOn(landing, l)) {
    const outside = vg.pvs.filter((pv) => !mapped.some((x) => onLanding(x.landing, pv, landing)));
    if (outside.length > 0) refuse(`landing disk ${l.path} holds part of volume group ${vg.name}, which also has ${outside.join(', ')}, not named in disks: rmm does not erase it`);
    steps.push(deactivateStep(vg.name, l.path));
  }
  for (const p of l.partitions) if (p.fs) steps.push(wipeStep(p.path, `the ${p.fs.type} signature`));
  steps.push(wipeStep(l.path, describe(landing, l)));
  return steps;
}

function onLanding(disk: Disk, path: string, layout: DiskLayout): boolean {
  if (path === disk.path || disk.partitions.some((p) => p.path === path)) return true;
  return volumeGroupsOn(layout, disk).some((vg) => vg.lvs.some((lv) => lv.path === path));
}

interface MakeTarget {
  readonly origin: string;
  readonly landing: string;
  readonly fs: NonNullable<Partition['fs']>;
  readonly sizeBytes: number;
}

/** The partitions (or the whole disk) that get a filesystem, swap or physical volume. */
function devicesToMake(m: MappedDisk, excluded: (path: string) => boolean, keptVgs: ReadonlySet<string>, notes: string[]): MakeTarget[] {
  const items = m.origin.table
    ? m.placed.filter((p) => !isExtended(p.origin)).map((p) => ({ path: p.origin.path, fs: p.origin.fs, lvmPv: p.origin.lvmPv, sizeBytes: p.sizeBytes }))
    : [{ path: m.origin.path, fs: m.origin.holds, lvmPv: m.origin.lvmPv, sizeBytes: m.landing.sizeBytes }];
  const out: MakeTarget[] = [];
  for (const item of items) {
    const fs = item.fs;
    if (!fs) continue;
    const landing = landingPathOf(m.origin, m.landing, item.path)!;
    if (excluded(item.path)) {
      notes.push(`${item.path}: excluded; ${landing} is left empty`);
      continue;
    }
    if (item.lvmPv !== undefined && !keptVgs.has(item.lvmPv)) continue;
    if (!canMake(fs.type)) {
      if (isCopied(fs)) refuse(`${item.path} holds ${fs.mountPoint} (${fs.type}), which rmm cannot make on the landing disk: exclude it`);
      notes.push(`${item.path}: rmm cannot make ${fs.type}; ${landing} is left empty`);
      continue;
    }
    out.push({ origin: item.path, landing, fs, sizeBytes: item.sizeBytes });
  }
  return out;
}
