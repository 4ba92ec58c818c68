/**
 * Landing devices that are logical volumes: how rmm reads them back from the landing host, when a
 * sync snapshots them and what it plans, and the rollback a cut sync gets when the origin is down.
 */
import { describe, expect, it } from 'vitest';
import type { DiskLayout } from '../../src/observe/layout.js';
import type { Observed } from '../../src/observe/observe.js';
import { makePlan } from '../../src/plan/plan.js';
import { LANDING_TOOLS } from '../../src/plan/tools.js';
import type { RecoveryPoint, ReplicaRecord } from '../../src/record/record.js';
import { parseAttach, type LandingVolume } from '../../src/target/disks/volumes.js';
import { disksSpec, GiB, SERVER_LAYOUT, serverFacts } from '../support/disks-server.js';

const now = new Date('2026-12-07T12:00:00Z');
const spec = disksSpec({ disks: '[{ origin: /dev/sda, target: /dev/landing/db }]', hostDisks: '[/dev/landing/db, /dev/vdc]' });
const FSTAB = '/dev/sda2 /boot xfs defaults 0 0\n/dev/mapper/rl-root / xfs defaults 0 0\nUUID=6C5A-94D9 /boot/efi vfat umask=0077 0 2\n';

/** The volume attached as /dev/loop0, blank. */
const landing: DiskLayout = {
  firmware: 'bios',
  disks: [{ path: '/dev/loop0', sizeBytes: 30 * GiB, logicalSectorBytes: 512, partitions: [], readOnly: false, removable: false }],
  volumeGroups: [],
};

function volume(over: Partial<LandingVolume> = {}): LandingVolume {
  return { path: '/dev/landing/db', loop: '/dev/loop0', vg: 'landing', lv: 'db', thin: false, sizeBytes: 30 * GiB, vgFreeBytes: 40 * GiB, snapshots: [], ...over };
}

function point(id: string): RecoveryPoint {
  return { id, specHash: spec.replicas[0]!.specHash, startedAt: '2026-12-07T10:00:00.000Z', finishedAt: '2026-12-07T10:10:00.000Z', snapshots: {}, pointInTime: true };
}

function record(state: ReplicaRecord['state'], ids: string[]): ReplicaRecord {
  return {
    schemaVersion: 1,
    replica: 'db-dr',
    origin: { name: 'db', hostname: serverFacts.hostname, machineId: serverFacts.machineId },
    specHash: spec.replicas[0]!.specHash,
    state,
    runId: 'r1',
    updatedAt: '2026-12-07T10:10:00.000Z',
    points: ids.map(point),
  };
}

function observed(volumes: LandingVolume[], rec: ReplicaRecord | undefined, originUp = true): Observed {
  const tools = Object.fromEntries(LANDING_TOOLS.map((t) => [t, true]));
  const origin = originUp ? { facts: serverFacts, layout: SERVER_LAYOUT, configFiles: { files: [{ path: '/etc/fstab', text: FSTAB }], refused: [] } } : { error: 'connect ETIMEDOUT 192.0.2.10:22' };
  return { at: '', replicas: new Map([['db-dr', { replica: 'db-dr', origin, target: { record: rec, tools, layout: landing, volumes } }]]) };
}

const plan = (volumes: LandingVolume[], rec?: ReplicaRecord, originUp = true) => makePlan(spec, observed(volumes, rec, originUp), now, { syncNow: 'all' }).actions[0]!;

