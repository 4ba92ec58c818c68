import { describe, expect, it } from 'vitest';
import { loadSources } from '../../src/config/load.js';
import type { Spec } from '../../src/config/spec.js';
import { fixupsHash } from '../../src/fixup/inputs.js';
import { textDigest } from '../../src/fixup/run.js';
import type { Observed } from '../../src/observe/observe.js';
import type { PointFileChange } from '../../src/plan/action.js';
import { makePlan } from '../../src/plan/plan.js';
import { fixupEntry, parseFixupEntry, type ReplicaRecord } from '../../src/record/record.js';
import type { PointConfig } from '../../src/target/driver.js';
import { filesystem, originFacts } from '../support/facts.js';

/** A replica whose fixups are on; `remap` and `nics` are the parts of the spec that change between runs. */
function specWith(remap: string, nics = '[]'): Spec {
  const text = `
apiVersion: rmm/v1
kind: Origin
metadata: { name: web }
spec: { address: 192.0.2.10 }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec: { hosts: [{ name: t, address: 192.0.2.20, path: /srv/replicas }], ipRemap: { networks: ${remap} } }
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: web-dr }
spec: { origin: web, environment: dr, fixups: { enabled: true, nics: ${nics} } }
`;
  const { spec, diagnostics } = loadSources([{ name: 'refixup.yaml', baseDir: '/tmp', text }]);
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec;
}

const IFCFG = '/etc/sysconfig/network-scripts/ifcfg-eth0';
const ORIGIN: Record<string, string> = {
  '/etc/network/interfaces': 'auto eth0\niface eth0 inet static\n    address 10.0.2.15/24\n    gateway 10.0.2.1\n',
  '/etc/hosts': '127.0.0.1 localhost\n10.0.2.15 web-01\n172.16.5.9 db\n',
  [IFCFG]: 'DEVICE=eth0\nBOOTPROTO=none\nIPADDR=10.0.2.15\nPREFIX=24\n',
  '/etc/systemd/network/20-eth1.network': '[Match]\nName=eth1\n\n[Network]\nAddress=172.16.5.9/24\n',
};
const facts = originFacts([filesystem('/', 'ext4')]);
const now = new Date('2026-11-24T12:00:00Z');

/** A recovery point as the target holds it: its files, and the originals its fixups kept. */
interface Point {
  files: Map<string, string>;
  originals: Map<string, string>;
  fixups: NonNullable<ReplicaRecord['points'][number]['fixups']>;
}

function recordOf(spec: Spec, point: Point): ReplicaRecord {
  const specHash = spec.replicas[0]!.specHash;
  const at = '2026-11-24T09:00:00.000Z';
  return {
    schemaVersion: 1,
    replica: 'web-dr',
    origin: { name: 'web', hostname: 'web-01', machineId: facts.machineId },
    specHash,
    state: 'consistent',
    runId: 'run1',
    updatedAt: at,
    points: [{ id: '20261124T090000Z', specHash, startedAt: at, finishedAt: at, snapshots: { '/': 'fsfreeze' }, pointInTime: true, manifests: { '/': 'abc' }, fixups: point.fixups }],
  };
}

function observedOf(spec: Spec, point: Point, origin: 'up' | 'down' = 'down'): Observed {
  const tree = (m: Map<string, string>) => ({ files: [...m].map(([path, text]) => ({ path, text })), refused: [] });
  const pointConfig: PointConfig = { point: '20261124T090000Z', files: tree(point.files), originals: tree(point.originals) };
  return {
    at: '',
    replicas: new Map([
      ['web-dr', { replica: 'web-dr', origin: origin === 'up' ? { facts, configFiles: tree(new Map(Object.entries(ORIGIN))) } : { error: 'connect ECONNREFUSED', code: 'ssh.connect_failed' }, target: { record: recordOf(spec, point), tools: { rsync: true }, current: 'points/20261124T090000Z', pointConfig } }],
    ]),
  };
}

/** What the target does with a re-run's changes (src/target/directory/driver.ts REWRITE), on a map. */
function rewrite(point: Point, changes: readonly PointFileChange[]): void {
  for (const c of changes) {
    const have = point.files.get(c.path);
    expect(have === undefined ? 'absent' : textDigest(have)).toBe(c.before);
    if (c.keepOriginal && !point.originals.has(c.path)) point.originals.set(c.path, have!);
    if (c.text === undefined) point.files.delete(c.path);
    else point.files.set(c.path, c.text);
  }
}

