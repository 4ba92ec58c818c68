import type { Disk, FsInfo } from '../observe/layout.js';
import { fmtBytes, type PlacedPartition } from './layout-size.js';

/** One command of a layout, as it will run on the landing host (argv, no shell), and why. */
export interface LayoutStep {
  /** Unique within the plan, e.g. `table /dev/vdb`, `mkfs /dev/vdb2`, `lvcreate rl/root`. */
  readonly id: string;
  /** What it does, in the user's words. */
  readonly detail: string;
  /** The landing device it changes. */
  readonly device: string;
  readonly argv: readonly string[];
  /** Fed to the command's standard input (sfdisk reads the partition table it writes). */
  readonly stdin?: string;
}

/** The kernel's name for partition `n` of a disk: nvme0n1p1, loop0p1, mmcblk0p1, but sda1, vdb1. */
export function partitionPath(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/**
 * The partition table as an sfdisk script (the format of `sfdisk --dump`): the origin's table type,
 * disk identifier, partition numbers, types, GUIDs, names and flags, at the placed positions.
 */
export function tableStep(origin: Disk, landing: Disk, placed: readonly PlacedPartition[]): LayoutStep {
  const sector = landing.logicalSectorBytes;
  const lines = [`label: ${origin.table}`, `label-id: ${origin.tableId}`, 'unit: sectors', `sector-size: ${sector}`];
  const first = Math.min(...placed.map((p) => p.startBytes / sector));
  if (origin.table === 'gpt' && first < 2048) lines.push(`first-lba: ${first}`);
  lines.push('');
  for (const { origin: p, startBytes, sizeBytes } of placed) {
    const fields = [`start=${startBytes / sector}`, `size=${Math.floor(sizeBytes / sector)}`, `type=${p.type}`];
    if (origin.table === 'gpt' && p.partUuid) fields.push(`uuid=${p.partUuid}`);
    if (p.name !== undefined) fields.push(`name="${p.name}"`);
    if (p.attrs !== undefined) fields.push(`attrs="${p.attrs}"`);
    if (p.bootable) fields.push('bootable');
    lines.push(`${partitionPath(landing.path, p.number)} : ${fields.join(', ')}`);
  }
  const kind = origin.table === 'gpt' ? `a GPT partition table (disk GUID ${origin.tableId})` : `an MBR partition table (disk identifier ${origin.tableId})`;
  return {
    id: `table ${landing.path}`,
    detail: `create ${kind} on ${landing.path} with ${placed.length} partition${placed.length === 1 ? '' : 's'} as on ${origin.path}`,
    device: landing.path,
    argv: ['sfdisk', '--wipe', 'always', '--wipe-partitions', 'always', landing.path],
    stdin: `${lines.join('\n')}\n`,
  };
}

/** Erases every signature on a device (filesystem, LVM, partition table): its data becomes unreachable. */
export function wipeStep(device: string, what: string, why = 'wipe: true'): LayoutStep {
  return { id: `wipe ${device}`, detail: `erase ${what} on ${device} (${why})`, device, argv: ['wipefs', '--all', device] };
}

/** Signatures the mkfs commands below can recreate with the origin's UUID and label. */
export function canMake(type: string): boolean {
  return ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'swap', 'LVM2_member'].includes(type);
}

/** The command that makes `fs` on `device` with the origin's UUID and label. */
export function makeStep(device: string, fs: FsInfo, sizeBytes: number, originDevice: string): LayoutStep {
  const label = fs.label !== undefined ? fs.label : undefined;
  const argv = makeArgv(device, fs, label);
  const keeps = [fs.uuid ? `UUID ${fs.uuid}` : '', label ? `label ${label}` : ''].filter(Boolean).join(', ');
  const what = fs.type === 'LVM2_member' ? 'an LVM physical volume' : fs.type === 'swap' ? 'swap' : `${/^(ext|xfs)/.test(fs.type) ? 'an' : 'a'} ${fs.type} filesystem`;
  const where = fs.mountPoint ? ` for ${fs.mountPoint}` : '';
  return {
    id: `${fs.type === 'LVM2_member' ? 'pvcreate' : 'mkfs'} ${device}`,
    detail: `make ${what}${where} on ${device} (${fmtBytes(sizeBytes)}), as ${originDevice}${keeps ? ` (${keeps})` : ''}`,
    device,
    argv,
  };
}

function makeArgv(device: string, fs: FsInfo, label: string | undefined): string[] {
  const uuid = fs.uuid;
  const opt = (flag: string, value: string | undefined): string[] => (value === undefined ? [] : [flag, value]);
  switch (fs.type) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return [`mkfs.${fs.type}`, '-q', ...opt('-U', uuid), ...opt('-L', label), device];
    case 'xfs':
      return ['mkfs.xfs', '-q', ...opt('-m', uuid && `uuid=${uuid}`), ...opt('-L', label), device];
    case 'btrfs':
      return ['mkfs.btrfs', '-q', ...opt('-U', uuid), ...opt('-L', label), device];
    case 'vfat': {
      const bits = /^FAT(12|16|32)$/.exec(fs.version ?? '')?.[1];
      return ['mkfs.vfat', ...opt('-F', bits), ...opt('-i', uuid?.replace('-', '')), ...opt('-n', label), device];
    }
    case 'swap':
      return ['mkswap', ...opt('-U', uuid), ...opt('-L', label), device];
    case 'LVM2_member':
      return ['pvcreate', ...(uuid ? ['--uuid', uuid, '--norestorefile'] : []), device];
    default:
      throw new Error(`no mkfs for ${fs.type}`);
  }
}

export function vgcreateStep(name: string, extentBytes: number, pvs: readonly string[]): LayoutStep {
  return {
    id: `vgcreate ${name}`,
    detail: `create volume group ${name} (${fmtBytes(extentBytes)} extents) on ${pvs.join(', ')}`,
    device: pvs[0]!,
    argv: ['vgcreate', '--physicalextentsize', `${extentBytes / 1024}k`, name, ...pvs],
  };
}

export function lvcreateStep(vg: string, lv: string, sizeBytes: number, originBytes: number): LayoutStep {
  const resized = sizeBytes === originBytes ? '' : ` (${fmtBytes(originBytes)} on the origin)`;
  return {
    id: `lvcreate ${vg}/${lv}`,
    detail: `create logical volume ${vg}/${lv} of ${fmtBytes(sizeBytes)}${resized}`,
    device: `/dev/${vg}/${lv}`,
    argv: ['lvcreate', '--yes', '--wipesignatures', 'y', '--name', lv, '--size', `${sizeBytes / 1024}k`, vg],
  };
}

export function deactivateStep(vg: string, disk: string): LayoutStep {
  return { id: `deactivate ${vg}`, detail: `deactivate volume group ${vg} of the landing host, on ${disk}, before erasing it (wipe: true)`, device: disk, argv: ['vgchange', '--activate', 'n', vg] };
}
