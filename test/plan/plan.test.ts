import { describe, expect, it } from 'vitest';
import { loadSources } from '../../src/config/load.js';
import type { Spec } from '../../src/config/spec.js';
import type { Observed, ObservedReplica } from '../../src/observe/observe.js';
import { hasChanges, makePlan } from '../../src/plan/plan.js';
import { stalenessOf } from '../../src/plan/saved.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { nextLookAt } from '../../src/policy/schedule.js';
import { filesystem, originFacts } from '../support/facts.js';

function specOf(policy: string, replicaExtra = '', environmentExtra = ''): Spec {
  const text = `
apiVersion: rmm/v1
kind: Origin
metadata: { name: web }
spec: { address: 192.0.2.10, exclude: { mounts: [/scratch] } }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec: { hosts: [{ name: t, address: 192.0.2.20, path: /srv/replicas }]${environmentExtra} }
---
apiVersion: rmm/v1
kind: Policy
metadata: { name: p }
spec: ${policy}
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: web-dr }
spec: { origin: web, environment: dr, policy: p${replicaExtra} }
`;
  const { spec, diagnostics } = loadSources([{ name: 'plan.yaml', baseDir: '/tmp', text }]);
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec;
}

const facts = originFacts([filesystem('/', 'btrfs'), filesystem('/scratch', 'ext4')]);

function observed(record: ReplicaRecord | undefined, origin: ObservedReplica['origin'] = { facts }, tools: Record<string, boolean> = { rsync: true, flock: true }): Observed {
  return { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin, target: { record, tools } }]]) };
}

function record(spec: Spec, startedAt: string, state: ReplicaRecord['state'] = 'consistent', specHash = spec.replicas[0]!.specHash): ReplicaRecord {
  return {
    schemaVersion: 1,
    replica: 'web-dr',
    origin: { name: 'web', hostname: 'web-01', machineId: facts.machineId },
    specHash,
    state,
    runId: 'run1',
    updatedAt: startedAt,
    points: [{ id: 'p1', specHash, startedAt, finishedAt: startedAt, snapshots: {}, pointInTime: true }],
  };
}

const now = new Date('2026-11-24T12:00:00Z');

