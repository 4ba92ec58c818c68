import { describe, expect, it } from 'vitest';
import { loadSources } from '../../src/config/load.js';
import type { Spec } from '../../src/config/spec.js';
import type { Observed, ObservedReplica } from '../../src/observe/observe.js';
import { hasChanges, makePlan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { filesystem, originFacts } from '../support/facts.js';

function specOf(policy: string): Spec {
  const text = `
apiVersion: rmm/v1
kind: Origin
metadata: { name: web }
spec: { address: 192.0.2.10, exclude: { mounts: [/scratch] } }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec: { hosts: [{ name: t, address: 192.0.2.20, path: /srv/replicas }] }
---
apiVersion: rmm/v1
kind: Policy
metadata: { name: p }
spec: ${policy}
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: web-dr }
spec: { origin: web, environment: dr, policy: p }
`;
  const { spec, diagnostics } = loadSources([{ name: 'plan.yaml', baseDir: '/tmp', text }]);
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec;
}

const facts = originFacts([filesystem('/', 'btrfs'), filesystem('/scratch', 'ext4')]);

function observed(record: ReplicaRecord | undefined, origin: ObservedReplica['origin'] = { facts }): Observed {
  return { at: '', replicas: new Map([['web-dr', { replica: 'web-dr', origin, target: { record } }]]) };
}

function record(spec: Spec, startedAt: string, state: ReplicaRecord['state'] = 'consistent', specHash = spec.replicas[0]!.specHash): ReplicaRecord {
  return {
    schemaVersion: 1,
    replica: 'web-dr',
    origin: { name: 'web', hostname: 'web-01', machineId: 'x' },
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
      replicas: new Map(many.replicas.map((r) => [r.name, { replica: r.name, origin: { facts }, target: { record: record(spec, '2026-11-24T11:30:00Z') } }])),
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