describe('a landing logical volume', () => {
  it('is laid out, copied and made bootable through the loop device it is attached as', () => {
    const action = plan([volume()]);
    expect(action.kind, action.reasons.join('\n')).toBe('sync');
    const d = action.sync!.disks!;
    expect(d.layout[0]!.detail).toMatch(/on \/dev\/loop0/);
    expect(d.mounts.find((m) => m.mountPoint === '/boot')!.device).toBe('/dev/loop0p2');
    expect(d.boot.disk).toBe('/dev/loop0');
    expect(action.reasons).toContain('landing volume /dev/landing/db is written as /dev/loop0, the loop device it is attached as (its partitions /dev/loop0p1…)');
    // The first sync has no point to keep.
    expect(d.keep).toBeUndefined();
    expect(action.reasons.some((r) => r.startsWith('the first sync: the landing volumes hold no recovery point yet to keep'))).toBe(true);
  });

  it('is snapshotted as the last point before a later sync writes anything, and older snapshots go by retention', () => {
    const ids = ['20261201T000000Z', '20261202T000000Z', '20261203T000000Z', '20261204T000000Z', '20261205T000000Z', '20261206T000000Z', '20261207T000000Z'];
    const action = plan([volume({ snapshots: ids.slice(0, -1).map((p) => ({ point: p, valid: true })) })], record('consistent', ids));
    const sync = action.sync!;
    expect(sync.disks!.keep).toEqual({ point: '20261207T000000Z', reuse: false });
    const kinds = sync.steps.map((s) => s.kind);
    expect(kinds.indexOf('landing-snapshot')).toBe(kinds.indexOf('record-start') + 1);
    expect(kinds.indexOf('landing-snapshot')).toBeLessThan(kinds.indexOf('mount'));
    expect(sync.steps.find((s) => s.kind === 'landing-snapshot')!.detail).toContain('snapshot the landing volumes landing/db as recovery point 20261207T000000Z (lvcreate --snapshot)');
    expect(action.reasons.some((r) => r.includes('a sync that fails merges them back (lvconvert --merge)'))).toBe(true);
    // The default retention keeps 1 point, the disks themselves: once the new one is recorded, every
    // snapshot goes, the one this sync takes included. Snapshots then exist only while a sync runs.
    expect([...sync.prune.ifCopied].sort()).toEqual(ids);
    expect(sync.steps.find((s) => s.kind === 'prune')!.detail).toMatch(/^remove the landing volumes' snapshots of recovery point\(s\) 20261207T000000Z, .* \(retention keeps 1\)$/);
  });

  it("removes a snapshot of this replica's that the record does not name (a run stopped halfway made it)", () => {
    const action = plan([volume({ snapshots: [{ point: '20261206T000000Z', valid: true }] })], record('consistent', ['20261207T000000Z']));
    expect(action.sync!.prune.ifCopied).toContain('20261206T000000Z');
  });

  it('takes no snapshot when the volume group has no room for a full one, and says so', () => {
    const action = plan([volume({ vgFreeBytes: 10 * GiB })], record('consistent', ['20261207T000000Z']));
    expect(action.sync!.disks!.keep).toBeUndefined();
    expect(action.sync!.steps.map((s) => s.kind)).not.toContain('landing-snapshot');
    expect(action.reasons.some((r) => r.startsWith('volume group landing has 10.0 GiB free and full snapshots of its landing volumes need 30.3 GiB, so no snapshot is taken'))).toBe(true);
  });

  it('is not written while LVM merges a snapshot into it (a merge it put off to the next activation)', () => {
    const action = plan([volume({ merging: true })], record('consistent', ['20261207T000000Z']));
    expect(action.kind).toBe('blocked');
    expect(action.reasons[0]).toMatch(/^LVM is merging a snapshot into landing volume \/dev\/landing\/db, .*lvchange -an, then -ay/);
    const down = plan([volume({ merging: true, snapshots: [{ point: '20261207T000000Z', valid: true }] })], record('in-progress', ['20261207T000000Z']), false);
    expect(down.kind).toBe('blocked');
  });

  it('thin: a snapshot needs no free space', () => {
    const action = plan([volume({ thin: true, vgFreeBytes: 0 })], record('consistent', ['20261207T000000Z']));
    expect(action.sync!.disks!.keep).toEqual({ point: '20261207T000000Z', reuse: false });
  });

  it('after a cut sync, the next sync keeps the snapshot it left and never verifies the half-written disks', () => {
    const cut = { ...record('failed', ['20261207T000000Z']), pending: point('20261207T110000Z') };
    const action = plan([volume({ snapshots: [{ point: '20261207T000000Z', valid: true }] })], cut);
    expect(action.kind).toBe('sync');
    expect(action.sync!.disks!.keep).toEqual({ point: '20261207T000000Z', reuse: true });
    expect(action.sync!.mayVerify).toBe(false);
    expect(action.sync!.steps.find((s) => s.kind === 'landing-snapshot')!.detail).toMatch(/^keep the snapshots of recovery point 20261207T000000Z that the cut sync took/);
  });

  it('after a cut sync whose snapshot overflowed, the disks are written over without one, and the plan says so', () => {
    const action = plan([volume({ snapshots: [{ point: '20261207T000000Z', valid: false }] })], record('failed', ['20261207T000000Z']));
    expect(action.sync!.disks!.keep).toBeUndefined();
    expect(action.reasons.some((r) => r.startsWith('the last sync did not finish and left no usable snapshot of recovery point 20261207T000000Z'))).toBe(true);
  });

  it('with the origin out of reach after a cut sync: a rollback from the snapshots, nothing copied', () => {
    const action = plan([volume({ snapshots: [{ point: '20261207T000000Z', valid: true }] })], record('in-progress', ['20261207T000000Z']), false);
    expect(action.kind).toBe('rollback');
    expect(action.reasons[0]).toMatch(/^the last sync did not finish and origin db cannot be reached \(connect ETIMEDOUT .*\): the landing volumes go back to recovery point 20261207T000000Z/);
    expect(action.rollback!.steps.map((s) => s.kind)).toEqual(['lock', 'check', 'rollback', 'record', 'unlock']);
    expect(action.rollback!.volumes.map((v) => `${v.vg}/${v.lv}`)).toEqual(['landing/db']);
    // Without a snapshot of the last point there is nothing to go back to: blocked, as before.
    expect(plan([volume()], record('in-progress', ['20261207T000000Z']), false).kind).toBe('blocked');
    // A consistent replica with the origin down is not rolled back.
    expect(plan([volume({ snapshots: [{ point: '20261207T000000Z', valid: true }] })], record('consistent', ['20261207T000000Z']), false).kind).toBe('blocked');
  });

  it('a replica rolled back after a failed sync is consistent and due again', () => {
    const back = { ...record('consistent', ['20261207T000000Z']), error: 'copy failed; the landing volumes were rolled back to recovery point 20261207T000000Z' };
    const action = makePlan(spec, observed([volume()], back), now).actions[0]!;
    expect(action.kind).toBe('sync');
    expect(action.reasons[0]).toBe('the last sync failed: copy failed; the landing volumes were rolled back to recovery point 20261207T000000Z');
  });
});

describe('parseAttach: the landing volumes as the landing host lists them (untrusted)', () => {
  const listing = [
    'volume /dev/landing/db /dev/loop0',
    "  LVM2_VG_NAME='landing' LVM2_LV_NAME='db' LVM2_SEGTYPE='linear' LVM2_LV_SIZE='2147483648' LVM2_VG_FREE='4018143232' LVM2_LV_MERGING=''",
    // As lvs -a lists the volume group: the volume itself, another volume's snapshot, a snapshot twice, a hidden one being merged.
    "snapshot   LVM2_LV_NAME='db' LVM2_LV_TAGS='' LVM2_LV_SNAPSHOT_INVALID='unknown' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='web_rmm_20261207T010000Z' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='db_rmm_20261207T010000Z' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='db_rmm_20261207T010000Z' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='db_rmm_20261206T010000Z' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='invalid' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='[db_rmm_20261204T010000Z]' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='unknown' LVM2_SEGTYPE='thin'",
    "snapshot   LVM2_LV_NAME='db_rmm_20261205T010000Z' LVM2_LV_TAGS='rmm_other' LVM2_LV_SNAPSHOT_INVALID='' LVM2_SEGTYPE='linear'",
    "snapshot   LVM2_LV_NAME='db_backup' LVM2_LV_TAGS='rmm_db-dr' LVM2_LV_SNAPSHOT_INVALID='' LVM2_SEGTYPE='linear'",
    'plain /dev/vdc',
  ].join('\n');

  it("reads the volumes and this replica's snapshots, oldest first; another replica's or tool's are not points", () => {
    const { plain, volumes } = parseAttach(listing, 'landing', 'db-dr');
    expect(plain).toEqual(['/dev/vdc']);
    expect(volumes).toEqual([
      {
        path: '/dev/landing/db',
        loop: '/dev/loop0',
        vg: 'landing',
        lv: 'db',
        thin: false,
        sizeBytes: 2147483648,
        vgFreeBytes: 4018143232,
        snapshots: [
          { point: '20261204T010000Z', valid: true },
          { point: '20261206T010000Z', valid: false },
          { point: '20261207T010000Z', valid: true },
        ],
      },
    ]);
  });

  it('refuses names and figures that are not what lvs prints', () => {
    expect(() => parseAttach(listing.replace("LVM2_VG_NAME='landing'", "LVM2_VG_NAME='land ing; rm'"), 'landing', 'db-dr')).toThrow(/vg_name "land ing; rm" is not an LVM name/);
    expect(() => parseAttach(listing.replace("LVM2_LV_SIZE='2147483648'", "LVM2_LV_SIZE='-1'"), 'landing', 'db-dr')).toThrow(/lv_size "-1" is not a size in bytes/);
    expect(() => parseAttach('volume /dev/landing/db /dev/sda', 'landing', 'db-dr')).toThrow(/unexpected line/);
    expect(() => parseAttach('volume /dev/landing/db /dev/loop0\n', 'landing', 'db-dr')).toThrow(/no lvs row for \/dev\/landing\/db/);
  });
});