describe('makePlan', () => {
  it('plans an initial sync, with the filesystems and snapshots it would use', () => {
    const spec = specOf('{ schedule: { interval: 1h } }');
    const plan = makePlan(spec, observed(undefined), now);
    expect(plan.actions[0]).toMatchObject({
      kind: 'sync',
      reasons: ['initial sync: the target holds no consistent copy'],
      filesystems: [{ mountPoint: '/', fsType: 'btrfs', provider: 'btrfs' }],
      skipped: [{ mountPoint: '/scratch', reason: 'exclude.mounts /scratch' }],
    });
    expect(hasChanges(plan)).toBe(true);
  });

  it('plans nothing when the last sync is consistent and not due', () => {
    const spec = specOf('{ schedule: { interval: 1h }, rpo: 2h }');
    const plan = makePlan(spec, observed(record(spec, '2026-11-24T11:30:00Z')), now);
    expect(plan.actions[0]!.kind).toBe('none');
    expect(plan.actions[0]!.reasons[0]).toBe('up to date: recovery point p1 is 30m old (next at 2026-11-24T12:30:00.000Z)');
    expect(hasChanges(plan)).toBe(false);
  });

  it('syncs when the interval has passed, and says when the RPO is exceeded', () => {
    const spec = specOf('{ schedule: { interval: 1h }, rpo: 2h }');
    const plan = makePlan(spec, observed(record(spec, '2026-11-24T09:00:00Z')), now);
    expect(plan.actions[0]!.reasons).toEqual(['schedule: 1h since the last sync at 2026-11-24T09:00:00Z', 'RPO 2h exceeded by 1h']);
  });

  it('with an RPO and no schedule, syncs at half the RPO, and a loop looks again then', () => {
    const spec = specOf('{ rpo: 2h }');
    const fresh = record(spec, '2026-11-24T11:30:00Z');
    expect(makePlan(spec, observed(fresh), now).actions[0]!.kind).toBe('none');
    expect(nextLookAt(spec.replicas[0]!, fresh.points[0]!)?.toISOString()).toBe('2026-11-24T12:30:00.000Z');
    const plan = makePlan(spec, observed(record(spec, '2026-11-24T10:30:00Z')), now);
    expect(plan.actions[0]!.reasons).toEqual(['RPO 2h: the copy is 1h30m old, past half of it (with no schedule, rmm syncs at half the RPO)']);
    // With a schedule, a loop looks when it comes, or just past the RPO if that is sooner.
    const daily = specOf('{ schedule: { cron: "0 3 * * *" }, rpo: 2h }');
    expect(nextLookAt(daily.replicas[0]!, record(daily, '2026-11-24T11:30:00Z').points[0]!)?.toISOString()).toBe('2026-11-24T13:30:01.000Z');
    expect(nextLookAt(specOf('{ schedule: { interval: 1h }, rpo: 2h }').replicas[0]!, fresh.points[0]!)?.toISOString()).toBe('2026-11-24T12:30:00.000Z');
  });

  it('counts schedule and RPO from the last verification of an unchanged origin', () => {
    const spec = specOf('{ schedule: { interval: 1h }, rpo: 2h }');
    const verified = record(spec, '2026-11-24T09:00:00Z');
    const seen = { ...verified, points: [{ ...verified.points[0]!, verifiedAt: '2026-11-24T11:30:00Z' }] };
    const plan = makePlan(spec, observed(seen), now);
    expect(plan.actions[0]!.kind).toBe('none');
    expect(plan.actions[0]!.reasons[0]).toBe('up to date: recovery point p1 was verified 30m ago (next at 2026-11-24T12:30:00.000Z)');
  });

  it('syncs when a cron schedule was due since the last sync', () => {
    const spec = specOf('{ schedule: { cron: "0 * * * *" } }');
    expect(makePlan(spec, observed(record(spec, '2026-11-24T11:30:00Z')), now).actions[0]!.reasons).toEqual([
      "schedule: cron '0 * * * *' was due at 2026-11-24T12:00:00.000Z",
    ]);
  });

  it('resyncs after an interrupted or failed sync, and after a spec change', () => {
    const spec = specOf('{}');
    expect(makePlan(spec, observed(record(spec, '2026-11-24T11:00:00Z', 'in-progress')), now).actions[0]!.reasons).toEqual(['the last sync (run run1) did not finish']);
    expect(makePlan(spec, observed(record(spec, '2026-11-24T11:00:00Z', 'failed')), now).actions[0]!.reasons).toEqual(['the last sync failed']);
    const changed = makePlan(spec, observed(record(spec, '2026-11-24T11:00:00Z', 'consistent', 'oldhash')), now).actions[0]!;
    expect(changed.reasons[0]).toMatch(/^the spec changed since the last sync \(generation oldhash -> /);
  });

  it('syncs on request only with --sync-now', () => {
    const spec = specOf('{}');
    const seen = observed(record(spec, '2026-11-24T11:00:00Z'));
    expect(makePlan(spec, seen, now).actions[0]!.kind).toBe('none');
    expect(makePlan(spec, seen, now, { syncNow: 'all' }).actions[0]!.reasons).toEqual(['sync requested (--sync-now)']);
  });

  it('blocks, with the reason, when the origin cannot be read or the snapshot would not fit', () => {
    const spec = specOf('{}');
    expect(makePlan(spec, observed(undefined, { error: 'connection refused' }), now).actions[0]).toMatchObject({
      kind: 'blocked',
      reasons: ['origin web: connection refused', 'initial sync: the target holds no consistent copy'],
    });
    const full = originFacts([filesystem('/', 'btrfs', { sizeBytes: 100, availableBytes: 1 })]);
    expect(makePlan(spec, observed(undefined, { facts: full }), now).actions[0]!.reasons[0]).toMatch(/has 1.0% free/);
  });

  it('is fast for 10,000 replicas (the planner is pure)', () => {
    const spec = specOf('{ schedule: { interval: 1h } }');
    const many: Spec = { ...spec, replicas: Array.from({ length: 10_000 }, (_, i) => ({ ...spec.replicas[0]!, name: `r${i}` })) };
    const seen: Observed = {
      at: '',
      replicas: new Map(many.replicas.map((r) => [r.name, { replica: r.name, origin: { facts }, target: { record: { ...record(spec, '2026-11-24T11:30:00Z'), replica: r.name }, tools: { rsync: true } } }])),
    };
    const plan = makePlan(many, seen, now);
    expect(plan.actions).toHaveLength(10_000);
    expect(plan.actions.every((a) => a.kind === 'none')).toBe(true);
  });
});

describe('missing rsync on the origin', () => {
  it('blocks unless the policy may install it', () => {
    const noRsync = originFacts([filesystem('/', 'btrfs')], { rsync: false });
    const blocked = makePlan(specOf('{}'), observed(undefined, { facts: noRsync }), now).actions[0]!;
    expect(blocked.kind).toBe('blocked');
    expect(blocked.reasons[0]).toBe('origin web has no rsync (install it, or set policy autoInstallPackages: true)');
    const installing = makePlan(specOf('{ autoInstallPackages: true }'), observed(undefined, { facts: noRsync }), now).actions[0]!;
    expect(installing.kind).toBe('sync');
    expect(installing.reasons).toContain('rsync will be installed on origin web (autoInstallPackages)');
  });
});

describe('a sync action carries everything apply needs', () => {
  it('lists the copy units, the steps in order and the prune lists; apply re-derives none of it', () => {
    const spec = specOf('{ schedule: { interval: 1h }, retention: { recoveryPoints: 2 } }');
    const first = makePlan(spec, observed(undefined), now).actions[0]!;
    expect(first.sync!.units.map((u) => [u.fs.mountPoint, u.provider, u.method.kind])).toEqual([['/', 'btrfs', 'tar']]);
    expect(first.sync!.steps.map((s) => s.id)).toEqual([
      'lock', 'check', 'record-start', 'clean', 'snapshot /', 'channel', 'copy /', 'release /', 'revoke', 'promote', 'record', 'unlock',
    ]);
    expect(first.sync!.mayVerify).toBe(false);

    const withManifests = record(spec, '2026-11-24T09:00:00Z');
    const points = [
      { ...withManifests.points[0]!, id: '20261123T090000Z', startedAt: '2026-11-23T09:00:00Z' },
      { ...withManifests.points[0]!, id: '20261124T090000Z', manifests: { '/': 'abc' }, snapshots: { '/': 'btrfs' } },
    ];
    const later = makePlan(spec, observed({ ...withManifests, points }), now).actions[0]!;
    expect(later.sync!.basePoint).toBe('20261124T090000Z');
    expect(later.sync!.units[0]!.method).toEqual({ kind: 'rsync', why: '' });
    expect(later.sync!.steps.map((s) => s.id)).toEqual([
      'lock', 'check', 'record-start', 'clean', 'snapshot /', 'compare', 'channel', 'copy /', 'release /', 'revoke', 'promote', 'record', 'prune', 'unlock',
    ]);
    expect(later.sync!.steps.filter((s) => s.when === 'changed').map((s) => s.id)).toEqual(['channel', 'copy /', 'revoke', 'promote']);
    // Two points kept: a new one drops the oldest; a verification drops none.
    expect(later.sync!.prune).toEqual({ ifCopied: ['20261123T090000Z'], ifUnchanged: [] });
    expect(later.nextDueAt).toBe('2026-11-24T10:00:00.000Z');
    // The inputs hash is computed when first read, and is there in the plan as data (JSON, a saved plan).
    const json = JSON.parse(JSON.stringify(makePlan(spec, observed(undefined), now))) as { actions: { inputsHash: string }[] };
    expect(json.actions[0]!.inputsHash).toMatch(/^[0-9a-f]{16}$/);
    expect(later.observedRunId).toBe('run1');
  });

  it('names hooks as steps of their phase, and installs where a host lacks rsync and the policy allows it', () => {
    const spec = specOf('{ autoInstallPackages: true }');
    const replica = spec.replicas[0]!;
    const hooked: Spec = {
      ...spec,
      replicas: [{ ...replica, hooks: { ...replica.hooks, preSnapshot: [{ command: ['sync'], on: 'origin', timeoutMs: 1000, sudo: false, continueOnError: false }], postSync: [{ script: '/etc/rmm/adapt.sh', on: 'target', timeoutMs: 1000, sudo: true, continueOnError: false }] } }],
    };
    const action = makePlan(hooked, observed(undefined, { facts }, { rsync: false, flock: true }), now).actions[0]!;
    expect(action.kind).toBe('sync');
    expect(action.sync!.installs).toEqual([{ on: 'target', host: '192.0.2.20', package: 'rsync' }]);
    const ids = action.sync!.steps.map((s) => s.id);
    expect(ids.slice(0, 5)).toEqual(['lock', 'check', 'install rsync on target', 'record-start', 'clean']);
    expect(ids.indexOf('hooks preSnapshot')).toBe(ids.indexOf('snapshot /') - 1);
    expect(ids.indexOf('hooks postSync')).toBe(ids.indexOf('promote') + 1);
    expect(action.sync!.steps.find((s) => s.id === 'hooks postSync')!.detail).toBe('/etc/rmm/adapt.sh on target');
  });

  it('prunes point folders the record no longer holds (a prune that failed after the record let go of them)', () => {
    const spec = specOf('{ retention: { recoveryPoints: 3 } }');
    const seen = observed(record(spec, '2026-11-24T09:00:00Z'));
    const target = seen.replicas.get('web-dr')!.target as { record: ReplicaRecord; tools: Record<string, boolean> };
    const withLeftover: Observed = { at: '', replicas: new Map([['web-dr', { ...seen.replicas.get('web-dr')!, target: { ...target, leftoverPoints: ['20261120T000000Z'] } }]]) };
    const action = makePlan(spec, withLeftover, now, { syncNow: 'all' }).actions[0]!;
    expect(action.sync!.prune.ifCopied).toEqual(['20261120T000000Z']);
    expect(action.sync!.steps.find((s) => s.id === 'prune')!.detail).toContain('20261120T000000Z');
  });

  it('says a copy starts as a btrfs snapshot of the last point when that point is a subvolume on the target', () => {
    const spec = specOf('{}');
    const seen = observed(record(spec, '2026-11-24T09:00:00Z'));
    const target = seen.replicas.get('web-dr')!.target as { record: ReplicaRecord; tools: Record<string, boolean> };
    const last = target.record.points.at(-1)!.id;
    const copy = (snapshotPoints: string[]) => {
      const o: Observed = { at: '', replicas: new Map([['web-dr', { ...seen.replicas.get('web-dr')!, target: { ...target, snapshotPoints } }]]) };
      return makePlan(spec, o, now, { syncNow: 'all' }).actions[0]!.sync!.steps.find((s) => s.id === 'copy /')!.detail;
    };
    expect(copy([last])).toContain(`by rsync, into a btrfs snapshot of recovery point ${last}`);
    expect(copy([])).toContain(`by rsync, unchanged files hard-linked to recovery point ${last}`);
  });

  it('blocks when the target has no rsync and the policy may not install it', () => {
    const action = makePlan(specOf('{}'), observed(undefined, { facts }, { rsync: false, flock: true }), now).actions[0]!;
    expect(action.kind).toBe('blocked');
    expect(action.reasons[0]).toBe('target t has no rsync (install it, or set policy autoInstallPackages: true)');
  });

  it('blocks on every other tool a host lacks for this sync, naming what needs it and the package', () => {
    const noTar = makePlan(specOf('{}'), observed(undefined, { facts: originFacts([filesystem('/', 'btrfs')], { tar: false, 'ssh-keygen': false }) }), now).actions[0]!;
    expect(noTar.kind).toBe('blocked');
    expect(noTar.reasons[0]).toBe("origin web has no ssh-keygen (the copy's one-run key), tar (first copies by tar streams); install the packages openssh-client (RHEL: openssh-clients), tar there");
    const target = makePlan(specOf('{}'), observed(undefined, { facts }, { rsync: true, flock: false, tar: false, timeout: true }), now).actions[0]!;
    expect(target.reasons[0]).toBe("target t has no flock (the replica's lock), tar (first copies by tar streams); install the packages util-linux, tar there");
  });

  it('needs no tar once the copy is a delta by rsync', () => {
    const facts = originFacts([filesystem('/', 'btrfs')], { tar: false });
    const first = makePlan(specOf('{}'), observed(undefined, { facts }), now).actions[0]!;
    expect(first.kind).toBe('blocked');
    const spec = specOf('{}');
    const delta = makePlan(spec, observed(record(spec, '2026-11-24T09:00:00Z'), { facts }), now, { syncNow: 'all' }).actions[0]!;
    expect(delta.kind).toBe('sync');
  });
});

describe('fixups on a directory replica that asks for them', () => {
  const interfaces = '# lab\nauto eth0\niface eth0 inet static\n    address 10.0.2.15/24\n    gateway 10.0.2.1\n';
  const spec = specOf('{}', ', fixups: { enabled: true }', ', ipRemap: { networks: [{ from: 10.0.2.0/24, to: 10.9.2.0/24 }] }');
  const seen = (record?: ReplicaRecord): Observed => ({
    at: '',
    replicas: new Map([['web-dr', { replica: 'web-dr', origin: { facts, configFiles: { files: [{ path: '/etc/network/interfaces', text: interfaces }], refused: [{ path: '/etc/hosts', why: 'a symbolic link (not followed)' }] } }, target: { record, tools: { rsync: true, flock: true } } }]]),
  });

  it('shows each file the copy gets rewritten, with its diff, as a step before the copy becomes current', () => {
    const action = makePlan(spec, seen(), now).actions[0]!;
    const fixups = action.sync!.fixups!;
    expect(fixups.files.map((f) => [f.path, f.text])).toEqual([['/etc/network/interfaces', interfaces.replace('10.0.2.15', '10.9.2.15').replace('10.0.2.1\n', '10.9.2.1\n')]]);
    expect(fixups.files[0]!.diff).toContain('-    address 10.0.2.15/24\n-    gateway 10.0.2.1\n+    address 10.9.2.15/24\n+    gateway 10.9.2.1\n');
    expect(fixups.left).toEqual([{ path: '/etc/hosts', why: 'a symbolic link (not followed)' }]);
    expect(action.reasons).toContain('fixups leave 1 file(s) as they are: /etc/hosts (a symbolic link (not followed))');
    const ids = action.sync!.steps.map((s) => s.id);
    expect(ids.indexOf('fixup')).toBe(ids.indexOf('promote') - 1);
    expect(action.sync!.steps.find((s) => s.id === 'fixup')).toMatchObject({ when: 'changed', detail: 'adapt the copy to the target site (fixups): /etc/network/interfaces' });
  });

  it('verifies an unchanged origin only when the last point has the same fixups', () => {
    const fixups = makePlan(spec, seen(), now).actions[0]!.sync!.fixups!;
    const base = record(spec, '2026-11-24T09:00:00Z');
    const withManifests = (hash: string | undefined) => ({ ...base, points: [{ ...base.points[0]!, manifests: { '/': 'abc' }, ...(hash ? { fixups: { hash, files: [] } } : {}) }] });
    expect(makePlan(spec, seen(withManifests(fixups.hash)), now, { syncNow: 'all' }).actions[0]!.sync!.mayVerify).toBe(true);
    expect(makePlan(spec, seen(withManifests('0000000000000000')), now, { syncNow: 'all' }).actions[0]!.sync!.mayVerify).toBe(false);
    expect(makePlan(spec, seen(withManifests(undefined)), now, { syncNow: 'all' }).actions[0]!.sync!.mayVerify).toBe(false);
  });

  it('blocks when the origin\'s files were not read', () => {
    const unread: Observed = { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin: { facts }, target: { record: undefined, tools: { rsync: true, flock: true } } }]]) };
    expect(makePlan(spec, unread, now).actions[0]!.reasons[0]).toBe('origin web: its configuration files were not read, so the fixups cannot be planned');
  });
});

