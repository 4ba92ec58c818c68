import { describe, expect, it } from 'vitest';
import type { Spec } from '../../src/config/spec.js';
import type { DiskLayout } from '../../src/observe/layout.js';
import type { Observed } from '../../src/observe/observe.js';
import { makePlan } from '../../src/plan/plan.js';
import { LANDING_TOOLS } from '../../src/plan/tools.js';
import { disksSpec, GiB, SERVER_LAYOUT, serverFacts } from '../support/disks-server.js';

const ORIGIN = SERVER_LAYOUT;
const facts = serverFacts;
const specWith = (disks: string, exclude?: string): Spec => disksSpec({ disks, ...(exclude !== undefined ? { exclude } : {}) });

function blankLanding(sizes: Record<string, number>, holds?: DiskLayout['disks'][number]['holds']): DiskLayout {
  return {
    firmware: 'bios',
    disks: Object.entries(sizes).map(([path, size]) => ({ path, sizeBytes: size, logicalSectorBytes: 512, partitions: [], readOnly: false, removable: false, ...(holds && path === '/dev/vdb' ? { holds } : {}) })),
    volumeGroups: [],
  };
}

const FSTAB = '/dev/sda2 /boot xfs defaults 0 0\n/dev/mapper/rl-root / xfs defaults 0 0\nUUID=6C5A-94D9 /boot/efi vfat umask=0077 0 2\n';
const now = new Date('2026-11-24T12:00:00Z');

function observed(landing: DiskLayout, originLayout = ORIGIN): Observed {
  const tools = Object.fromEntries(LANDING_TOOLS.map((t) => [t, true]));
  return {
    at: '',
    replicas: new Map([
      ['db-dr', { replica: 'db-dr', origin: { facts, layout: originLayout, configFiles: { files: [{ path: '/etc/fstab', text: FSTAB }], refused: [] } }, target: { record: undefined, tools, layout: landing } }],
    ]),
  };
}

