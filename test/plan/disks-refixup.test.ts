import { describe, expect, it } from 'vitest';
import type { Spec } from '../../src/config/spec.js';
import type { DiskLayout } from '../../src/observe/layout.js';
import type { Observed } from '../../src/observe/observe.js';
import type { PlannedAction } from '../../src/plan/action.js';
import { makePlan } from '../../src/plan/plan.js';
import { LANDING_TOOLS } from '../../src/plan/tools.js';
import { fixupEntry, type ReplicaRecord } from '../../src/record/record.js';
import { formatAdapted, parseAdapted } from '../../src/target/disks/adapted.js';
import type { PointConfig } from '../../src/target/driver.js';
import type { LandingVolume } from '../../src/target/disks/volumes.js';
import { disksSpec, GiB, SERVER_LAYOUT, serverFacts } from '../support/disks-server.js';

/**
 * A disks replica whose spec changes its IP remap only: the fixups are re-run on the disks (mounted
 * as its last sync mounted them) from what the replica keeps beside its record, with the origin down.
 */

const ORIGIN = SERVER_LAYOUT;
const facts = serverFacts;
const now = new Date('2026-11-24T12:00:00Z');
const POINT = '20261124T090000Z';
const specWith = (remapTo: string): Spec => disksSpec({ remapTo });
const FILES: Record<string, string> = {
  '/etc/fstab': '/dev/sda2 /boot xfs defaults 0 0\n/dev/mapper/rl-root / xfs defaults 0 0\n',
  '/etc/network/interfaces': 'auto eth0\niface eth0 inet static\n    address 10.0.2.15/24\n    gateway 10.0.2.1\n',
};
const tree = (m: Record<string, string>) => ({ files: Object.entries(m).map(([path, text]) => ({ path, text })), refused: [] });
const tools = Object.fromEntries(LANDING_TOOLS.map((t) => [t, true]));

const blank: DiskLayout = { firmware: 'bios', disks: [{ path: '/dev/vdb', sizeBytes: 30 * GiB, logicalSectorBytes: 512, partitions: [], readOnly: false, removable: false }], volumeGroups: [] };
/** The landing host once the first sync laid /dev/vdb out: partitions 1-3, the volume group rl on the third. */
const laidOut: DiskLayout = {
  firmware: 'bios',
  disks: [{ ...blank.disks[0]!, table: 'gpt', partitions: [1, 2, 3].map((n) => ({ path: `/dev/vdb${n}`, number: n, startSector: n * 2048, sizeSectors: 2048, sizeBytes: 2048 * 512, type: '' })) }],
  volumeGroups: [{ name: 'rl', pvs: ['/dev/vdb3'], sizeBytes: 20 * GiB, freeBytes: 0, lvs: [{ name: 'root', sizeBytes: 10 * GiB }, { name: 'home', sizeBytes: 5 * GiB }] }],
} as unknown as DiskLayout;

/** The first sync's plan, with the origin up; its fixups give the replica's files. */
function firstSync(spec = specWith('10.0.4.0/24'), landing: { layout: DiskLayout; volumes?: LandingVolume[] } = { layout: blank }): PlannedAction {
  const observed: Observed = { at: '', replicas: new Map([['db-dr', { replica: 'db-dr', origin: { facts, layout: ORIGIN, configFiles: tree(FILES) }, target: { record: undefined, tools, ...landing } }]]) };
  return makePlan(spec, observed, now).actions[0]!;
}