/** The point a first sync with `spec` makes: the origin's files through its fixups, originals kept. */
function firstSync(spec: Spec): Point {
  const action = makePlan(spec, observedOf(spec, { files: new Map(), originals: new Map(), fixups: { hash: '0000000000000000', files: [] } }, 'up'), now, { syncNow: 'all' }).actions[0]!;
  const planned = action.sync!.fixups!;
  const point: Point = { files: new Map(Object.entries(ORIGIN)), originals: new Map(), fixups: { hash: planned.hash, files: [] } };
  for (const f of planned.files) {
    point.originals.set(f.path, point.files.get(f.path)!);
    const text = f.text ?? point.files.get(f.path)!;
    point.files.delete(f.path);
    point.files.set(f.renamedTo ?? f.path, text);
  }
  point.fixups = { hash: planned.hash, files: planned.files.map((f) => fixupEntry(f.path, f.renamedTo)) };
  return point;
}

/** Plans on `point` with `spec` and carries the re-run out (steps record-start, fixup, record). */
function refixup(spec: Spec, point: Point, stopAfter?: number): ReturnType<typeof makePlan>['actions'][number] {
  const action = makePlan(spec, observedOf(spec, point), now).actions[0]!;
  if (action.kind !== 'fixup') return action;
  const plan = action.fixup!;
  point.fixups = { ...point.fixups, rewriting: { hash: plan.hash, files: plan.files } };
  rewrite(point, stopAfter === undefined ? plan.changes : plan.changes.slice(0, stopAfter));
  if (stopAfter === undefined) point.fixups = { hash: plan.hash, files: plan.files };
  return action;
}

const TO_9 = '[{ from: 10.0.2.0/24, to: 10.9.2.0/24 }]';
const TO_7 = '[{ from: 10.0.2.0/24, to: 10.7.0.0/24 }]';