describe('a copy promoted by a run killed before its record', () => {
  it('is put back as the copy in progress before anything else changes, and current back on the last point', () => {
    const spec = specOf('{}');
    const kept = record(spec, '2026-11-24T09:00:00Z');
    const pending = { id: '20261124T110000Z', specHash: kept.specHash, startedAt: '2026-11-24T11:00:00.000Z', snapshots: {}, pointInTime: true };
    const seen: Observed = { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin: { facts }, target: { record: { ...kept, state: 'in-progress', pending }, tools: { rsync: true, flock: true }, current: 'points/20261124T110000Z' } }]]) };
    const action = makePlan(spec, seen, now, { syncNow: 'all' }).actions[0]!;
    expect(action.kind).toBe('sync');
    expect(action.reasons).toContain('the last run was stopped after it promoted its copy to points/20261124T110000Z and before it recorded it: that copy becomes the copy in progress again');
    expect(action.sync!.restore).toEqual({ point: '20261124T110000Z', current: 'p1' });
    expect(action.sync!.steps.map((s) => s.id).slice(0, 4)).toEqual(['lock', 'check', 'restore', 'record-start']);
    expect(action.sync!.steps.find((s) => s.id === 'restore')!.detail).toContain('current back on points/p1');
    // Killed inside promote: the copy became the folder, current did not move yet.
    const inside: Observed = { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin: { facts }, target: { record: { ...kept, state: 'in-progress', pending }, tools: { rsync: true, flock: true }, current: 'points/p1', partial: false, pointFolders: ['p1', '20261124T110000Z'] } }]]) };
    expect(makePlan(spec, inside, now, { syncNow: 'all' }).actions[0]!.sync!.restore).toEqual({ point: '20261124T110000Z', current: 'p1' });
    // Without one: nothing to put back.
    const plain: Observed = { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin: { facts }, target: { record: { ...kept, state: 'failed', pending }, tools: { rsync: true, flock: true }, current: 'points/p1' } }]]) };
    expect(makePlan(spec, plain, now, { syncNow: 'all' }).actions[0]!.sync!.restore).toBeUndefined();
  });
});