/** The landing host after that sync: a consistent record, the adapted files and mounts kept beside it, the origin down. */
function afterSync(spec: Spec, first: PlannedAction, change: (c: PointConfig) => PointConfig = (c) => c, landing: { layout: DiskLayout; volumes?: LandingVolume[] } = { layout: laidOut }): Observed {
  const sync = first.sync!;
  const adapted = { ...FILES };
  for (const f of sync.fixups!.files) adapted[f.renamedTo ?? f.path] = f.text!;
  const originals = Object.fromEntries(sync.fixups!.files.map((f) => [f.path, FILES[f.path]!]));
  const at = '2026-11-24T09:00:00.000Z';
  const specHash = spec.replicas[0]!.specHash;
  const record: ReplicaRecord = {
    schemaVersion: 1,
    replica: 'db-dr',
    origin: { name: 'db', hostname: facts.hostname, machineId: facts.machineId },
    specHash,
    state: 'consistent',
    runId: 'run1',
    updatedAt: at,
    points: [{ id: POINT, specHash, startedAt: at, finishedAt: at, snapshots: {}, pointInTime: true, fixups: { hash: sync.fixups!.hash, files: sync.fixups!.files.map((f) => fixupEntry(f.path, f.renamedTo)) } }],
  };
  const kept = parseAdapted(formatAdapted({ point: POINT, mounts: sync.disks!.mounts, devices: sync.disks!.fixupDevices, files: tree(adapted) }));
  if ('invalid' in kept) throw new Error(kept.invalid);
  const pointConfig = change({ point: POINT, files: kept.files, originals: tree(originals), disks: { mounts: kept.mounts, devices: kept.devices } });
  return { at: '', replicas: new Map([['db-dr', { replica: 'db-dr', origin: { error: 'connect ECONNREFUSED', code: 'ssh.connect_failed' }, target: { record, tools, ...landing, pointConfig } }]]) };
}

describe('a disks replica whose IP remap changes', () => {
  const first = firstSync();

  it('re-runs the fixups on its disks, mounted as its last sync mounted them, with the origin down; nothing is copied', () => {
    expect(first.kind, first.reasons.join('\n')).toBe('sync');
    const spec = specWith('10.0.5.0/24');
    const action = makePlan(spec, afterSync(spec, first), now).actions[0]!;
    expect(action.kind, action.reasons.join('\n')).toBe('fixup');
    const fixup = action.fixup!;
    expect(fixup.target).toEqual({ kind: 'disks', address: '192.0.2.20', mountRoot: '/run/rmm-replica.db-dr', mounts: first.sync!.disks!.mounts });
    expect(fixup.steps.map((s) => s.kind)).toEqual(['lock', 'check', 'record-start', 'mount', 'fixup', 'unmount', 'record', 'unlock']);
    expect(fixup.steps.find((s) => s.kind === 'lock')!.detail).toContain('192.0.2.20:/var/lib/rmm/replicas/db-dr/.rmm/lock');
    // Only the address changes: fstab keeps the device references the layout's UUIDs gave it.
    expect(fixup.changes.map((c) => c.path)).toEqual(['/etc/network/interfaces']);
    expect(fixup.changes[0]!.text).toContain('address 10.0.5.15/24');
    expect(fixup.changes[0]!.diff).toContain('-    address 10.0.4.15/24');
  });

  it('has nothing to do when the remap is the one the disks were adapted to', () => {
    const spec = specWith('10.0.4.0/24');
    expect(makePlan(spec, afterSync(spec, first), now).actions[0]!.kind).toBe('none');
  });

  it('copies again when a kept mount names a device outside the disks the spec names', () => {
    const spec = specWith('10.0.5.0/24');
    const planted = afterSync(spec, first, (c) => ({ ...c, disks: { ...c.disks!, mounts: c.disks!.mounts.map((m) => (m.mountPoint === '/boot' ? { ...m, device: '/dev/sda1' } : m)) } }));
    const action = makePlan(spec, planted, now).actions[0]!;
    // The origin is down: the copy it falls back to is blocked, and says why.
    expect(action.kind).toBe('blocked');
    expect(action.reasons.join('\n')).toContain('its kept mount of /boot names /dev/sda1, which is not on a landing disk the spec names: copied again');
  });

  it('copies again when what the last sync adapted cannot be read', () => {
    const spec = specWith('10.0.5.0/24');
    const unreadable = afterSync(spec, first, () => ({ point: '', files: tree({}), originals: tree({}), unavailable: 'landing:/var/lib/rmm/replicas/db-dr/.rmm/adapted.json: not JSON' }));
    expect(makePlan(spec, unreadable, now).actions[0]!.reasons.join('\n')).toContain('cannot be read: landing:/var/lib/rmm/replicas/db-dr/.rmm/adapted.json: not JSON');
  });
});