describe('a spec whose only change is the IP remap', () => {
  it('plans a fixup re-run on the current point, with each diff against what the point holds, and no copy', () => {
    const point = firstSync(specWith(TO_9));
    expect(point.files.get('/etc/network/interfaces')).toContain('10.9.2.15');
    const spec = specWith(TO_7);
    expect(spec.replicas[0]!.specHash).toBe(specWith(TO_9).replicas[0]!.specHash);
    // The origin is down (a DR event): the re-run needs only the target.
    const action = makePlan(spec, observedOf(spec, point), now).actions[0]!;
    expect(action.kind).toBe('fixup');
    expect(action.sync).toBeUndefined();
    expect(action.reasons[0]).toBe('the fixup settings (ipRemap, fixups) changed since recovery point 20261124T090000Z was adapted: re-run on it, nothing is copied');
    const plan = action.fixup!;
    expect(plan.hash).toBe(fixupsHash(spec.replicas[0]!));
    expect(plan.changes.map((c) => c.path)).toEqual(['/etc/hosts', '/etc/network/interfaces', IFCFG]);
    const interfaces = plan.changes.find((c) => c.path === '/etc/network/interfaces')!;
    expect(interfaces.diff).toContain('-    address 10.9.2.15/24\n-    gateway 10.9.2.1\n+    address 10.7.0.15/24\n+    gateway 10.7.0.1\n');
    expect(interfaces).toMatchObject({ before: textDigest(point.files.get('/etc/network/interfaces')!), keepOriginal: false });
    expect(plan.steps.map((s) => s.id)).toEqual(['lock', 'check', 'record-start', 'fixup', 'record', 'unlock']);
  });

  it('gives exactly what a first copy with the new remap would get, and then nothing to do', () => {
    const point = firstSync(specWith(TO_9));
    const spec = specWith(TO_7);
    refixup(spec, point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(spec).files));
    expect(makePlan(spec, observedOf(spec, point), now).actions[0]!.kind).toBe('none');
    // And back: the originals, not the adapted texts, are what the fixups start from.
    refixup(specWith(TO_9), point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(specWith(TO_9)).files));
  });

  it('keeps the original of a file it changes for the first time, before changing it', () => {
    const point = firstSync(specWith('[{ from: 172.16.5.0/24, to: 172.17.5.0/24 }]'));
    expect([...point.originals.keys()]).toEqual(['/etc/systemd/network/20-eth1.network']);
    const spec = specWith(`[{ from: 172.16.5.0/24, to: 172.17.5.0/24 }, { from: 10.0.2.0/24, to: 10.7.0.0/24 }]`);
    const plan = makePlan(spec, observedOf(spec, point), now).actions[0]!.fixup!;
    expect(plan.changes.map((c) => [c.path, c.keepOriginal])).toEqual([
      ['/etc/hosts', true],
      ['/etc/network/interfaces', true],
      [IFCFG, true],
    ]);
  });

  it('converges after a re-run stopped halfway: the next plan finishes it from the originals', () => {
    const point = firstSync(specWith(TO_9));
    const spec = specWith(TO_7);
    refixup(spec, point, 1);
    expect(point.fixups.rewriting?.hash).toBe(fixupsHash(spec.replicas[0]!));
    const again = makePlan(spec, observedOf(spec, point), now).actions[0]!;
    expect(again.kind).toBe('fixup');
    expect(again.reasons[0]).toBe('a re-run of the fixups on recovery point 20261124T090000Z did not finish: re-run on it, nothing is copied');
    expect(again.fixup!.changes).toHaveLength(2);
    refixup(spec, point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(spec).files));
    // Stopped halfway on the way back, then the spec changed again: still from the originals.
    refixup(specWith(TO_9), point, 2);
    refixup(specWith('[{ from: 10.0.2.0/24, to: 10.5.0.0/24 }]'), point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(specWith('[{ from: 10.0.2.0/24, to: 10.5.0.0/24 }]')).files));
  });

  it('moves a renamed file to its new name, and back, taking its owner and mode from its original', () => {
    const eth0ToEns3 = specWith(TO_9, '[{ from: eth0, to: ens3 }]');
    const point = firstSync(eth0ToEns3);
    expect(point.files.has('/etc/sysconfig/network-scripts/ifcfg-ens3')).toBe(true);
    expect(point.fixups.files).toContain(`${IFCFG} -> /etc/sysconfig/network-scripts/ifcfg-ens3`);
    const toEns4 = specWith(TO_9, '[{ from: eth0, to: ens4 }]');
    const plan = makePlan(toEns4, observedOf(toEns4, point), now).actions[0]!.fixup!;
    expect(plan.changes.filter((c) => c.path.includes('ifcfg')).map((c) => ({ path: c.path, before: c.before, removed: c.text === undefined, modeFrom: c.modeFrom }))).toEqual([
      { path: '/etc/sysconfig/network-scripts/ifcfg-ens4', before: 'absent', removed: false, modeFrom: IFCFG },
      { path: '/etc/sysconfig/network-scripts/ifcfg-ens3', before: textDigest(point.files.get('/etc/sysconfig/network-scripts/ifcfg-ens3')!), removed: true, modeFrom: undefined },
    ]);
    expect(plan.changes.find((c) => c.path.endsWith('ifcfg-ens4'))!.diff).toMatch(/^--- \/dev\/null\n\+\+\+ b\/etc\/sysconfig\/network-scripts\/ifcfg-ens4\n/);
    refixup(toEns4, point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(toEns4).files));
    // Stopped after the new file was written and before the old one was removed: the stray copy goes.
    const back = specWith(TO_9);
    refixup(back, point, 1);
    refixup(back, point);
    expect(Object.fromEntries(point.files)).toEqual(Object.fromEntries(firstSync(back).files));
  });

  it('copies again when the point kept no originals (made before rmm kept them)', () => {
    const point = firstSync(specWith(TO_9));
    point.originals.clear();
    const spec = specWith(TO_7);
    const unreachable = makePlan(spec, observedOf(spec, point), now).actions[0]!;
    expect(unreachable.kind).toBe('blocked');
    const action = makePlan(spec, observedOf(spec, point, 'up'), now).actions[0]!;
    expect(action.kind).toBe('sync');
    expect(action.reasons).toContain(
      'the fixup settings (ipRemap, fixups) changed since recovery point 20261124T090000Z was adapted, and recovery point 20261124T090000Z keeps no original of /etc/hosts (made by an rmm that kept none, or removed): copied again',
    );
    expect(action.sync!.mayVerify).toBe(false);
  });

  it('reads a record entry with " -> " in a file name as a path, not a rename out of its folder', () => {
    expect(parseFixupEntry('/etc/a -> /etc/b')).toEqual({ path: '/etc/a', renamedTo: '/etc/b' });
    expect(parseFixupEntry('/etc/NetworkManager/system-connections/x -> /y.nmconnection')).toEqual({ path: '/etc/NetworkManager/system-connections/x -> /y.nmconnection' });
  });
});