describe('a saved plan is refused when any input of the apply changed, each named', () => {
  const base = specOf('{ schedule: { interval: 1h } }');
  const saved = makePlan(base, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'aaa']]) });

  const changed = (edit: (r: Spec['replicas'][number]) => Spec['replicas'][number], seen = observed(undefined), scripts = new Map([['/etc/rmm/q.sh', 'aaa']])) =>
    stalenessOf(saved, makePlan({ ...base, replicas: [edit(base.replicas[0]!)] }, seen, now, { scripts }));

  it('is accepted when nothing changed', () => {
    expect(stalenessOf(saved, makePlan(base, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'aaa']]) }))).toEqual([]);
  });

  it('names each changed input', () => {
    expect(changed((r) => ({ ...r, policy: { ...r.policy, snapshot: { ...r.policy.snapshot, provider: 'fsfreeze' } } }))).toContain('replica web-dr: policy.snapshot.provider: "auto" -> "fsfreeze"');
    expect(changed((r) => ({ ...r, policy: { ...r.policy, bandwidthBytesPerSecond: 1 << 20 } }))).toContain('replica web-dr: policy.bandwidthBytesPerSecond: (none) -> 1048576');
    expect(changed((r) => ({ ...r, policy: { ...r.policy, parallelStreams: 8 } }))).toContain(`replica web-dr: policy.parallelStreams: ${base.replicas[0]!.policy.parallelStreams} -> 8`);
    expect(changed((r) => ({ ...r, exclude: { ...r.exclude, paths: ['/var/cache/*'] } }))).toContain('replica web-dr: exclude.paths: [] -> ["/var/cache/*"]');
    const hook = { command: ['sync'], on: 'origin' as const, timeoutMs: 600_000, sudo: false, continueOnError: false };
    expect(changed((r) => ({ ...r, hooks: { ...r.hooks, preSnapshot: [hook] } }))).toContain(
      'replica web-dr: hooks.preSnapshot.0.command: (none) -> ["sync"]',
    );
  });

  it('names an origin mount added, and a hook script edited since', () => {
    const more = originFacts([filesystem('/', 'btrfs'), filesystem('/scratch', 'ext4'), filesystem('/srv/new', 'xfs')]);
    expect(changed((r) => r, observed(undefined, { facts: more }))).toContain('replica web-dr: origin.observed.filesystems./srv/new.fsType: (none) -> "xfs"');
    const script = { script: '/etc/rmm/q.sh', on: 'origin' as const, timeoutMs: 600_000, sudo: false, continueOnError: false };
    const withScript = { ...base, replicas: [{ ...base.replicas[0]!, hooks: { ...base.replicas[0]!.hooks, preSync: [script] } }] };
    const before = makePlan(withScript, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'aaa']]) });
    const after = makePlan(withScript, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'bbb']]) });
    expect(stalenessOf(before, after)).toEqual(['replica web-dr: hooks.preSync.0.scriptSha256: "aaa" -> "bbb"']);
  });

  it('refuses a saved plan whose actions were edited, and one for a replica suspended since', () => {
    const action = saved.actions[0]!;
    const unit = action.sync!.units[0]!;
    const edited = { ...saved, actions: [{ ...action, sync: { ...action.sync!, units: [{ ...unit, relativePath: '../../../../etc' }] } }] };
    expect(stalenessOf(edited, makePlan(base, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'aaa']]) }))).toEqual([
      'replica web-dr: sync.units.0.relativePath: "../../../../etc" -> ""',
    ]);
    const hashOnly = { ...saved, actions: [{ ...action, inputsHash: '0000000000000000' }] };
    expect(stalenessOf(hashOnly, makePlan(base, observed(undefined), now, { scripts: new Map([['/etc/rmm/q.sh', 'aaa']]) }))).toEqual([
      'replica web-dr: the saved inputs hash does not match its inputs (the file was edited)',
    ]);
    const suspended = changed((r) => ({ ...r, suspend: true }));
    expect(suspended).toContain('replica web-dr: suspend: false -> true');
    expect(suspended).toContain('replica web-dr: the saved plan says sync, rmm plans none now: suspended (spec.suspend: true)');
  });

  it('names a target that moved since the plan', () => {
    const moved = stalenessOf(saved, makePlan(base, observed(record(base, '2026-11-24T11:59:00Z')), now));
    expect(moved).toContain('replica web-dr: the target changed since the plan (last run none -> run1)');
  });
});

