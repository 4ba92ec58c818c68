import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDiskLayout, type DiskLayout } from '../../src/observe/layout.js';
import { planDiskLayout, type LayoutInput } from '../../src/plan/layout.js';

const dir = new URL('../fixtures/layout/', import.meta.url);
const layout = (name: string): DiskLayout => parseDiskLayout(readFileSync(new URL(`${name}.out`, dir), 'utf8'), name);
const GiB = 1024 ** 3;

/** A landing host with blank disks of these sizes. */
function blank(...disks: Array<[string, number]>): DiskLayout {
  return { firmware: 'bios', disks: disks.map(([path, sizeBytes]) => ({ path, sizeBytes, logicalSectorBytes: 512, readOnly: false, removable: false, partitions: [] })), volumeGroups: [] };
}

function plan(input: Partial<LayoutInput> & Pick<LayoutInput, 'origin' | 'landing' | 'disks'>) {
  const result = planDiskLayout({ excludeVolumes: [], wipe: false, ...input });
  if ('refused' in result) throw new Error(`refused: ${result.refused}`);
  return result;
}

function refusal(input: Partial<LayoutInput> & Pick<LayoutInput, 'origin' | 'landing' | 'disks'>): string {
  const result = planDiskLayout({ excludeVolumes: [], wipe: false, ...input });
  if (!('refused' in result)) throw new Error(`planned ${result.steps.length} steps`);
  return result.refused;
}

const ids = (p: ReturnType<typeof plan>): string[] => p.steps.map((s) => s.id);
const step = (p: ReturnType<typeof plan>, id: string) => p.steps.find((s) => s.id === id)!;

// The guest's loop-backed GPT disk: BIOS boot, ESP, /boot, LVM (rootvg: home, root, swap).
const loops = layout('guest-loops');
const otherLoops = ['/dev/loop1', '/dev/loop2', '/dev/vda', '/dev/vdb'];

