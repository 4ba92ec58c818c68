import { describe, expect, it } from 'vitest';
import {
  fixupCrypttab,
  fixupFstab,
  fixupGrubDefaults,
  fixupKernelCmdline,
  fixupResume,
  type StorageMap,
} from '../../src/fixup/storage.js';
import type { FixupResult } from '../../src/fixup/types.js';
import { expectFixture, readFixture } from './fixtures.js';

/** The target's disks for every fixture: new UUIDs, virtio names, one renamed volume group, three volumes left out. */
const devices = new Map([
  // Debian
  ['UUID=50c1e868-0682-470e-8694-ade915b92c15', 'UUID=7d1c9b0e-3f11-4c5e-9e0a-1f2b3c4d5e6f'],
  ['UUID=95507f7a-a1d1-4730-8d7a-34b612f2f035', 'UUID=c2a3b4d5-0d0d-4e4e-8f8f-000000000005'],
  ['/dev/sdb1', '/dev/vdb1'],
  ['UUID=0e040412-6778-405a-af1e-23ddeea08080', 'UUID=1f1f1f1f-2e2e-4d4d-8c8c-3b3b3b3b3b3b'],
  ['/dev/disk/by-id/ata-QEMU_HARDDISK_QM00002-part2', 'UUID=2a2a2a2a-3b3b-4c4c-9d9d-4e4e4e4e4e4e'],
  ['/dev/disk/by-uuid/864d7905-2b53-4b8f-9911-c2395343887a', 'UUID=3b3b3b3b-4c4c-4d4d-8e8e-5f5f5f5f5f5f'],
  // RHEL: keys in another case than the file writes them
  ['UUID=5348EC08-97BD-420A-BAD7-78E1636866EA', 'UUID=9e9e9e9e-8d8d-4c4c-8b8b-7a7a7a7a7a7a'],
  ['UUID=6c5a-94d9', 'UUID=1A2B-3C4D'],
  ['/dev/mapper/rl-home', '/dev/mapper/rl-home'],
  ['/dev/mapper/cs-root', '/dev/mapper/cs_dr-root'],
  ['/dev/mapper/cs-swap', '/dev/mapper/cs_dr-swap'],
  ['/dev/mapper/rhel-root', '/dev/rhel_dr/root'],
  ['UUID=aa2d1119-9425-46e3-ab97-0aa82f97c3be', 'UUID=cc4f2220-1111-4222-8333-944455556666'],
  // crypttab
  ['UUID=a4d42cf5-5ad6-4e2a-9b41-6a7e7b1f06c3', 'UUID=e5e5e5e5-6f6f-4a4a-8b8b-7c7c7c7c7c7c'],
  ['/dev/vda3', '/dev/disk/by-partuuid/0a0b0c0d-03'],
  ['UUID=0b4c7cde-1a7e-4a57-9f0e-2a4b5a8d9c11', 'UUID=f6f6f6f6-0a0a-4b4b-8c8c-1d1d1d1d1d1d'],
  ['UUID=1c6ef3a8-4d7b-4bd0-8f3e-0c1f4d0b9a27', 'UUID=0c0c0c0c-1d1d-4e4e-8f8f-2a2a2a2a2a2a'],
  // Arch
  ['UUID=11fdb53b-d45c-4b46-b946-b67de3b448f5', 'UUID=22aa33bb-44cc-455d-966e-77ff88aa99bb'],
  ['UUID=b983db89-6be4-45aa-9745-b33f4dff90c5', 'UUID=b0b0b0b0-c1c1-4d2d-8e3e-f4f4f4f4f4f4'],
  // util-linux's test files
  ['UUID=d3a8f783-df75-4dc8-9163-975a891052c0', 'UUID=d4d4d4d4-e5e5-4f6f-8a7a-b8b8b8b8b8b8'],
  ['UUID=1f2aa318-9c34-462e-8d29-260819ffd657', 'LABEL=swap'],
  ['/dev/mapper/foo', '/dev/mapper/vg_dr-foo'],
  ['/dev/foo', '/dev/vdf'],
  ['/dev/sdc1', '/dev/vdc1'],
  ['/dev/sdc2', 'UUID=5c5c5c5c-6d6d-4e7e-8f8f-909090909090'],
]);

const excluded = new Set([
  '/srv/asm',
  '/dev/kbuor/lv_kbuor',
  '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_drive-scsi2',
  'UUID=106e8c63-91b2-4c8a-aeff-5c14ea1dfea2',
  '/dev/mapper/rhel-swap',
  '/home/foo',
]);

const commenting: StorageMap = { devices, excluded, excludedHandling: 'comment', networkMounts: 'comment' };
const tolerant: StorageMap = { devices, excluded, excludedHandling: 'nofail', networkMounts: 'nofail' };
const reachable: StorageMap = { devices, excluded, excludedHandling: 'comment', networkMounts: 'keep' };

