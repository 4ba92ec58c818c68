import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LayoutError, parseDiskLayout, readDiskLayout, LAYOUT_SCRIPT } from '../../src/observe/layout.js';
import { MissingToolError } from '../../src/observe/packages.js';
import type { RemoteHost } from '../../src/transport/index.js';

const dir = new URL('../fixtures/layout/', import.meta.url);
const raw = (name: string): string => readFileSync(new URL(`${name}.out`, dir), 'utf8');
const expected = (name: string): unknown => JSON.parse(readFileSync(new URL(`${name}.expected.json`, dir), 'utf8'));

describe('parseDiskLayout on real and derived outputs', () => {
  const fixtures = ['guest-plain', 'guest-loops', 'guest-landing-before', 'guest-landing', 'guest-landing-after', 'uefi-gpt-lvm', 'mbr-bios', 'nvme'];
  it.each(fixtures)('%s gives the reviewed model', (name) => {
    expect(parseDiskLayout(raw(name))).toEqual(expected(name));
  });

  it('reads the guest as booted: a whole-disk ext4 root and a whole-disk LVM physical volume', () => {
    const layout = parseDiskLayout(raw('guest-plain'));
    expect(layout.firmware).toBe('bios');
    expect(layout.disks.map((d) => [d.path, d.table, d.holds?.type, d.lvmPv])).toEqual([
      ['/dev/vda', undefined, 'ext4', undefined],
      ['/dev/vdb', undefined, 'LVM2_member', 'vg0'],
    ]);
    expect(layout.disks[0]!.holds).toEqual({ type: 'ext4', uuid: '9f7ae4a1-cf13-47a5-954f-6dbc9e2fb6fc', label: 'rmm-root', version: '1.0', mountPoint: '/', usedBytes: 665632768 });
    expect(layout.volumeGroups[0]!.lvs[0]!.fs?.mountPoint).toBe('/srv/lvdata');
  });

  it('leaves out snapshots of other volumes (a sync holds its own while it copies): they are not volumes of the server', () => {
    const snapshot = '{"vg_name":"vg0", "lv_name":"rmm-snap.web.run1.lv_data", "lv_uuid":"Ab1Cd2-Ef3G-h4Ij-5Kl6-Mn7O-p8Qr-9StUv0", "lv_size":"150994944", "segtype":"linear", "lv_path":"/dev/vg0/rmm-snap.web.run1.lv_data", "lv_dm_path":"/dev/mapper/vg0-rmm--snap.web.run1.lv_data", "origin":"lv_data"}';
    const row = '"lv_dm_path":"/dev/mapper/vg0-lv_data"}';
    const text = raw('guest-plain').replace(row, `${row.slice(0, -1)}, "origin":""},\n                  ${snapshot}`);
    expect(text).toContain('rmm-snap.web.run1');
    expect(parseDiskLayout(text).volumeGroups[0]!.lvs.map((l) => l.name)).toEqual(['lv_data']);
  });

  it('reads partition tables: GPT GUIDs and names, MBR ids, boot flags, extended and logical partitions', () => {
    const layout = parseDiskLayout(raw('guest-loops'));
    const gpt = layout.disks.find((d) => d.path === '/dev/loop0')!;
    expect(gpt).toMatchObject({ table: 'gpt', tableId: 'BE3F3CE5-0563-49AB-955D-7A23145B56CF', firstLba: 34, lastLba: 4194270 });
    expect(gpt.partitions[0]).toEqual({ path: '/dev/loop0p1', number: 1, startSector: 2048, sizeSectors: 2048, sizeBytes: 1048576, type: '21686148-6449-6E6F-744E-656564454649', partUuid: '212184FC-F641-4334-9905-71056E151C50', name: 'bios' });
    const mbr = layout.disks.find((d) => d.path === '/dev/loop1')!;
    expect(mbr.partitions.map((p) => [p.number, p.type, p.partUuid, p.bootable])).toEqual([
      [1, '83', '1aa3c796-01', true],
      [2, '5', '1aa3c796-02', undefined],
      [5, '82', '1aa3c796-05', undefined],
      [6, '83', '1aa3c796-06', undefined],
    ]);
    expect(layout.disks.find((d) => d.path === '/dev/loop2')).toEqual({ path: '/dev/loop2', sizeBytes: 536870912, logicalSectorBytes: 512, readOnly: false, removable: false, partitions: [] });
  });

  it('fills in from blkid what lsblk lacks without udev, and never takes [SWAP] for a mount point', () => {
    const layout = parseDiskLayout(raw('mbr-bios'));
    const [root, , swap] = layout.disks[0]!.partitions;
    expect(root!.fs).toEqual({ type: 'ext4', uuid: '50c1e868-0682-470e-8694-ade915b92c15', mountPoint: '/', usedBytes: 2791309312 });
    expect(swap!.fs).toEqual({ type: 'swap', uuid: '95507f7a-a1d1-4730-8d7a-34b612f2f035' });
  });

  it('names NVMe partitions with their p suffix and skips optical drives', () => {
    const nvme = parseDiskLayout(raw('nvme'));
    expect(nvme.firmware).toBe('uefi');
    expect(nvme.disks.map((d) => d.path)).toEqual(['/dev/nvme0n1', '/dev/nvme1n1']);
    expect(nvme.disks[0]!.partitions.map((p) => [p.path, p.number])).toEqual([['/dev/nvme0n1p1', 1], ['/dev/nvme0n1p2', 2]]);
    expect(parseDiskLayout(raw('uefi-gpt-lvm')).disks.map((d) => d.path)).toEqual(['/dev/sda', '/dev/sdb']);
  });
});

