import { describe, expect, it } from 'vitest';
import type { OriginFacts } from '../../src/observe/facts.js';
import { selectFilesystems } from '../../src/snapshot/select.js';

const fs = (mountPoint: string, fsType: string) => ({ mountPoint, fsType, source: `/dev/vda${mountPoint.length}`, sizeBytes: 1 << 30, usedBytes: 1 << 20, availableBytes: 1 << 29 });
const facts = {
  filesystems: [fs('/', 'ext4'), fs('/boot/efi', 'vfat')],
  logicalVolumes: [],
  tools: { fsfreeze: true, lvcreate: false, btrfs: false },
} as unknown as OriginFacts;

describe('a filesystem that cannot be frozen (an EFI system partition)', () => {
  it('is copied live under provider auto, while the others are frozen', () => {
    const { units } = selectFilesystems(facts, '/', { volumes: [], mounts: [], paths: [] } as never, { provider: 'auto', minFreePercent: 10 }, 'app01');
    expect(units.map((u) => [u.fs.mountPoint, u.provider])).toEqual([
      ['/', 'fsfreeze'],
      ['/boot/efi', 'none'],
    ]);
  });

  it('is refused by name under provider fsfreeze', () => {
    expect(() => selectFilesystems(facts, '/', { volumes: [], mounts: [], paths: [] } as never, { provider: 'fsfreeze', minFreePercent: 10 }, 'app01')).toThrow(
      'app01: /boot/efi is vfat, which cannot be frozen; use provider auto (it is copied live, and checked unchanged after its copy) or lvm',
    );
  });
});
