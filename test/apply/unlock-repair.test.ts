/**
 * rmm unlock and rmm repair on real lab hosts: a lock whose holder still hears its rmm is refused,
 * a stuck holder's lock is broken only after confirmation; a damaged record is rebuilt from the
 * recovery points on the target, after confirmation, and the next apply converges. Needs root.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockReplica } from '../../src/apply/lock.js';
import { ephemeralMarker } from '../../src/sync/channel.js';
import { endpointSession } from '../../src/apply/sessions.js';
import { loadSpec } from '../../src/config/load.js';
import { parseRecord, type ReplicaRecord } from '../../src/record/record.js';
import { createSessionPool } from '../../src/transport/index.js';
import { rmm } from '../support/cli.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { lockIsFree, MOSTLY_DATA } from '../support/replica-lab.js';
import { expectError, expectOutput } from '../support/json-contract.js';
import { describeTree, diffTrees } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;
const REPLICA = 'mend';

describe.skipIf(!isRoot)('rmm unlock and rmm repair (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let replicaDir: string;
  let spec: string;
  let change = 0;
  const changeOrigin = () => writeFileSync(path.join(originRoot, 'srv/data/mend/changing.txt'), `change ${++change}\n`);
  const recordFile = () => path.join(replicaDir, '.rmm/record.json');
  const lockFree = () => lockIsFree(replicaDir);

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    replicaDir = path.join(lab.hosts.target.root, 'srv/replicas', REPLICA);
    mkdirSync(path.join(originRoot, 'srv/data/mend'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(path.join(originRoot, 'srv/data/mend', `f${i}`), `file ${i}\n`);
    changeOrigin();
    spec = writeLabSpec(lab, { replica: REPLICA, exclude: MOSTLY_DATA, policy: { retention: { recoveryPoints: 2 } }, connection: { heartbeatTimeout: '10s' } });
    for (let i = 0; i < 2; i++) {
      changeOrigin();
      const run = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(run.code, run.out + run.err).toBe(0);
      // Point ids are the second a sync started: keep them apart.
      await new Promise((r) => setTimeout(r, 1100));
    }
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('says a free lock is free', async () => {
    const { code, out } = await rmm('unlock', REPLICA, '-f', spec);
    expect(code, out).toBe(0);
    expect(out).toMatch(new RegExp(`^replica '${REPLICA}' is not locked on ${lab.hosts.target.address} \\(last held by rmm run .*\\)$`, 'm'));
  });

  it("refuses to break a lock whose holder hears its rmm, and breaks a stuck holder's lock only when confirmed", async () => {
    const { spec: loaded } = await loadSpec([spec]);
    const replica = loaded.replicas[0]!;
    const pool = createSessionPool();
    let pid = 0;
    try {
      const target = await endpointSession(pool, replica.target.endpoint, false);
      const lock = await lockReplica(target, path.posix.join('/srv/replicas', REPLICA, '.rmm/lock'), REPLICA, 'the test, holding on', replica.target.endpoint.heartbeatTimeoutMs);
      expect(lockFree()).toBe(false);

      const alive = await rmm('unlock', REPLICA, '-f', spec, '--yes');
      expect(alive.code).toBe(1);
      expect(alive.err).toMatch(/is locked on .* by the test, holding on, which heard its rmm \d+ s ago \(heartbeat timeout 10 s\): that run is alive/);
      expect(lockFree()).toBe(false);

      // What a run stuck mid-copy holds besides the lock: its one-run key and the key's gate.
      const keys = path.join(lab.hosts.target.root, 'home/rmm/.ssh/authorized_keys');
      const keysBefore = readFileSync(keys, 'utf8');
      writeFileSync(keys, `${keysBefore}restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake ${ephemeralMarker(REPLICA)}stuckrun\n`);
      const gate = path.join(lab.hosts.target.root, 'run', `rmm-gate.${REPLICA}.stuckrun`);
      mkdirSync(gate, { recursive: true });
      // A holder that hangs (here: stopped) stops hearing rmm while it keeps the lock.
      pid = Number(readFileSync(path.join(replicaDir, '.rmm/lock.pid'), 'utf8').split(' ')[0]);
      process.kill(pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 17_000));
      const json = await rmm('unlock', REPLICA, '-f', spec, '-o', 'json');
      // Not a terminal, no --yes: refused, nothing changed.
      expect(json.code).toBe(2);
      expect(expectError(json.err)).toMatchObject({ code: 'cli.usage', message: expect.stringContaining('pass --yes to confirm') });
      expect(lockFree()).toBe(false);

      const broken = await rmm('unlock', REPLICA, '-f', spec, '--yes', '-o', 'json');
      expect(broken.code, broken.err).toBe(0);
      expect(expectOutput('unlock', broken.out)).toMatchObject({ replica: REPLICA, lock: 'free', broken: true, holder: 'the test, holding on', pid, process: 'T' });
      expect(lockFree()).toBe(true);
      expect(readFileSync(keys, 'utf8')).toBe(keysBefore);
      expect(existsSync(gate)).toBe(false);
      // The test's own holder was killed under it: its channel is dropped with the pool, not released.
      void lock.release().catch(() => {});
    } finally {
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // broken already
        }
      }
      await pool.closeAll();
    }
    changeOrigin();
    const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(next.code, next.out + next.err).toBe(0);
  }, 90_000);

  it('rebuilds a damaged record from the recovery points on the target, after confirmation, and the next apply converges', async () => {
    const good = JSON.parse(readFileSync(recordFile(), 'utf8')) as ReplicaRecord;
    const points = good.points.map((p) => p.id);
    expect(points.length).toBe(2);
    const victim = path.join(lab.hosts.target.root, 'srv/victim');
    mkdirSync(victim, { recursive: true });
    writeFileSync(path.join(victim, 'sentinel'), 'must stay\n');
    // Damaged twice over: a traversal id, and then not even JSON.
    const damaged = `${JSON.stringify({ ...good, points: [{ ...good.points[0]!, id: '../../../victim' }] }).slice(0, -20)}`;
    writeFileSync(recordFile(), damaged);
    try {
      const plan = await rmm('plan', '-f', spec);
      expect(plan.code).toBe(1);
      expect(plan.out).toContain('is damaged');

      const unasked = await rmm('repair', REPLICA, '-f', spec);
      expect(unasked.code).toBe(2);
      expect(unasked.out).toContain(`write a record of 2 recovery point(s): ${points.join(', ')} (newest is current)`);
      expect(readFileSync(recordFile(), 'utf8')).toBe(damaged);

      const repaired = await rmm('repair', REPLICA, '-f', spec, '--yes');
      expect(repaired.code, repaired.out + repaired.err).toBe(0);
      const rebuilt = parseRecord(readFileSync(recordFile(), 'utf8'), 'test');
      expect(rebuilt).toMatchObject({ replica: REPLICA, state: 'consistent', origin: good.origin, specHash: '' });
      expect(rebuilt.points.map((p) => p.id)).toEqual(points);
      expect(rebuilt.rebuiltAt).toBeDefined();
      const kept = readdirSync(path.join(replicaDir, '.rmm')).filter((n) => n.startsWith('record.json.damaged-'));
      expect(kept.length).toBe(1);
      expect(readFileSync(path.join(replicaDir, '.rmm', kept[0]!), 'utf8')).toBe(damaged);
      expect(lockFree()).toBe(true);

      const again = await rmm('repair', REPLICA, '-f', spec, '--yes');
      expect(again.code).toBe(0);
      expect(again.out).toContain('is not damaged; nothing to repair');

      // The rebuilt points carry no manifest: the next sync copies a delta, and retention applies.
      const plan2 = await rmm('plan', '-f', spec, '--sync-now', 'all');
      expect(plan2.code, plan2.out + plan2.err).toBe(3);
      changeOrigin();
      const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(apply.code, apply.out + apply.err).toBe(0);
      const after = parseRecord(readFileSync(recordFile(), 'utf8'), 'test');
      expect(after.points.map((p) => p.id)).toEqual([points[1], after.points[1]!.id]);
      expect(after.rebuiltAt).toBeUndefined();
      const current = readlinkSync(path.join(replicaDir, 'current'));
      expect(diffTrees(describeTree(path.join(originRoot, 'srv/data/mend'), []), describeTree(path.join(replicaDir, current, 'srv/data/mend'), []))).toEqual([]);
      expect(readFileSync(path.join(victim, 'sentinel'), 'utf8')).toBe('must stay\n');
      expect(existsSync(path.join(replicaDir, 'points', points[0]!))).toBe(false);
    } finally {
      rmSync(victim, { recursive: true, force: true });
    }
  }, 120_000);
});