describe('a first sync onto landing disks', () => {
  const spec = specWith('[{ origin: /dev/sda, target: /dev/vdb }]');
  const action = makePlan(spec, observed(blankLanding({ '/dev/vdb': 30 * GiB, '/dev/vdc': 20 * GiB })), now).actions[0]!;

  it('lays the disk out, mounts it as the origin mounts its filesystems, copies, adapts, and makes it boot', () => {
    expect(action.kind, action.reasons.join('\n')).toBe('sync');
    const sync = action.sync!;
    expect(sync.target).toEqual({ kind: 'disks', address: '192.0.2.20', record: '/var/lib/rmm/replicas/db-dr' });
    const kinds = sync.steps.map((s) => s.kind);
    expect(kinds).not.toContain('promote');
    expect(kinds).not.toContain('prune');
    const order = ['record-start', 'layout', 'mount', 'snapshot', 'copy', 'fixup', 'initramfs', 'bootloader', 'unmount', 'record'];
    expect(order.map((k) => kinds.indexOf(k as never))).toEqual([...order.map((k) => kinds.indexOf(k as never))].sort((a, b) => a - b));
    expect(sync.steps.find((s) => s.kind === 'layout')!.detail).toMatch(/^create a GPT partition table \(disk GUID [0-9A-F-]+\) on \/dev\/vdb/);
    expect(sync.disks!.mounts.map((m) => [m.mountPoint, m.device])).toEqual([
      ['/', '/dev/rl/root'],
      ['/boot', '/dev/vdb2'],
      ['/home', '/dev/rl/home'],
      ['/boot/efi', '/dev/vdb1'],
    ]);
    expect(sync.disks!.boot).toEqual({ firmware: 'uefi', disk: '/dev/vdb', efiDirectory: '/boot/efi' });
    // The ESP's vfat cannot be frozen: copied live, checked unchanged after its copy.
    expect(sync.units.find((u) => u.fs.mountPoint === '/boot/efi')!.provider).toBe('none');
    // Freezes last and thawed first: LVM writes its metadata backup under /etc while it snapshots or removes.
    expect(sync.steps.filter((s) => s.kind === 'snapshot').map((s) => s.id)).toEqual(['snapshot /', 'snapshot /boot/efi', 'snapshot /home', 'snapshot /boot']);
    expect(sync.steps.filter((s) => s.kind === 'release').map((s) => s.id)).toEqual(['release /boot', 'release /home', 'release /boot/efi', 'release /']);
    expect(action.reasons.some((r) => r.startsWith('the landing disks cannot be snapshotted: a sync that fails leaves them not consistent (the record says so) until the next sync completes; they still boot'))).toBe(true);
    // What the bootloader and initramfs steps make is never copied over nor deleted by a copy.
    expect(sync.disks!.keptOut).toEqual(expect.arrayContaining(['/boot/initrd.img-*', '/boot/initramfs-*.img', '/boot/grub/grub.cfg', '/boot/grub/i386-pc', '/boot/grub2/x86_64-efi', '/boot/efi/EFI/BOOT']));
    expect(sync.steps.find((s) => s.kind === 'bootloader')!.detail).toContain('GRUB for UEFI on the ESP at /boot/efi');
  });

  it('rewrites device names of the origin\'s disks as the UUIDs the layout keeps', () => {
    const fstab = action.sync!.fixups!.files.find((f) => f.path === '/etc/fstab')!;
    expect(fstab.text).toBe(FSTAB.replace('/dev/sda2 ', 'UUID=1b7c5a3e-9d2f-4e8a-b6c1-0f3e2d4c5b6a '));
  });

  it('needs no landing disk for the excluded ASM disk, and refuses a copied disk that has none', () => {
    const unmapped = makePlan(specWith('[{ origin: /dev/sda, target: /dev/vdb }]', '{}'), observed(blankLanding({ '/dev/vdb': 30 * GiB })), now).actions[0]!;
    // Not excluded, the ASM disk holds nothing rmm copies: it is not laid out, and says so.
    expect(unmapped.kind, unmapped.reasons.join('\n')).toBe('sync');
    expect(unmapped.sync!.disks!.summary.notCopied).toContain('/dev/sdb');
  });

  it('refuses a landing disk holding something else unless its mapping says wipe: true, before any step', () => {
    const used = blankLanding({ '/dev/vdb': 30 * GiB }, { type: 'ext4', uuid: '11111111-2222-3333-4444-555555555555' });
    const refused = makePlan(spec, observed(used), now).actions[0]!;
    expect(refused.kind).toBe('blocked');
    expect(refused.reasons[0]).toMatch(/landing disk \/dev\/vdb holds .*which is not this replica: set wipe: true/);
    const wiped = makePlan(specWith('[{ origin: /dev/sda, target: /dev/vdb, wipe: true }]'), observed(used), now).actions[0]!;
    expect(wiped.kind, wiped.reasons.join('\n')).toBe('sync');
    expect(wiped.sync!.steps.filter((s) => s.kind === 'layout')[0]!.detail).toMatch(/^erase .* on \/dev\/vdb \(wipe: true\)/);
  });

  it('refuses a landing disk too small for the data, with the figures', () => {
    const small = makePlan(spec, observed(blankLanding({ '/dev/vdb': 2 * GiB })), now).actions[0]!;
    expect(small.kind).toBe('blocked');
    expect(small.reasons[0]).toMatch(/^landing disk \/dev\/vdb is 2(\.0)? GiB; origin \/dev\/sda needs at least [0-9.]+ GiB/);
  });

  it('is blocked when either side\'s disks were not read', () => {
    const seen = observed(blankLanding({ '/dev/vdb': 30 * GiB }));
    const entry = seen.replicas.get('db-dr')!;
    const noLanding: Observed = { at: '', replicas: new Map([['db-dr', { ...entry, target: { ...(entry.target as object), layout: undefined } as never }]]) };
    expect(makePlan(spec, noLanding, now).actions[0]!.reasons[0]).toBe('the disk layout of the landing host landing was not read');
  });
});