describe('GPT with BIOS boot partition, ESP and LVM (the guest)', () => {
  it('same size: the origin table as it is, with its GUIDs, then the filesystems and LVM with their UUIDs', () => {
    const p = plan({ origin: loops, landing: blank(['/dev/vdc', 2 * GiB]), disks: [{ origin: '/dev/loop0', target: '/dev/vdc' }], excludeVolumes: otherLoops });
    expect(ids(p)).toEqual([
      'table /dev/vdc',
      'mkfs /dev/vdc2',
      'mkfs /dev/vdc3',
      'pvcreate /dev/vdc4',
      'vgcreate rootvg',
      'lvcreate rootvg/home',
      'mkfs /dev/rootvg/home',
      'lvcreate rootvg/root',
      'mkfs /dev/rootvg/root',
      'lvcreate rootvg/swap',
      'mkfs /dev/rootvg/swap',
    ]);
    const table = step(p, 'table /dev/vdc');
    expect(table.detail).toBe('create a GPT partition table (disk GUID BE3F3CE5-0563-49AB-955D-7A23145B56CF) on /dev/vdc with 4 partitions as on /dev/loop0');
    expect(table.argv).toEqual(['sfdisk', '--wipe', 'always', '--wipe-partitions', 'always', '/dev/vdc']);
    expect(table.stdin).toBe(
      [
        'label: gpt',
        'label-id: BE3F3CE5-0563-49AB-955D-7A23145B56CF',
        'unit: sectors',
        'sector-size: 512',
        '',
        '/dev/vdc1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=212184FC-F641-4334-9905-71056E151C50, name="bios"',
        '/dev/vdc2 : start=4096, size=524288, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=131F767B-D83F-49C4-980C-0DA6A3323917, name="EFI System Partition"',
        '/dev/vdc3 : start=528384, size=1048576, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=E855B5C5-3BCE-4D49-847C-740931FB36E1, name="boot"',
        '/dev/vdc4 : start=1576960, size=2617311, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, uuid=060C3E40-3460-4776-8D38-26F2B7B2F2D8, name="lvm"',
        '',
      ].join('\n'),
    );
    expect(step(p, 'mkfs /dev/vdc2').argv).toEqual(['mkfs.vfat', '-F', '32', '-i', '693C2028', '-n', 'EFI', '/dev/vdc2']);
    expect(step(p, 'mkfs /dev/vdc3').argv).toEqual(['mkfs.ext4', '-q', '-U', '490fc4f4-7295-41cc-8dd0-1549c511cb54', '-L', 'boot', '/dev/vdc3']);
    expect(step(p, 'pvcreate /dev/vdc4').argv).toEqual(['pvcreate', '--uuid', 'XWdghb-Yp1b-wdrg-6u3u-pyg7-Tq2H-uZsbFU', '--norestorefile', '/dev/vdc4']);
    expect(step(p, 'vgcreate rootvg').argv).toEqual(['vgcreate', '--physicalextentsize', '4096k', 'rootvg', '/dev/vdc4']);
    expect(step(p, 'lvcreate rootvg/root').argv).toEqual(['lvcreate', '--yes', '--wipesignatures', 'y', '--name', 'root', '--size', '716800k', 'rootvg']);
    expect(step(p, 'mkfs /dev/rootvg/home').argv).toEqual(['mkfs.xfs', '-q', '-m', 'uuid=3cc8ea38-968e-43e6-9143-5fe0d566d6ec', '-L', 'home', '/dev/rootvg/home']);
    expect(step(p, 'mkfs /dev/rootvg/swap').argv).toEqual(['mkswap', '-U', '57b8d6a5-7e30-4080-bed0-967a1d8c8b1e', '-L', 'swap', '/dev/rootvg/swap']);
    expect(p.keepsUuids).toBe(true);
    expect(p.summary.resized).toEqual([]);
    expect(p.summary.disks).toEqual([{ origin: '/dev/loop0', landing: '/dev/vdc', holds: 'blank', action: 'lay out' }]);
    expect(p.devices).toEqual(new Map([['/dev/loop0', '/dev/vdc'], ['/dev/loop0p1', '/dev/vdc1'], ['/dev/loop0p2', '/dev/vdc2'], ['/dev/loop0p3', '/dev/vdc3'], ['/dev/loop0p4', '/dev/vdc4']]));
    for (const s of p.steps) expect(s.device.startsWith('/dev/vdc') || s.device.startsWith('/dev/rootvg/')).toBe(true);
  });

  it('bigger: only the LVM partition grows; the logical volumes keep their sizes', () => {
    const p = plan({ origin: loops, landing: blank(['/dev/vdc', 4 * GiB]), disks: [{ origin: '/dev/loop0', target: '/dev/vdc' }], excludeVolumes: otherLoops });
    expect(step(p, 'table /dev/vdc').stdin).toContain('/dev/vdc3 : start=528384, size=1048576,');
    expect(step(p, 'table /dev/vdc').stdin).toContain('/dev/vdc4 : start=1576960, size=6811615,');
    expect(p.summary.resized).toEqual(['/dev/vdc4 grows from 1.2 GiB (/dev/loop0p4) to 3.2 GiB']);
    expect(step(p, 'lvcreate rootvg/root').argv).toContain('716800k');
  });

  it('what the guest really made from the first plan is this replica: a second plan lays nothing out', () => {
    const disks = [
      { origin: '/dev/loop0', target: '/dev/loop3' },
      { origin: '/dev/loop1', target: '/dev/loop4' },
    ];
    const excludeVolumes = ['/dev/loop2', '/dev/vda', '/dev/vdb'];
    const first = plan({ origin: loops, landing: layout('guest-landing'), disks, excludeVolumes });
    expect(first.steps).toHaveLength(15);
    const second = plan({ origin: loops, landing: layout('guest-landing-after'), disks, excludeVolumes });
    expect(second.steps).toEqual([]);
    expect(second.summary.disks.map((d) => [d.landing, d.holds, d.action])).toEqual([
      ['/dev/loop3', 'this-replica', 'keep'],
      ['/dev/loop4', 'this-replica', 'keep'],
    ]);
    expect(second.devices.get('/dev/loop0p2')).toBe('/dev/loop3p2');
  });

  it('refuses a volume group name the landing host already uses elsewhere', () => {
    const why = refusal({ origin: loops, landing: layout('guest-landing-before'), disks: [{ origin: '/dev/loop0', target: '/dev/loop3' }], excludeVolumes: otherLoops });
    expect(why).toBe("the landing host already has a volume group rootvg (on /dev/loop0p4); rmm keeps the origin's volume group names: rename or remove it");
  });
});

