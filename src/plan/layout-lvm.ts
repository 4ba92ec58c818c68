import type { Disk, DiskLayout, FsInfo, VolumeGroup } from '../observe/layout.js';
import { matchesAny } from '../util/glob.js';
import { landingPathOf, onDisk, sameFs } from './layout-landing.js';
import { fmtBytes, isCopied, sizeLogicalVolumes, vgCapacity } from './layout-size.js';
import { canMake, lvcreateStep, makeStep, vgcreateStep, type LayoutStep } from './layout-steps.js';
import type { LayoutInput, MappedDisk } from './layout.js';
import { refuse } from './layout-refuse.js';

/** Segment types a plain `lvcreate --size` recreates with the same contents (striped ones become linear). */
const SEGTYPES = new Set(['linear', 'striped']);

export interface LvmPlan {
  /** `vg/lv` of every logical volume the exclusions keep, mapped or not. */
  readonly keptLvs: ReadonlySet<string>;
  /** The volume groups laid out on the landing disks, with the logical volumes they get. */
  readonly kept: ReadonlyMap<string, VolumeGroup['lvs']>;
  readonly keptVgNames: ReadonlySet<string>;
  steps(mapped: readonly MappedDisk[], landing: DiskLayout, existing: ReadonlyMap<string, FsInfo>): LayoutStep[];
}

interface Summary {
  excluded: string[];
  resized: string[];
  notes: string[];
}

/** Decides which volume groups and logical volumes the landing disks get; their steps come after the physical volumes'. */
export function planVolumeGroups(input: LayoutInput, mappedOrigin: readonly Disk[], excluded: (path: string) => boolean, summary: Summary): LvmPlan {
  const keptLvs = new Set<string>();
  const kept = new Map<string, VolumeGroup['lvs']>();
  for (const vg of input.origin.volumeGroups) {
    const lvs = vg.lvs.filter((lv) => {
      const out = matchesAny(`${vg.name}/${lv.name}`, input.excludeVolumes) || excluded(lv.path) || excluded(`/dev/mapper/${dmName(vg.name)}-${dmName(lv.name)}`);
      if (out) summary.excluded.push(`${vg.name}/${lv.name}: excluded; not created`);
      return !out;
    });
    for (const lv of lvs) keptLvs.add(`${vg.name}/${lv.name}`);
    const disks = vg.pvs.map((pv) => input.origin.disks.find((d) => onDisk(d, pv)) ?? refuse(`physical volume ${pv} of ${vg.name} is not on a disk or partition of the origin: rmm lays out volume groups on disks and partitions only`));
    const onMapped = disks.filter((d) => mappedOrigin.includes(d));
    if (onMapped.length === 0) continue;
    if (lvs.length === 0) {
      summary.notes.push(`volume group ${vg.name}: all its logical volumes are excluded; not created`);
      continue;
    }
    const missing = [...new Set(disks.filter((d) => !mappedOrigin.includes(d)).map((d) => d.path))];
    if (missing.length > 0) refuse(`volume group ${vg.name} has physical volumes on ${missing.join(', ')}, not named in disks: map ${missing.length === 1 ? 'it' : 'them'} too, or exclude its logical volumes`);
    for (const lv of lvs) {
      if (!SEGTYPES.has(lv.segtype)) refuse(`${vg.name}/${lv.name} is a ${lv.segtype} logical volume; rmm lays out linear and striped ones only: exclude it`);
      if (lv.segtype === 'striped') summary.notes.push(`${vg.name}/${lv.name}: striped on the origin, linear on the landing disks`);
    }
    kept.set(vg.name, lvs);
  }
  return {
    keptLvs,
    kept,
    keptVgNames: new Set(kept.keys()),
    steps: (mapped, landing, existing) => [...kept].flatMap(([name, lvs]) => vgSteps(input, input.origin.volumeGroups.find((g) => g.name === name)!, lvs, mapped, landing, existing, summary)),
  };
}

function vgSteps(input: LayoutInput, vg: VolumeGroup, lvs: VolumeGroup['lvs'], mapped: readonly MappedDisk[], landing: DiskLayout, existing: ReadonlyMap<string, FsInfo>, summary: Summary): LayoutStep[] {
  const pvs = vg.pvs.map((pv) => {
    const m = mapped.find((x) => onDisk(x.origin, pv))!;
    const placed = m.placed.find((p) => p.origin.path === pv);
    return { path: landingPathOf(m.origin, m.landing, pv)!, sizeBytes: placed ? placed.sizeBytes : m.landing.sizeBytes };
  });
  const paths = pvs.map((p) => p.path);
  const there = landing.volumeGroups.find((g) => g.name === vg.name);
  const wiped = (pv: string): boolean => mapped.some((m) => m.holds === 'other' && onDisk(m.landing, pv));
  const present = there !== undefined && !there.pvs.every(wiped);
  if (present && !there.pvs.every((pv) => paths.includes(pv))) {
    refuse(`the landing host already has a volume group ${vg.name} (on ${there.pvs.join(', ')}); rmm keeps the origin's volume group names: rename or remove it`);
  }
  const capacity = vgCapacity(pvs.map((p) => p.sizeBytes), vg.extentBytes);
  const sizes = sizeLogicalVolumes(vg, lvs, capacity, input.usedBytes);
  if (!(sizes instanceof Map)) refuse(`volume group ${vg.name} gets ${fmtBytes(capacity)} on ${paths.join(', ')}; ${sizes.why} (${fmtBytes(sizes.bytes)} in all)`);

  const steps: LayoutStep[] = [];
  if (!present) steps.push(vgcreateStep(vg.name, vg.extentBytes, paths));
  for (const lv of lvs) {
    const size = sizes.get(lv.name)!;
    if (size !== lv.sizeBytes) summary.resized.push(`${vg.name}/${lv.name} ${size > lv.sizeBytes ? 'grows' : 'shrinks'} from ${fmtBytes(lv.sizeBytes)} to ${fmtBytes(size)}`);
    if (!(present && there.lvs.some((l) => l.name === lv.name))) steps.push(lvcreateStep(vg.name, lv.name, size, lv.sizeBytes));
    const fs = lv.fs;
    const have = present ? existing.get(lv.path) : undefined;
    if (!fs || sameFs(have, fs)) continue;
    if (have?.mountPoint) refuse(`${lv.path} on the landing host is mounted at ${have.mountPoint} but holds ${have.type}, not the origin's ${fs.type}: unmount it first`);
    if (!canMake(fs.type)) {
      if (isCopied(fs)) refuse(`${vg.name}/${lv.name} holds ${fs.mountPoint} (${fs.type}), which rmm cannot make on the landing disk: exclude it`);
      summary.notes.push(`${vg.name}/${lv.name}: rmm cannot make ${fs.type}; it is left empty`);
      continue;
    }
    steps.push(makeStep(lv.path, fs, size, lv.path));
  }
  return steps;
}

/** device-mapper doubles the dashes inside each name of /dev/mapper/<vg>-<lv>. */
function dmName(name: string): string {
  return name.replace(/-/g, '--');
}