describe('a target that is not what its record says', () => {
  const spec = specOf('{}');
  const seenWith = (target: Record<string, unknown>, rec: ReplicaRecord) => {
    const seen = observed(rec);
    const base = seen.replicas.get('web-dr')!;
    return { at: '', replicas: new Map([['web-dr', { ...base, target: { ...(base.target as object), ...target } as never }]]) } as Observed;
  };

  it("blocks on another replica's record, and on a copy of another server", () => {
    const other = { ...record(spec, '2026-11-24T11:00:00Z'), replica: 'someone-else' };
    expect(makePlan(spec, observed(other), now).actions[0]!).toMatchObject({ kind: 'blocked', reasons: [expect.stringContaining('belongs to replica "someone-else", not web-dr')] });
    const stranger = { ...record(spec, '2026-11-24T11:00:00Z'), origin: { name: 'web', hostname: 'x', machineId: 'ffffffffffffffffffffffffffffffff' } };
    expect(makePlan(spec, observed(stranger), now).actions[0]!.reasons[0]).toMatch(/^the target holds a copy of another server \(machine-id ffff/);
  });

  it('copies again, never verifies, when current does not point at the last recovery point', () => {
    const rec = { ...record(spec, '2026-11-24T11:00:00Z'), origin: { name: 'web', hostname: 'web-01', machineId: facts.machineId } };
    const planned = makePlan(spec, seenWith({ current: '/etc' }, rec), now).actions[0]!;
    expect(planned.kind).toBe('sync');
    expect(planned.reasons).toContain('current points to "/etc", not to the last recovery point points/p1: copied again, not verified');
    expect(planned.sync!.mayVerify).toBe(false);
    expect(makePlan(spec, seenWith({ current: '' }, rec), now).actions[0]!.reasons).toContain('current is missing, not to the last recovery point points/p1: copied again, not verified');
    expect(makePlan(spec, seenWith({ current: 'points/p1' }, rec), now).actions[0]!.kind).toBe('none');
  });
});

describe('room on the target', () => {
  it('refuses a first copy the target cannot hold, with the figures, and only warns where exclude.paths make them an estimate', () => {
    const spec = specOf('{}');
    const seen = observed(undefined, { facts: originFacts([filesystem('/', 'xfs'), filesystem('/scratch', 'ext4')]) });
    const small: Observed = { at: '', replicas: new Map([['web-dr', { ...seen.replicas.get('web-dr')!, target: { record: undefined, tools: { rsync: true }, freeBytes: 10 * 1024 ** 3 } }]]) };
    const refused = makePlan(spec, small, now).actions[0]!;
    expect(refused.kind).toBe('blocked');
    expect(refused.reasons[0]).toBe('the target is too small: the first copy needs about 50.00 GiB (used on the origin\'s copied filesystems), t has 10.00 GiB free for /srv/replicas/web-dr; free space there or choose another path');
    const excluding: Spec = { ...spec, replicas: [{ ...spec.replicas[0]!, exclude: { ...spec.replicas[0]!.exclude, paths: ['/var/cache/*'] } }] };
    const warned = makePlan(excluding, small, now).actions[0]!;
    expect(warned.kind).toBe('sync');
    expect(warned.reasons).toContain("may not fit: the first copy needs about 50.00 GiB (used on the origin's copied filesystems), t has 10.00 GiB free for /srv/replicas/web-dr, less what exclude.paths leaves out");
    const roomy: Observed = { at: '', replicas: new Map([['web-dr', { ...seen.replicas.get('web-dr')!, target: { record: undefined, tools: { rsync: true }, freeBytes: 60 * 1024 ** 3 } }]]) };
    expect(makePlan(spec, roomy, now).actions[0]!.kind).toBe('sync');
    // btrfs reports its whole filesystem's use for every subvolume: only a warning.
    const btrfs = observed(undefined);
    const smallBtrfs: Observed = { at: '', replicas: new Map([['web-dr', { ...btrfs.replicas.get('web-dr')!, target: { record: undefined, tools: { rsync: true }, freeBytes: 10 * 1024 ** 3 } }]]) };
    expect(makePlan(spec, smallBtrfs, now).actions[0]!.reasons).toContain(
      "may not fit: the first copy needs about 50.00 GiB (used on the origin's copied filesystems), t has 10.00 GiB free for /srv/replicas/web-dr, where btrfs counts its whole filesystem",
    );
  });
});