describe('UEFI, GPT, ESP + /boot + LVM root, an ASM disk (derived)', () => {
  const origin = layout('uefi-gpt-lvm');
  const disks = [{ origin: '/dev/sda', target: '/dev/vda' }];

  it('keeps the ESP as FAT32 with its volume id, and maps /dev/sda names to the landing names', () => {
    const p = plan({ origin, landing: blank(['/dev/vda', 20 * GiB]), disks, excludeVolumes: ['/dev/sdb'] });
    expect(step(p, 'mkfs /dev/vda1').argv).toEqual(['mkfs.vfat', '-F', '32', '-i', '6C5A94D9', '/dev/vda1']);
    expect(step(p, 'mkfs /dev/vda1').detail).toBe('make a vfat filesystem for /boot/efi on /dev/vda1 (600 MiB), as /dev/sda1 (UUID 6C5A-94D9)');
    expect(step(p, 'mkfs /dev/vda2').argv).toEqual(['mkfs.xfs', '-q', '-m', 'uuid=1b7c5a3e-9d2f-4e8a-b6c1-0f3e2d4c5b6a', '/dev/vda2']);
    expect(p.devices).toEqual(new Map([['/dev/sda', '/dev/vda'], ['/dev/sda1', '/dev/vda1'], ['/dev/sda2', '/dev/vda2'], ['/dev/sda3', '/dev/vda3']]));
    expect(p.summary.excluded).toEqual(["/dev/sdb: excluded; no landing disk needed"]);
  });

  it('onto an NVMe disk: partitions get the p suffix', () => {
    const p = plan({ origin, landing: layout('nvme'), disks: [{ origin: '/dev/sda', target: '/dev/nvme1n1' }], excludeVolumes: ['/dev/sdb'] });
    expect(p.devices.get('/dev/sda1')).toBe('/dev/nvme1n1p1');
    expect(p.devices.get('/dev/sda3')).toBe('/dev/nvme1n1p3');
    expect(ids(p).slice(0, 4)).toEqual(['table /dev/nvme1n1', 'mkfs /dev/nvme1n1p1', 'mkfs /dev/nvme1n1p2', 'pvcreate /dev/nvme1n1p3']);
  });

  it('smaller but fits: the LVM partition shrinks, then the logical volumes with free space shrink toward used + 20%', () => {
    const p = plan({ origin, landing: blank(['/dev/vda', 12 * GiB]), disks, excludeVolumes: ['/dev/sdb'] });
    expect(step(p, 'table /dev/vda').stdin).toContain('/dev/vda3 : start=3328000, size=21835776,');
    const sizeOf = (lv: string): number => Number(step(p, `lvcreate rl/${lv}`).argv.at(-2)!.replace('k', '')) * 1024;
    expect(sizeOf('swap')).toBe(2 * GiB);
    expect(sizeOf('root')).toBeGreaterThanOrEqual(3328638976 * 1.2);
    expect(sizeOf('home')).toBeGreaterThanOrEqual(1610612736 * 1.2);
    expect(sizeOf('root') + sizeOf('home') + sizeOf('swap')).toBeLessThanOrEqual(21835776 * 512 - 1024 ** 2);
    expect(p.summary.resized).toEqual(['/dev/vda3 shrinks from 18.4 GiB (/dev/sda3) to 10.4 GiB', 'rl/home shrinks from 4.0 GiB to 2.4 GiB', 'rl/root shrinks from 12.0 GiB to 6.0 GiB']);
  });

  it('too small: refused before any step, with the figures', () => {
    expect(refusal({ origin, landing: blank(['/dev/vda', 8 * GiB]), disks, excludeVolumes: ['/dev/sdb'] })).toBe(
      'landing disk /dev/vda is 8.0 GiB; origin /dev/sda needs at least 9.1 GiB (/dev/sda3: the logical volumes of rl need 5.5 GiB for used space + 20% headroom and 2.0 GiB that cannot shrink; 1.6 GiB for its other partitions and the partition table)',
    );
  });

  it('two logical volumes kept, one excluded (by glob): it is not created and does not count', () => {
    const p = plan({ origin, landing: blank(['/dev/vda', 20 * GiB]), disks, excludeVolumes: ['/dev/sdb', 'rl/h*'] });
    expect(ids(p).filter((id) => id.startsWith('lvcreate'))).toEqual(['lvcreate rl/root', 'lvcreate rl/swap']);
    expect(p.summary.excluded).toEqual(['/dev/sdb: excluded; no landing disk needed', 'rl/home: excluded; not created']);
    const small = plan({ origin, landing: blank(['/dev/vda', 8 * GiB]), disks, excludeVolumes: ['/dev/sdb', 'rl/home'] });
    expect(small.summary.resized).toContain('/dev/vda3 shrinks from 18.4 GiB (/dev/sda3) to 6.4 GiB');
  });

  it('the ASM disk: excluded, it needs no landing disk; named in disks and excluded, nothing is laid out there', () => {
    const unmapped = plan({ origin, landing: blank(['/dev/vda', 20 * GiB]), disks });
    expect(unmapped.summary.notCopied).toEqual(['/dev/sdb']);
    const mapped = plan({ origin, landing: blank(['/dev/vda', 20 * GiB], ['/dev/vdb', 50 * GiB]), disks: [...disks, { origin: '/dev/sdb', target: '/dev/vdb' }], excludeVolumes: ['/dev/sdb'] });
    expect(mapped.steps.some((s) => s.device.startsWith('/dev/vdb'))).toBe(false);
    expect(mapped.summary.excluded).toEqual(['/dev/sdb: excluded; nothing is laid out on /dev/vdb']);
    expect(mapped.devices.has('/dev/sdb1')).toBe(false);
  });
});

