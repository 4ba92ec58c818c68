import type { RemoteHost } from '../transport/index.js';
import { MissingToolError } from './packages.js';
import {
  defined,
  DEVICE_PATH,
  LayoutError,
  lvmRows,
  parseBlkid,
  parseFindmnt,
  parseLsblk,
  parseSfdisk,
  Reader,
  splitSections,
  type BlkidRow,
  type LsblkRow,
} from './layout-sources.js';

export { LayoutError } from './layout-sources.js';

/** What a host's block storage looks like: its disks, their partition tables, filesystems and LVM. */
export interface DiskLayout {
  readonly firmware: 'bios' | 'uefi';
  readonly disks: readonly Disk[];
  readonly volumeGroups: readonly VolumeGroup[];
}

/** A filesystem, swap area or LVM physical volume signature on a device. */
export interface FsInfo {
  /** As blkid names it: ext4, xfs, vfat, swap, LVM2_member… */
  readonly type: string;
  readonly uuid?: string;
  readonly label?: string;
  /** blkid's VERSION (vfat: FAT12/FAT16/FAT32). */
  readonly version?: string;
  /** Where the host has it mounted (swap in use is not a mount point). */
  readonly mountPoint?: string;
  /** Bytes in use, for a mounted filesystem. */
  readonly usedBytes?: number;
}

export interface Disk {
  readonly path: string;
  readonly sizeBytes: number;
  readonly logicalSectorBytes: number;
  readonly table?: 'gpt' | 'dos';
  /** GPT disk GUID (upper case) or MBR disk identifier (0x…, lower case). */
  readonly tableId?: string;
  /** GPT only: the first and last sectors partitions may use. */
  readonly firstLba?: number;
  readonly lastLba?: number;
  readonly partitions: readonly Partition[];
  /** A whole-disk filesystem or LVM physical volume, when there is no partition table. */
  readonly holds?: FsInfo;
  /** The volume group of a whole-disk physical volume. */
  readonly lvmPv?: string;
  readonly readOnly: boolean;
  readonly removable: boolean;
  readonly model?: string;
}

export interface Partition {
  readonly path: string;
  readonly number: number;
  readonly startSector: number;
  readonly sizeSectors: number;
  readonly sizeBytes: number;
  /** GPT: the type GUID, upper case; MBR: the type code in hex without 0x (83, 82, 8e, ef, 5…). */
  readonly type: string;
  /** GPT: the partition GUID, upper case; MBR: `<disk id>-<nn>` as the kernel names it. */
  readonly partUuid?: string;
  /** GPT partition name. */
  readonly name?: string;
  /** MBR boot flag. */
  readonly bootable?: boolean;
  /** GPT attribute bits as sfdisk names them (LegacyBIOSBootable, RequiredPartition, GUID:63…). */
  readonly attrs?: string;
  readonly fs?: FsInfo;
  /** The volume group this partition is a physical volume of. */
  readonly lvmPv?: string;
}

export interface VolumeGroup {
  readonly name: string;
  readonly uuid?: string;
  readonly extentBytes: number;
  readonly sizeBytes: number;
  readonly freeBytes: number;
  /** Paths of its physical volumes. */
  readonly pvs: readonly string[];
  readonly lvs: readonly LogicalVolume[];
}

export interface LogicalVolume {
  readonly name: string;
  readonly uuid?: string;
  readonly sizeBytes: number;
  /** linear, striped, thin-pool, raid1… */
  readonly segtype: string;
  /** /dev/<vg>/<lv> */
  readonly path: string;
  readonly fs?: FsInfo;
}

// One round trip, as discoverOrigin does: each section after a marker line; a missing tool leaves
// its section empty and the `tools` section says which are there.
export const LAYOUT_SCRIPT = `
s() { printf '\\n@@rmm:%s\\n' "$1"; }
s tools; for t in lsblk sfdisk blkid findmnt lvm; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done
s firmware; if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi
s lsblk; lsblk -J -b -l -o PATH,TYPE,SIZE,LOG-SEC,RO,RM,MODEL,FSTYPE,FSVER,UUID,LABEL,PARTUUID,MOUNTPOINT,PKNAME 2>/dev/null
s blkid; blkid -c /dev/null -o export 2>/dev/null
s findmnt; findmnt -J -b -l -o SOURCE,TARGET,FSTYPE,USED 2>/dev/null
s pvs; command -v lvm >/dev/null 2>&1 && lvm pvs --reportformat json --units b --nosuffix -o pv_name,vg_name,pv_uuid,pv_size 2>/dev/null
s vgs; command -v lvm >/dev/null 2>&1 && lvm vgs --reportformat json --units b --nosuffix -o vg_name,vg_uuid,vg_extent_size,vg_size,vg_free 2>/dev/null
s lvs; command -v lvm >/dev/null 2>&1 && lvm lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_uuid,lv_size,segtype,lv_path,lv_dm_path,origin 2>/dev/null
for d in $(lsblk -d -n -o PATH,TYPE 2>/dev/null | awk '$2 == "disk" || $2 == "loop" { print $1 }'); do s "sfdisk:$d"; sfdisk -J "$d" 2>/dev/null; done
s end
`;

