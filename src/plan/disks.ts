import type { Replica } from '../config/spec.js';
import type { OriginFacts } from '../observe/facts.js';
import type { Disk, DiskLayout, FsInfo } from '../observe/layout.js';
import type { CopyUnit } from '../snapshot/select.js';
import type { ReplicaRecord } from '../record/record.js';
import type { LandingVolume } from '../target/disks/volumes.js';
import type { DisksPlan } from './action.js';
import { landingRecovery } from './disks-recovery.js';
import { planDiskLayout } from './layout.js';
import { partitionPath } from './layout-steps.js';

/**
 * Drivers a copy may need to find its disks and reach its network on hardware rmm cannot see: the
 * common hypervisors' and servers' storage and NIC drivers. The initramfs is rebuilt with each the
 * copy's kernel has, since one built for the landing host would hold that host's drivers only.
 */
export const TARGET_DRIVERS: readonly string[] = [
  // storage: SATA/AHCI, NVMe, virtio, Xen, Hyper-V, VMware, common RAID and SAS HBAs
  'ahci', 'sd_mod', 'nvme', 'virtio_blk', 'virtio_scsi', 'virtio_pci', 'xen_blkfront', 'hv_storvsc', 'hv_vmbus', 'vmw_pvscsi', 'mptspi', 'mpt3sas', 'megaraid_sas', 'hpsa', 'smartpqi',
  // network: Intel, virtio, Xen, Hyper-V, VMware
  'e1000', 'e1000e', 'igb', 'ixgbe', 'virtio_net', 'xen_netfront', 'hv_netvsc', 'vmxnet3',
];

/**
 * The boot files the bootloader and initramfs steps make in the copy: the origin's initramfs images
 * fit its own hardware, its GRUB modules go with the GRUB it installed, and the removable-media
 * loader exists on the replica only.
 */
export function bootFilesKeptOut(efiDirectory: string | undefined): string[] {
  const grub = ['/boot/grub', '/boot/grub2'].flatMap((d) => [`${d}/grub.cfg`, `${d}/i386-pc`, `${d}/x86_64-efi`]);
  return ['/boot/initrd.img-*', '/boot/initramfs-*.img', ...grub, ...(efiDirectory ? [`${efiDirectory}/EFI/BOOT`] : [])];
}

/**
 * A kernel's files, as rsync patterns anchored at the origin's root. The copy sends them but never
 * deletes them: a kernel the origin removed stays in the replica until the bootloader step has made
 * a GRUB configuration without it, so a sync that stops before that step leaves a GRUB that finds
 * every kernel it names.
 */
export const KERNEL_FILES: readonly string[] = ['/boot/vmlinuz-*', '/boot/config-*', '/boot/System.map-*', '/lib/modules/*', '/usr/lib/modules/*'];

/** Where a disks replica lives on its landing host, besides the disks: its record, and where the copy is mounted. */
export function disksPaths(replica: string): { record: string; mountRoot: string } {
  return { record: `/var/lib/rmm/replicas/${replica}`, mountRoot: `/run/rmm-replica.${replica}` };
}

export interface DisksPlanned {
  readonly plan: DisksPlan;
  /** Origin device references -> what the fixups write instead (UUID=…, kept by the layout). */
  readonly devices: ReadonlyMap<string, string>;
}

/**
 * The landing side of a disks sync: the layout (src/plan/layout.ts), the mounts of the copied
 * filesystems, the disk the bootloader goes on, and the device references the fixups rewrite.
 * Pure; refuses with why when the disks cannot take the copy.
 */