describe('MBR with a bootable partition and a logical swap partition (derived)', () => {
  const origin = layout('mbr-bios');

  it('keeps the disk identifier, boot flag, extended and logical numbering; the root partition grows, the rest moves with it', () => {
    const p = plan({ origin, landing: blank(['/dev/sda', 20 * GiB]), disks: [{ origin: '/dev/vda', target: '/dev/sda' }] });
    expect(step(p, 'table /dev/sda').stdin).toBe(
      [
        'label: dos',
        'label-id: 0x3a5f7c21',
        'unit: sectors',
        'sector-size: 512',
        '',
        '/dev/sda1 : start=2048, size=39845888, type=83, bootable',
        '/dev/sda2 : start=39849982, size=2093058, type=5',
        '/dev/sda5 : start=39849984, size=2091008, type=82',
        '',
      ].join('\n'),
    );
    expect(ids(p)).toEqual(['table /dev/sda', 'mkfs /dev/sda1', 'mkfs /dev/sda5']);
    expect(step(p, 'mkfs /dev/sda5').argv).toEqual(['mkswap', '-U', '95507f7a-a1d1-4730-8d7a-34b612f2f035', '/dev/sda5']);
    expect(p.devices).toEqual(new Map([['/dev/vda', '/dev/sda'], ['/dev/vda1', '/dev/sda1'], ['/dev/vda2', '/dev/sda2'], ['/dev/vda5', '/dev/sda5']]));
  });

  it('same names on the landing host: nothing to map', () => {
    const p = plan({ origin, landing: blank(['/dev/vda', 10 * GiB]), disks: [{ origin: '/dev/vda', target: '/dev/vda' }] });
    expect(p.devices.size).toBe(0);
    expect(p.summary.resized).toEqual([]);
  });
});

describe('whole-disk filesystems and physical volumes (the guest as booted)', () => {
  const origin = layout('guest-plain');

  it('a whole-disk ext4 too big for the landing disk is refused with its used bytes', () => {
    const why = refusal({ origin, landing: blank(['/dev/sdb', 512 * 1024 ** 2]), disks: [{ origin: '/dev/vda', target: '/dev/sdb' }], excludeVolumes: ['/dev/vdb'] });
    expect(why).toBe('landing disk /dev/sdb is 512 MiB; origin /dev/vda needs at least 761.8 MiB (634.8 MiB used + 20% headroom)');
  });

  it('a whole-disk ext4 and a whole-disk physical volume', () => {
    const p = plan({ origin, landing: blank(['/dev/sdb', 3 * GiB], ['/dev/sdc', 2 * GiB]), disks: [{ origin: '/dev/vda', target: '/dev/sdb' }, { origin: '/dev/vdb', target: '/dev/sdc' }] });
    expect(p.steps.map((s) => s.argv)).toEqual([
      ['mkfs.ext4', '-q', '-U', '9f7ae4a1-cf13-47a5-954f-6dbc9e2fb6fc', '-L', 'rmm-root', '/dev/sdb'],
      ['pvcreate', '--uuid', 'kakZsu-Owrt-DWu6-lU5A-V1Eu-0GrY-pMKFHA', '--norestorefile', '/dev/sdc'],
      ['vgcreate', '--physicalextentsize', '4096k', 'vg0', '/dev/sdc'],
      ['lvcreate', '--yes', '--wipesignatures', 'y', '--name', 'lv_data', '--size', '1048576k', 'vg0'],
      ['mkfs.xfs', '-q', '-m', 'uuid=c73560b5-c79d-4d5e-96b3-0fecfedbd66b', '-L', 'lvdata', '/dev/vg0/lv_data'],
    ]);
  });

  it('an origin disk that holds a copied filesystem but is neither mapped nor excluded is refused', () => {
    const why = refusal({ origin, landing: blank(['/dev/sdb', 3 * GiB]), disks: [{ origin: '/dev/vda', target: '/dev/sdb' }] });
    expect(why).toBe('origin disk /dev/vdb holds /srv/lvdata (xfs on vg0/lv_data, whose volume group has a physical volume there), which is copied, but no landing disk is named for it in disks: map it to one, or exclude it');
    expect(plan({ origin, landing: blank(['/dev/sdb', 3 * GiB]), disks: [{ origin: '/dev/vda', target: '/dev/sdb' }], excludeVolumes: ['vg0/*'] }).summary.notCopied).toEqual(['/dev/vdb']);
  });
});