/** Reads a host's disk layout in one command. Read-only. */
export async function readDiskLayout(host: RemoteHost): Promise<DiskLayout> {
  const { stdout } = await host.exec(['sh', '-c', LAYOUT_SCRIPT, 'rmm-layout'], { sudo: true, timeoutMs: 60_000 });
  return parseDiskLayout(stdout, host.info.host);
}

/** The layout in the output of LAYOUT_SCRIPT; throws LayoutError (naming the section) when it is not what the tools print. */
export function parseDiskLayout(output: string, host = 'the host'): DiskLayout {
  const sections = splitSections(output, host);
  const reader = (name: string): Reader => new Reader(host, name);
  const get = (name: string): string => sections.get(name) ?? '';
  const tools = new Set(get('tools').split('\n').filter(Boolean));
  if (!tools.has('lsblk')) throw new MissingToolError({ host, tool: 'lsblk', hint: 'install util-linux' });

  const printed = get('firmware');
  const firmware = printed === 'bios' || printed === 'uefi' ? printed : reader('firmware').fail(`is neither bios nor uefi: ${JSON.stringify(printed.slice(0, 40))}`);
  const rows = parseLsblk(get('lsblk'), reader('lsblk'));
  const blkid = parseBlkid(get('blkid'), reader('blkid'));
  const used = parseFindmnt(get('findmnt'), reader('findmnt'));
  const fsOf = (path: string): FsInfo | undefined => fsInfo(rows.get(path), blkid.get(path), used.get(path));

  const pvRows = lvmRows(get('pvs'), reader('pvs'), 'pv').map((p) => {
    const r = reader('pvs');
    return { path: r.path(p.pv_name, 'pv_name'), vg: r.lvmName(p.vg_name, 'vg_name') };
  });
  const vgOfPv = new Map(pvRows.filter((p) => p.vg).map((p) => [p.path, p.vg!]));
  if (pvRows.length === 0 && !tools.has('lvm') && [...rows.values()].some((d) => fsOf(d.path)?.type === 'LVM2_member')) {
    throw new MissingToolError({ host, tool: 'lvm', hint: 'install lvm2: the host has LVM physical volumes' });
  }

  const disks: Disk[] = [];
  for (const row of rows.values()) {
    if ((row.type !== 'disk' && row.type !== 'loop') || row.sizeBytes === 0) continue;
    disks.push(diskOf(row, sections.get(`sfdisk:${row.path}`) ?? '', { host, tools, fsOf, vgOfPv }));
  }
  for (const name of sections.keys()) {
    const path = name.startsWith('sfdisk:') ? name.slice('sfdisk:'.length) : undefined;
    if (path !== undefined && !disks.some((d) => d.path === path)) reader(name).fail(`names ${DEVICE_PATH.test(path) ? 'a disk lsblk does not list' : 'no device path'}`);
  }
  const volumeGroups = parseVolumeGroups(get('vgs'), get('lvs'), pvRows, reader, fsOf);
  return { firmware, disks, volumeGroups };
}

interface DiskContext {
  host: string;
  tools: ReadonlySet<string>;
  fsOf: (path: string) => FsInfo | undefined;
  vgOfPv: ReadonlyMap<string, string>;
}