describe('parseDiskLayout refuses what the tools do not print', () => {
  const base = raw('guest-loops');
  const refused = (output: string): LayoutError => {
    try {
      parseDiskLayout(output, 'landing-1');
    } catch (e) {
      expect(e).toBeInstanceOf(LayoutError);
      return e as LayoutError;
    }
    throw new Error('parsed');
  };

  it('output cut short', () => {
    const e = refused(base.slice(0, base.indexOf('@@rmm:end')));
    expect(e.message).toBe("the disk layout read from landing-1 is malformed: section 'end': is missing: the output was cut short or is not from the layout script");
    expect(e.toJSON()).toMatchObject({ code: 'layout.malformed', host: 'landing-1', section: 'end' });
  });

  it.each([
    ['a device path with shell words', '"path": "/dev/loop0",', '"path": "/dev/loop0; rm -rf /",', 'lsblk', 'device 0 path is not valid'],
    ['a path outside /dev', '"path": "/dev/loop0",', '"path": "/etc/passwd",', 'lsblk', 'device 0 path is not valid'],
    ['a size that is not a number', '"size": 2147483648,', '"size": "2G",', 'lsblk', 'is not a whole number'],
    ['a negative size', '"size": 2147483648,', '"size": -1,', 'lsblk', 'is not a whole number'],
    ['a label with a control character', '"label": "EFI",', '"label": "EF\\u0007I",', 'lsblk', 'label is not a plain string'],
    ['a JSON report that is not JSON', '"blockdevices": [', '"blockdevices": [[', 'lsblk', ''],
    ['a firmware that is neither', '@@rmm:firmware\nbios', '@@rmm:firmware\nmaybe', 'firmware', 'is neither bios nor uefi'],
    ['a partition of another disk', '"node": "/dev/loop0p1",', '"node": "/dev/vda1",', 'sfdisk:/dev/loop0', '/dev/vda1 is not a partition of /dev/loop0'],
    ['a partition past the end of its disk', '"size": 2617311,', '"size": 9617311,', 'sfdisk:/dev/loop0', 'does not fit the disk'],
    ['a table of an unknown kind', '"label": "gpt",', '"label": "sun",', 'sfdisk:/dev/loop0', 'label is neither gpt nor dos'],
    ['a volume group name with a slash', '"vg_name":"rootvg", "vg_uuid"', '"vg_name":"../rootvg", "vg_uuid"', 'vgs', 'vg_name is not valid'],
    ['a blkid line that is not KEY=value', 'DEVNAME=/dev/loop1p6', 'DEVNAME /dev/loop1p6', 'blkid', 'line is not KEY=value'],
    ['a table for a disk lsblk does not list', '@@rmm:sfdisk:/dev/loop2', '@@rmm:sfdisk:/dev/sdz', 'sfdisk:/dev/sdz', 'names a disk lsblk does not list'],
    ['a section printed twice', '@@rmm:pvs\n', '@@rmm:vgs\n@@rmm:pvs\n', 'vgs', 'appears twice'],
  ])('%s', (_what, from, to, section, problem) => {
    expect(base.includes(from)).toBe(true);
    const e = refused(base.replace(from, to));
    expect(e.facts.section).toBe(section);
    expect(e.facts.problem).toContain(problem);
  });

  it('says which tool is missing rather than calling the output malformed', () => {
    const noLsblk = base.replace('@@rmm:tools\nlsblk\n', '@@rmm:tools\n');
    expect(() => parseDiskLayout(noLsblk, 'h')).toThrow(MissingToolError);
    const noSfdisk = raw('guest-plain')
      .replace('sfdisk\n', '')
      .replace(/@@rmm:sfdisk:[^\n]*\n/g, '')
      .replace('"fstype": "ext4"', '"fstype": null')
      .replace(/DEVNAME=\/dev\/vda\n[^@]*?TYPE=ext4\n/, '');
    expect(() => parseDiskLayout(noSfdisk, 'h')).toThrow(/h has no sfdisk; it reads the partition table of \/dev\/vda/);
  });
});

describe('readDiskLayout', () => {
  it('runs the script once, with sudo, and parses what it prints', async () => {
    const calls: Array<{ argv: readonly string[]; sudo?: boolean }> = [];
    const host = {
      info: { host: 'landing-1' },
      exec: async (argv: readonly string[], opts?: { sudo?: boolean }) => {
        calls.push({ argv, sudo: opts?.sudo });
        return { stdout: raw('guest-plain'), stderr: '', exitCode: 0, signal: null };
      },
    } as unknown as RemoteHost;
    const layout = await readDiskLayout(host);
    expect(calls).toEqual([{ argv: ['sh', '-c', LAYOUT_SCRIPT, 'rmm-layout'], sudo: true }]);
    expect(layout).toEqual(expected('guest-plain'));
  });
});
