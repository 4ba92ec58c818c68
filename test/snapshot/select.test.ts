import { describe, expect, it } from 'vitest';
import { selectFilesystems } from '../../src/snapshot/select.js';
import { filesystem, originFacts } from '../support/facts.js';

const none = { volumes: [], mounts: [], paths: [] };
const auto = { provider: 'auto' as const, minFreePercent: 15 };

describe('selectFilesystems', () => {
  it('picks btrfs snapshots for btrfs, LVM for logical volumes, fsfreeze for the rest', () => {
    const facts = originFacts([
      filesystem('/', 'btrfs'),
      filesystem('/var/lib/db', 'xfs', { source: '/dev/mapper/vg0-db', lvmName: 'vg0/db' }),
      filesystem('/boot', 'ext4'),
    ]);
    const { units } = selectFilesystems(facts, '/', none, auto, 'web-01');
    expect(units.map((u) => [u.fs.mountPoint, u.provider])).toEqual([
      ['/', 'btrfs'],
      ['/var/lib/db', 'lvm'],
      ['/boot', 'fsfreeze'],
    ]);
    expect(units[0]!.nestedMounts).toEqual(['var/lib/db', 'boot']);
  });

  it('skips excluded volumes by device glob, LVM name and mount point', () => {
    const facts = originFacts([
      filesystem('/', 'ext4'),
      filesystem('/u01/asm', 'xfs', { source: '/dev/mapper/asm-disk1' }),
      filesystem('/u02', 'xfs', { source: '/dev/mapper/vg_ora-arch', lvmName: 'vg_ora/arch' }),
      filesystem('/mnt/scratch', 'ext4'),
    ]);
    const { units, excluded } = selectFilesystems(facts, '/', { volumes: ['/dev/mapper/asm*', 'vg_ora/*'], mounts: ['/mnt/*'], paths: [] }, auto, 'db');
    expect(units.map((u) => u.fs.mountPoint)).toEqual(['/']);
    expect(excluded.map((e) => [e.fs.mountPoint, e.reason])).toEqual([
      ['/u01/asm', 'exclude.volumes /dev/mapper/asm*'],
      ['/u02', 'exclude.volumes vg_ora/*'],
      ['/mnt/scratch', 'exclude.mounts /mnt/*'],
    ]);
  });

  it('refuses to exclude the root filesystem', () => {
    const facts = originFacts([filesystem('/', 'ext4', { source: '/dev/mapper/vg0-root', lvmName: 'vg0/root' })]);
    expect(() => selectFilesystems(facts, '/', { ...none, volumes: ['vg0/*'] }, auto, 'db')).toThrow(/root filesystem .* is excluded by exclude.volumes vg0\/\*/);
  });

  it('refuses a snapshot when free space is below minFreePercent, naming the figures', () => {
    const facts = originFacts([filesystem('/', 'btrfs', { sizeBytes: 1000, availableBytes: 100 })]);
    expect(() => selectFilesystems(facts, '/', none, auto, 'web-01')).toThrow(/web-01: \/ has 10.0% free .* at least 15%/);
    expect(selectFilesystems(facts, '/', none, { provider: 'auto', minFreePercent: 5 }, 'web-01').units).toHaveLength(1);
  });

  it('says which tool is missing for the chosen provider', () => {
    const facts = originFacts([filesystem('/', 'ext4')], { fsfreeze: false });
    expect(() => selectFilesystems(facts, '/', none, auto, 'web-01')).toThrow(/needs 'fsfreeze', which is not installed/);
  });

  it('refuses a provider that does not fit the filesystem', () => {
    const facts = originFacts([filesystem('/', 'ext4')]);
    expect(() => selectFilesystems(facts, '/', none, { provider: 'btrfs', minFreePercent: 15 }, 'web-01')).toThrow(/is ext4, not btrfs/);
  });

  it('copies only what is under a non-/ root', () => {
    const facts = originFacts([filesystem('/', 'ext4'), filesystem('/srv/lab', 'btrfs'), filesystem('/srv/lab/data', 'xfs')]);
    const { units } = selectFilesystems({ ...facts, filesystems: facts.filesystems.filter((f) => f.mountPoint !== '/') }, '/srv/lab', none, auto, 'x');
    expect(units.map((u) => [u.relativePath, u.nestedMounts])).toEqual([
      ['', ['data']],
      ['data', []],
    ]);
  });
});

describe('LVM snapshot space', () => {
  it('compares the volume group free space with minFreePercent of the logical volume', () => {
    const fs = filesystem('/srv/db', 'xfs', { source: '/dev/mapper/vg0-db', lvmName: 'vg0/db' });
    const facts = { ...originFacts([filesystem('/', 'btrfs'), fs]), logicalVolumes: [{ vg: 'vg0', lv: 'db', path: '/dev/vg0/db', sizeBytes: 1000, vgFreeBytes: 100 }] };
    expect(() => selectFilesystems(facts, '/', none, auto, 'db-01')).toThrow(
      "db-01: volume group vg0 of /srv/db has 100 bytes free, 10.0% of the volume's 1000 bytes; a snapshot needs at least 15%",
    );
    expect(selectFilesystems(facts, '/', none, { provider: 'auto', minFreePercent: 10 }, 'db-01').units.map((u) => u.provider)).toEqual(['btrfs', 'lvm']);
  });
});