describe('a disks replica on a landing logical volume whose IP remap changes', () => {
  const lvSpec = (remapTo: string) => disksSpec({ remapTo, disks: '[{ origin: /dev/sda, target: /dev/landing/db }]', hostDisks: '[/dev/landing/db]' });
  const volume = (loop: string): LandingVolume => ({ path: '/dev/landing/db', loop, vg: 'landing', lv: 'db', thin: false, sizeBytes: 30 * GiB, vgFreeBytes: 40 * GiB, snapshots: [] });
  const onLoop = (loop: string): DiskLayout => JSON.parse(JSON.stringify(laidOut).replaceAll('/dev/vdb', `${loop}p`).replaceAll(`"${loop}p"`, `"${loop}"`)) as DiskLayout;
  const first = firstSync(lvSpec('10.0.4.0/24'), { layout: { ...blank, disks: [{ ...blank.disks[0]!, path: '/dev/loop0' }] }, volumes: [volume('/dev/loop0')] });

  it('mounts the volume through the loop device it is attached as now', () => {
    expect(first.kind, first.reasons.join('\n')).toBe('sync');
    expect(first.sync!.disks!.mounts.find((m) => m.mountPoint === '/boot')!.device).toBe('/dev/loop0p2');
    const spec = lvSpec('10.0.5.0/24');
    const action = makePlan(spec, afterSync(spec, first, undefined, { layout: onLoop('/dev/loop0'), volumes: [volume('/dev/loop0')] }), now).actions[0]!;
    expect(action.kind, action.reasons.join('\n')).toBe('fixup');
  });

  it('copies again, saying why, when the landing host attached it as another loop device since (its kept mounts name the old one)', () => {
    const spec = lvSpec('10.0.5.0/24');
    const action = makePlan(spec, afterSync(spec, first, undefined, { layout: onLoop('/dev/loop1'), volumes: [volume('/dev/loop1')] }), now).actions[0]!;
    expect(action.kind).toBe('blocked');
    expect(action.reasons.join('\n')).toMatch(/its kept mount of \/boot names \/dev\/loop0p2, which is not on a landing disk the spec names: copied again/);
  });
});

describe('parseAdapted (read back from the landing host: untrusted)', () => {
  const good = { point: POINT, mounts: [{ device: '/dev/vdb1', mountPoint: '/', fsType: 'ext4', relativePath: '' }, { device: '/dev/vg_app/lv_data', mountPoint: '/srv/app', fsType: 'xfs', relativePath: 'srv/app', volumeGroup: 'vg_app' }], devices: { '/dev/vda1': 'UUID=0a1b-2c3d' }, files: tree({ '/etc/hostname': 'app01\n' }) };

  it('reads back what it wrote', () => {
    expect(parseAdapted(formatAdapted(good))).toEqual(good);
  });

  it.each([
    ['not JSON', '{', 'not JSON'],
    ['another version', JSON.stringify({ ...good, schemaVersion: 2 }), 'not schemaVersion 1'],
    ['a point that is not an id', JSON.stringify({ schemaVersion: 1, ...good, point: '../x' }), 'point is not a point id'],
    ['a device outside /dev', JSON.stringify({ schemaVersion: 1, ...good, mounts: [{ ...good.mounts[0], device: '/etc/../dev/sda' }] }), 'mounts are not devices at mount points'],
    ['a path below the mount root that is not its mount point', JSON.stringify({ schemaVersion: 1, ...good, mounts: [{ ...good.mounts[1], relativePath: '../../etc' }] }), 'mounts are not devices at mount points'],
    ['no mounts', JSON.stringify({ schemaVersion: 1, ...good, mounts: [] }), 'mounts are not devices at mount points'],
    ['a device reference that is not one', JSON.stringify({ schemaVersion: 1, ...good, devices: { '/dev/vda1': 'UUID=x y' } }), 'devices are not device references'],
    ['a file path with ..', JSON.stringify({ schemaVersion: 1, ...good, files: tree({ '/etc/../x': '' }) }), 'a configuration file is out of shape'],
  ])('refuses %s', (_what, text, why) => {
    expect(parseAdapted(text)).toEqual({ invalid: why });
  });
});