export function planDisks(
  replica: Replica,
  facts: OriginFacts,
  units: readonly CopyUnit[],
  origin: DiskLayout,
  landing: DiskLayout,
  volumes: readonly LandingVolume[] = [],
  record?: ReplicaRecord,
): DisksPlanned | { blocked: string } {
  // A landing logical volume is written through the loop device it is attached as: that is its disk.
  const loops = new Map(volumes.map((v) => [v.path, v.loop]));
  const merging = volumes.find((v) => v.merging);
  if (merging) {
    return { blocked: `LVM is merging a snapshot into landing volume ${merging.path}, or will when it is next activated (a rollback whose merge LVM put off): deactivate and activate ${merging.vg}/${merging.lv} on the landing host (lvchange -an, then -ay), then plan again` };
  }
  const maps = (replica.target.disks ?? []).map((m) => ({ ...m, target: loops.get(m.target) ?? m.target }));
  const used = new Map(facts.filesystems.map((f) => [f.mountPoint, f.usedBytes]));
  const layout = planDiskLayout({ origin, landing, disks: maps, excludeVolumes: replica.exclude.volumes, wipe: maps.some((m) => m.wipe === true), usedBytes: used });
  if ('refused' in layout) return { blocked: layout.refused };
  for (const d of layout.summary.disks) {
    const i = maps.findIndex((m) => m.target === d.landing);
    if (d.action === 'wipe and lay out' && maps[i]?.wipe !== true) {
      return { blocked: `landing disk ${d.landing} holds something that is not this replica: set wipe: true on disks[${i}] to erase it, or name another disk` };
    }
  }

  const mounts: DisksPlan['mounts'][number][] = [];
  for (const unit of [...units].sort((a, b) => depth(a.relativePath) - depth(b.relativePath))) {
    const device = landingDevice(unit, origin, maps);
    if (!device) return { blocked: `${unit.fs.mountPoint} (${unit.fs.fsType} on ${unit.fs.source}) is on no origin disk named in disks: map its disk, or exclude it` };
    const vg = unit.fs.lvmName?.split('/')[0];
    mounts.push({ device, mountPoint: unit.fs.mountPoint, fsType: unit.fs.fsType, relativePath: unit.relativePath, ...(vg ? { volumeGroup: vg } : {}) });
  }

  const bootFs = units.find((u) => u.fs.mountPoint === '/boot') ?? units.find((u) => u.fs.mountPoint === '/');
  if (!bootFs) return { blocked: 'the root filesystem is not copied: a disks replica cannot boot without it' };
  const bootDisk = diskOf(bootFs.fs.source, bootFs.fs.lvmName, origin);
  const bootMap = maps.find((m) => m.origin === bootDisk?.path);
  if (!bootMap) return { blocked: `the disk holding ${bootFs.fs.mountPoint} (${bootFs.fs.source}) is not named in disks` };
  const esp = origin.firmware === 'uefi' ? units.find((u) => u.fs.fsType === 'vfat' && u.fs.mountPoint.startsWith('/boot')) : undefined;
  if (origin.firmware === 'uefi' && !esp) return { blocked: 'the origin boots UEFI but no EFI system partition (vfat under /boot) is copied' };

  const devices = uuidReferences(origin);
  const recovery = landingRecovery((replica.target.disks ?? []).map((m) => m.target), volumes, record);
  const plan: DisksPlan = {
    layout: layout.steps,
    summary: layout.summary,
    mountRoot: disksPaths(replica.name).mountRoot,
    mounts,
    boot: { firmware: origin.firmware, disk: bootMap.target, ...(esp ? { efiDirectory: esp.fs.mountPoint } : {}) },
    drivers: TARGET_DRIVERS,
    keptOut: bootFilesKeptOut(esp?.fs.mountPoint),
    kernelFiles: KERNEL_FILES,
    rollback: recovery.rollback,
    ...(recovery.volumes ? { volumes: recovery.volumes } : {}),
    ...(recovery.keep ? { keep: recovery.keep } : {}),
    landingSeen: Object.fromEntries(maps.map((m) => [m.target, landingFingerprint(landing, m.target)])),
    fixupDevices: Object.fromEntries(devices),
  };
  return { plan, devices };
}

/**
 * What a landing disk holds, as far as a layout is concerned: its table, partitions and signatures
 * with their identities, and its logical volumes (sizes in use and mount points left out: they
 * change while the disk is in use, the layout does not).
 */
export function landingFingerprint(layout: DiskLayout, path: string): string {
  const disk = layout.disks.find((d) => d.path === path);
  if (!disk) return 'absent';
  const sig = (f: FsInfo | undefined) => (f ? [f.type, f.uuid ?? '', f.label ?? ''] : null);
  const pvs = new Set([disk.path, ...disk.partitions.map((p) => p.path)]);
  const vgs = layout.volumeGroups.filter((g) => g.pvs.some((pv) => pvs.has(pv))).map((g) => [g.name, g.lvs.map((l) => [l.name, l.sizeBytes, sig(l.fs)])]);
  return JSON.stringify([disk.sizeBytes, disk.table ?? null, disk.tableId ?? null, sig(disk.holds), disk.partitions.map((p) => [p.path, p.startSector, p.sizeSectors, p.type, p.partUuid ?? null, sig(p.fs)]), vgs]);
}

function depth(relativePath: string): number {
  return relativePath === '' ? 0 : relativePath.split('/').length;
}

/** The device a copied filesystem gets on the landing host: an LV keeps its name, a partition follows its disk. */
function landingDevice(unit: CopyUnit, origin: DiskLayout, maps: readonly { origin: string; target: string }[]): string | undefined {
  if (unit.fs.lvmName) {
    const [vg, lv] = unit.fs.lvmName.split('/');
    return origin.volumeGroups.some((g) => g.name === vg && g.lvs.some((l) => l.name === lv)) ? `/dev/${vg}/${lv}` : undefined;
  }
  const source = unit.fs.source;
  const disk = diskHolding(origin, source);
  const target = maps.find((m) => m.origin === disk?.path)?.target;
  if (!disk || !target) return undefined;
  const partition = disk.partitions.find((p) => p.path === source);
  return partition ? partitionPath(target, partition.number) : target;
}

/** The origin disk a filesystem lives on (an LV: the disk of its volume group's first physical volume). */
function diskOf(source: string, lvmName: string | undefined, origin: DiskLayout): Disk | undefined {
  if (lvmName) {
    const vg = origin.volumeGroups.find((g) => g.name === lvmName.split('/')[0]);
    const pv = vg?.pvs[0];
    return pv ? diskHolding(origin, pv) : undefined;
  }
  return diskHolding(origin, source);
}

/** The disk that is `device`, or holds it as a partition. */
function diskHolding(layout: DiskLayout, device: string): Disk | undefined {
  return layout.disks.find((d) => d.path === device || d.partitions.some((p) => p.path === device));
}

/**
 * Device names of the origin's disks mean nothing on the hardware the copy boots on (vda there may
 * be sda, nvme0n1 or xvda): references to them become the UUID the layout keeps.
 */
function uuidReferences(origin: DiskLayout): Map<string, string> {
  const out = new Map<string, string>();
  const add = (path: string, fs: FsInfo | undefined) => {
    if (fs?.uuid && fs.type !== 'LVM2_member') out.set(path, `UUID=${fs.uuid}`);
  };
  for (const d of origin.disks) {
    add(d.path, d.holds);
    for (const p of d.partitions) add(p.path, p.fs);
  }
  return out;
}