describe('landing disks that hold something else', () => {
  const landing = layout('guest-landing-before');
  const disks = [{ origin: '/dev/loop1', target: '/dev/loop0' }];
  const excludeVolumes = ['/dev/loop0', '/dev/loop2', '/dev/vda', '/dev/vdb'];

  it('refused without wipe, naming what is there', () => {
    expect(refusal({ origin: loops, landing, disks, excludeVolumes })).toBe(
      'landing disk /dev/loop0 holds a GPT partition table (BE3F3CE5-0563-49AB-955D-7A23145B56CF) with 4 partitions, volume group rootvg, which is not this replica: set wipe: true to erase it, or name another disk',
    );
  });

  it('with wipe: its volume group is deactivated and every signature erased before the new table', () => {
    const p = plan({ origin: loops, landing, disks, excludeVolumes, wipe: true });
    expect(ids(p).slice(0, 6)).toEqual(['deactivate rootvg', 'wipe /dev/loop0p2', 'wipe /dev/loop0p3', 'wipe /dev/loop0p4', 'wipe /dev/loop0', 'table /dev/loop0']);
    expect(step(p, 'deactivate rootvg').argv).toEqual(['vgchange', '--activate', 'n', 'rootvg']);
    expect(step(p, 'wipe /dev/loop0').argv).toEqual(['wipefs', '--all', '/dev/loop0']);
    expect(p.summary.disks).toEqual([{ origin: '/dev/loop1', landing: '/dev/loop0', holds: 'other', action: 'wipe and lay out' }]);
    for (const s of p.steps) expect(s.device.startsWith('/dev/loop0')).toBe(true);
  });

  it('a disk the landing host has mounted is refused even with wipe', () => {
    const why = refusal({ origin: loops, landing, disks: [{ origin: '/dev/loop1', target: '/dev/vdb' }], excludeVolumes, wipe: true });
    expect(why).toBe('landing disk /dev/vdb is in use by the landing host (mounted at /srv/lvdata); rmm does not erase it, even with wipe');
  });

  it('landingHolds overrides what the layout says', () => {
    const p = plan({ origin: loops, landing, disks, excludeVolumes, landingHolds: () => 'this-replica' });
    expect(ids(p)).not.toContain('table /dev/loop0');
  });
});

describe('disks that are not there', () => {
  it('a landing disk the landing host does not have', () => {
    expect(refusal({ origin: loops, landing: blank(['/dev/vdc', 2 * GiB]), disks: [{ origin: '/dev/loop0', target: '/dev/vdz' }], excludeVolumes: otherLoops })).toBe(
      'landing disk /dev/vdz in disks is not a disk of the landing host (its disks: /dev/vdc)',
    );
  });

  it('an origin disk the origin does not have', () => {
    expect(refusal({ origin: loops, landing: blank(['/dev/vdc', 2 * GiB]), disks: [{ origin: '/dev/sda', target: '/dev/vdc' }] })).toBe(
      'origin disk /dev/sda in disks is not a disk of the origin (its disks: /dev/loop0, /dev/loop1, /dev/loop2, /dev/vda, /dev/vdb)',
    );
  });
});