function diskOf(row: LsblkRow, sfdiskText: string, ctx: DiskContext): Disk {
  const base = {
    path: row.path,
    sizeBytes: row.sizeBytes,
    logicalSectorBytes: row.logicalSectorBytes,
    readOnly: row.readOnly,
    removable: row.removable,
    ...defined({ model: row.model }),
  };
  if (![512, 1024, 2048, 4096].includes(row.logicalSectorBytes)) new Reader(ctx.host, 'lsblk').fail(`${row.path}: log-sec is not a sector size: ${row.logicalSectorBytes}`);
  if (!sfdiskText) {
    const holds = ctx.fsOf(row.path);
    if (!holds && !ctx.tools.has('sfdisk')) throw new MissingToolError({ host: ctx.host, tool: 'sfdisk', hint: `it reads the partition table of ${row.path}; install fdisk (Debian, Ubuntu) or util-linux` });
    return { ...base, partitions: [], ...defined({ holds, lvmPv: ctx.vgOfPv.get(row.path) }) };
  }
  const r: Reader = new Reader(ctx.host, `sfdisk:${row.path}`);
  const t = parseSfdisk(sfdiskText, r);
  if (t.sectorBytes !== row.logicalSectorBytes) r.fail(`sectorsize ${t.sectorBytes} differs from lsblk's ${row.logicalSectorBytes}`);
  const sectors = row.sizeBytes / t.sectorBytes;
  const partitions = t.partitions.map((p): Partition => {
    const m = /^p?([1-9]\d{0,3})$/.exec(p.node.startsWith(row.path) ? p.node.slice(row.path.length) : '');
    if (!m) r.fail(`${p.node} is not a partition of ${row.path}`);
    if (p.size === 0 || p.start + p.size > sectors) r.fail(`${p.node} (start ${p.start}, ${p.size} sectors) does not fit the disk's ${sectors} sectors`);
    const partUuid = p.uuid ?? (t.label === 'dos' ? `${t.id.slice(2).padStart(8, '0')}-${m[1]!.padStart(2, '0')}` : undefined);
    return {
      path: p.node,
      number: Number(m[1]),
      startSector: p.start,
      sizeSectors: p.size,
      sizeBytes: p.size * t.sectorBytes,
      type: p.type,
      ...defined({ partUuid, name: p.name, bootable: p.bootable, attrs: p.attrs, fs: ctx.fsOf(p.node), lvmPv: ctx.vgOfPv.get(p.node) }),
    };
  });
  if (new Set(partitions.map((p) => p.number)).size !== partitions.length) r.fail('two partitions have the same number');
  return { ...base, table: t.label, tableId: t.id, partitions, ...defined({ firstLba: t.firstLba, lastLba: t.lastLba }) };
}

/** lsblk's view, filled in from blkid where lsblk has no udev data (containers, minimal hosts). */
function fsInfo(row: LsblkRow | undefined, probe: BlkidRow | undefined, usedBytes: number | undefined): FsInfo | undefined {
  const type = row?.fsType ?? probe?.type;
  if (!type) return undefined;
  const mountPoint = row?.mountPoint;
  return {
    type,
    ...defined({
      uuid: row?.uuid ?? probe?.uuid,
      label: row?.label ?? probe?.label,
      version: row?.fsVersion ?? probe?.version,
      mountPoint,
      usedBytes: mountPoint === undefined ? undefined : usedBytes,
    }),
  };
}

function parseVolumeGroups(
  vgsText: string,
  lvsText: string,
  pvRows: ReadonlyArray<{ path: string; vg?: string | undefined }>,
  reader: (name: string) => Reader,
  fsOf: (path: string) => FsInfo | undefined,
): VolumeGroup[] {
  const rv = reader('lvs');
  // A snapshot of another volume (rmm's own, while a sync holds it, or an operator's) is not a volume of the server.
  const lvs = lvmRows(lvsText, rv, 'lv').filter((l) => !l.origin).map((l) => {
    const vg = rv.lvmName(l.vg_name, 'vg_name') ?? rv.fail('a logical volume has no vg_name');
    const name = rv.lvmName(l.lv_name, `${vg}: lv_name`) ?? rv.fail(`a logical volume of ${vg} has no lv_name`);
    const at = `${vg}/${name}:`;
    const path = rv.path(l.lv_path || `/dev/${vg}/${name}`, `${at} lv_path`);
    const dmPath = rv.matching(l.lv_dm_path, DEVICE_PATH, `${at} lv_dm_path`);
    const lv: LogicalVolume = {
      name,
      sizeBytes: rv.count(l.lv_size, `${at} lv_size`),
      segtype: rv.matching(l.segtype, /^[a-z0-9_+-]{1,32}$/, `${at} segtype`) ?? rv.fail(`${at} segtype is missing`),
      path,
      ...defined({ uuid: rv.uuid(l.lv_uuid, `${at} lv_uuid`), fs: (dmPath === undefined ? undefined : fsOf(dmPath)) ?? fsOf(path) }),
    };
    return { vg, lv };
  });
  const rg = reader('vgs');
  return lvmRows(vgsText, rg, 'vg').map((g): VolumeGroup => {
    const name = rg.lvmName(g.vg_name, 'vg_name') ?? rg.fail('a volume group has no vg_name');
    const extentBytes = rg.count(g.vg_extent_size, `${name}: vg_extent_size`);
    if (extentBytes === 0) rg.fail(`${name}: vg_extent_size is 0`);
    return {
      name,
      extentBytes,
      sizeBytes: rg.count(g.vg_size, `${name}: vg_size`),
      freeBytes: rg.count(g.vg_free, `${name}: vg_free`),
      pvs: pvRows.filter((p) => p.vg === name).map((p) => p.path),
      lvs: lvs.filter((l) => l.vg === name).map((l) => l.lv),
      ...defined({ uuid: rg.uuid(g.vg_uuid, `${name}: vg_uuid`) }),
    };
  });
}