const cases: { file: string; fixup: (text: string, map: StorageMap) => FixupResult; map: StorageMap; what: string }[] = [
  { file: 'debian-fstab', fixup: fixupFstab, map: commenting, what: 'UUIDs, quoted UUID, by-id and by-uuid links, /dev/sdb1 beside /dev/sdb10; excluded volume, its bind mount and network mounts commented out' },
  { file: 'debian-fstab-nofail', fixup: fixupFstab, map: tolerant, what: 'the same file when the spec asks for nofail' },
  { file: 'rhel-fstab', fixup: fixupFstab, map: reachable, what: "anaconda's layout, an upper-case vfat UUID, an excluded LV, an NFS server the site reaches" },
  { file: 'fstab', fixup: fixupFstab, map: commenting, what: "util-linux's test file: tabs, pseudo file systems, nfs and cifs" },
  { file: 'fstab-comment', fixup: fixupFstab, map: tolerant, what: "util-linux's commented file, excluded mount made nofail" },
  { file: 'fstab-btrfs', fixup: fixupFstab, map: commenting, what: 'btrfs subvolumes of two devices' },
  { file: 'debian-crypttab', fixup: fixupCrypttab, map: commenting, what: 'tabs, quoted UUID, plain swap, an excluded LUKS volume' },
  { file: 'debian-grub', fixup: fixupGrubDefaults, map: commenting, what: "Debian's default file with resume= added" },
  { file: 'centos-grub', fixup: fixupGrubDefaults, map: commenting, what: 'resume= and rd.lvm.lv= follow a renamed volume group' },
  { file: 'fedora-grub', fixup: fixupGrubDefaults, map: commenting, what: 'rd.luks.uuid=luks-…' },
  { file: 'arch-grub', fixup: fixupGrubDefaults, map: commenting, what: 'cryptdevice= and root=; resume= of an excluded swap removed' },
  { file: 'initramfs-resume', fixup: fixupResume, map: commenting, what: "initramfs-tools' resume setting" },
  { file: 'kernel-cmdline', fixup: fixupKernelCmdline, map: commenting, what: '/etc/kernel/cmdline with an excluded swap and a /dev/VG/LV target' },
];

describe('storage fixups on real files', () => {
  for (const c of cases) {
    it(`${c.file}: ${c.what}`, () => {
      expectFixture('storage', c.file, (text) => c.fixup(text, c.map));
    });
  }

  it('leaves files that name nothing in the map as they are', () => {
    expect(fixupGrubDefaults(readFixture('storage', 'qubes-grub'), commenting).kind).toBe('unchanged');
    expect(fixupResume(readFixture('storage', 'initramfs-resume-none'), commenting).kind).toBe('unchanged');
  });

  it("reports util-linux's broken fstab at its first bad line and rewrites nothing", () => {
    expect(fixupFstab(readFixture('storage', 'fstab-broken'), commenting)).toMatchObject({ kind: 'unparsable', line: 1 });
    expect(fixupFstab('UUID=d3a8f783-df75-4dc8-9163-975a891052c0 / ext4 defaults 0 x\n', commenting)).toMatchObject({ kind: 'unparsable', line: 1 });
  });
});

describe('fixupFstab', () => {
  it('never takes /dev/sdb1 for /dev/sdb10 or the reverse', () => {
    const map: StorageMap = { ...commenting, devices: new Map([['/dev/sdb1', '/dev/vdb1']]) };
    const result = fixupFstab('/dev/sdb10 /a xfs defaults 0 2\n/dev/sdb1 /b xfs defaults 0 2\n', map);
    expect(result.kind === 'changed' && result.text).toBe('/dev/sdb10 /a xfs defaults 0 2\n/dev/vdb1 /b xfs defaults 0 2\n');
  });

  it('treats the partitions of an excluded disk as excluded', () => {
    const map: StorageMap = { ...commenting, devices: new Map(), excluded: new Set(['/dev/nvme1n1', '/dev/vdc']) };
    const text = '/dev/nvme1n1p2 /a xfs defaults 0 2\n/dev/vdc1 /b xfs defaults 0 2\n/dev/vdc /c xfs defaults 0 2\n/dev/vd /d xfs defaults 0 2\n';
    const result = fixupFstab(text, map);
    expect(result.kind === 'changed' && result.changes.map((c) => c.line)).toEqual([1, 2, 3]);
  });

  it('leaves pseudo file systems alone, also under an excluded mount point', () => {
    expect(fixupFstab('tmpfs /srv/asm/tmp tmpfs size=1G 0 0\nproc /proc proc defaults 0 0\n', commenting).kind).toBe('unchanged');
  });

  it('keeps CRLF line ends and reports a binary file', () => {
    const result = fixupFstab('# c\r\n/dev/sdb1 /srv/data xfs defaults 0 2\r\n', commenting);
    expect(result.kind === 'changed' && result.text).toBe('# c\r\n/dev/vdb1 /srv/data xfs defaults 0 2\r\n');
    expect(fixupFstab('/dev/sdb1 /a xfs defaults 0 2\n\0\n', commenting)).toMatchObject({ kind: 'unparsable', line: 2 });
  });

  it('adds the options field when a line has none', () => {
    const result = fixupFstab('server:/export /mnt nfs\n', tolerant);
    expect(result.kind === 'changed' && result.text).toBe('server:/export /mnt nfs defaults,nofail\n');
  });
});
