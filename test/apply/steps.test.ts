/**
 * The plan drives the apply, on real lab hosts: apply runs exactly the plan's steps, refuses a
 * target that moved after the plan, refuses a saved plan whose inputs changed, and survives a
 * failure injected at each step (through a RemoteHost wrapper, not timers). Needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileReplica } from '../../src/apply/reconcile.js';
import type { ApplyEvent } from '../../src/apply/events.js';
import { loadSpec } from '../../src/config/load.js';
import { labDown, labExec, labUp, type Lab } from '../support/lab/lab.js';
import type { Plan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { createSessionPool } from '../../src/transport/index.js';
import { rmm } from '../support/cli.js';
import { FaultInjector, type Fault } from '../support/faulty-host.js';
import { writeLabSpec, type LabSpecOptions } from '../support/lab-spec.js';
import { applyInProcess, expectNothingLeft as expectNothingLeftOn, lockIsFree, MOSTLY_DATA } from '../support/replica-lab.js';
import { describeTree, diffTrees } from '../support/tree.js';
import { expectStatus } from '../support/json-contract.js';
import { waitFor } from '../support/wait.js';

const isRoot = process.getuid?.() === 0;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');
const REPLICA = 'steps';
// Most of the Debian root stays home: these tests are about the steps, not the volume.
const EXCLUDE = MOSTLY_DATA;

describe.skipIf(!isRoot)('the plan drives the apply (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let replicaDir: string;
  let spec: string;
  const specWith = (opts: LabSpecOptions = {}) =>
    writeLabSpec(lab, {
      replica: REPLICA,
      exclude: EXCLUDE,
      policy: { retention: { recoveryPoints: 2 } },
      hooks: { preSync: [{ command: ['true'], on: 'origin' }], postSync: [{ command: ['true'], on: 'target' }] },
      ...opts,
    });
  const recordText = () => readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8');
  const record = () => JSON.parse(recordText()) as ReplicaRecord;
  const current = () => readlinkSync(path.join(replicaDir, 'current'));
  let change = 0;
  const changeOrigin = () => writeFileSync(path.join(originRoot, 'srv/data/steps/changing.txt'), `change ${++change}\n`);

  /** Observe, plan and apply in this process, with a fault injected at a named step. */
  async function applyWith(file: string, fault?: Fault, edit?: (plan: Plan) => Promise<void>) {
    const injector = new FaultInjector(fault);
    const run = await applyInProcess(file, { onStep: (step) => (injector.step = step), wrapHost: injector.wrap, ...(edit ? { edit } : {}) });
    return { ...run, injector };
  }

  const stepsRun = (events: ApplyEvent[]) =>
    events.flatMap((e) => (e.type === 'step' && (e.status === 'done' || e.status === 'skipped') ? [`${e.step}:${e.status}`] : []));

  const lockFree = () => lockIsFree(replicaDir);
  const expectNothingLeft = () => expectNothingLeftOn({ originRoot, targetRoot: lab.hosts.target.root, replicaDir, replica: REPLICA, probe: path.join(originRoot, 'srv/data/steps') });

  function expectCopyOfOrigin(): void {
    const copy = path.join(replicaDir, current(), 'srv/data');
    expect(diffTrees(describeTree(path.join(originRoot, 'srv/data'), []), describeTree(copy, []))).toEqual([]);
  }

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    replicaDir = path.join(lab.hosts.target.root, 'srv/replicas', REPLICA);
    mkdirSync(path.join(originRoot, 'srv/data/steps'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(path.join(originRoot, 'srv/data/steps', `f${i}`), `file ${i}\n`);
    changeOrigin();
    spec = specWith();
    const first = await rmm('apply', '-f', spec, '--yes');
    expect(first.code, first.out + first.err).toBe(0);
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it("runs exactly the plan's steps, in order, and skips the copy steps when the origin is unchanged", async () => {
    changeOrigin();
    const copied = await applyWith(spec);
    expect(copied.result.failed).toEqual([]);
    const planned = copied.plan.actions[0]!.sync!.steps;
    expect(stepsRun(copied.events)).toEqual(planned.map((s) => `${s.id}:done`));
    expect(planned.map((s) => s.id)).toContain('compare');

    const verified = await applyWith(spec);
    expect(verified.result.failed).toEqual([]);
    const again = verified.plan.actions[0]!.sync!.steps;
    expect(stepsRun(verified.events)).toEqual(again.map((s) => `${s.id}:${s.when === 'changed' ? 'skipped' : 'done'}`));
    expect(verified.events.some((e) => e.type === 'replica.done' && !e.copied)).toBe(true);
    expectNothingLeft();
  });

  it('reconciles one replica: observe, plan and execute, with when to look again', async () => {
    const { spec: loaded } = await loadSpec([spec]);
    const replica = loaded.replicas[0]!;
    const pool = createSessionPool();
    try {
      const deps = { pool, trustNewHostKeys: false, emit: () => {} };
      changeOrigin();
      const synced = await reconcileReplica(replica, deps, { now: new Date(), syncNow: true });
      expect(synced.outcome).toBe('synced');
      const verified = await reconcileReplica(replica, deps, { now: new Date(), syncNow: true });
      expect(verified.outcome).toBe('verified');
      // No schedule: nothing is due, and nothing says when to look again.
      const idle = await reconcileReplica(replica, deps, { now: new Date() });
      expect(idle).toMatchObject({ outcome: 'up-to-date' });
      expect(idle.requeueAfterMs).toBeUndefined();
      const hourly = { ...replica, policy: { ...replica.policy, schedule: { kind: 'interval' as const, intervalMs: 3_600_000 } } };
      const later = await reconcileReplica(hourly, deps, { now: new Date() });
      expect(later.outcome).toBe('up-to-date');
      expect(later.requeueAfterMs).toBeGreaterThan(3_500_000);
    } finally {
      await pool.closeAll();
    }
    expectNothingLeft();
  });

  it('refuses, after taking the lock, a target whose record changed since the plan, and writes nothing', async () => {
    changeOrigin();
    const before = current();
    let planted = '';
    const { result, events } = await applyWith(spec, undefined, async () => {
      // Another run's record lands between the plan and the lock.
      const moved = { ...record(), runId: 'someoneelse1' };
      writeFileSync(path.join(replicaDir, '.rmm/record.json'), `${JSON.stringify(moved, null, 2)}\n`);
      planted = recordText();
    });
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.error).toContain('the target changed since the plan');
    expect(result.failed[0]!.retryable).toBe(true);
    const failed = events.find((e) => e.type === 'replica.failed');
    expect(failed).toMatchObject({ code: 'replica.moved', step: 'check' });
    expect(recordText()).toBe(planted);
    expect(current()).toBe(before);
    expect(existsSync(path.join(replicaDir, 'points/.partial'))).toBe(false);
    expectNothingLeft();
    const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(next.code, next.out).toBe(0);
  });

  it('refuses a saved plan when any input of the apply changed, naming it, and writes nothing on either host', async () => {
    const dir = path.dirname(spec);
    const planFile = path.join(dir, 'inputs.plan');
    changeOrigin();
    expect((await rmm('plan', '-f', spec, '--out', planFile, '--sync-now', 'all')).code).toBe(3);
    mkdirSync(path.join(originRoot, 'mnt/extra'), { recursive: true });
    const cases: { name: string; file: () => string | Promise<string>; expect: string; cleanup?: () => Promise<unknown> }[] = [
      { name: 'snapshot provider', file: () => specWith({ policy: { retention: { recoveryPoints: 2 }, snapshot: { provider: 'fsfreeze' } } }), expect: 'policy.snapshot.provider: "auto" -> "fsfreeze"' },
      { name: 'a hook', file: () => specWith({ hooks: { preSync: [{ command: ['true', 'changed'], on: 'origin' }], postSync: [{ command: ['true'], on: 'target' }] } }), expect: 'hooks.preSync.0.command: ["true"] -> ["true","changed"]' },
      { name: 'bandwidth', file: () => specWith({ policy: { retention: { recoveryPoints: 2 }, bandwidthLimit: '50MiB/s' } }), expect: 'policy.bandwidthBytesPerSecond: (none) -> 52428800' },
      { name: 'parallel streams', file: () => specWith({ policy: { retention: { recoveryPoints: 2 }, parallelStreams: 6 } }), expect: 'policy.parallelStreams: 2 -> 6' },
      { name: 'exclusions', file: () => specWith({ exclude: { ...EXCLUDE, paths: [...EXCLUDE.paths, '/srv/data/steps/f1'] } }), expect: 'exclude.paths:' },
      {
        name: 'an origin mount added',
        file: async () => {
          await labExec('origin', ['mount', '-t', 'tmpfs', '-o', 'size=1m', 'extra', '/mnt/extra']);
          return spec;
        },
        expect: 'sync.units.0.innerMounts:',
        cleanup: () => labExec('origin', ['umount', '/mnt/extra']),
      },
    ];
    for (const c of cases) {
      const record = recordText();
      const point = current();
      const file = await c.file();
      try {
        // The saved plan names the spec it was made from; apply reads the changed one at the same path.
        if (file !== spec) writeFileSync(spec, readFileSync(file));
        const stale = await rmm('apply', '-f', spec, '--plan', planFile);
        expect(stale.code, `${c.name}: ${stale.out}`).toBe(1);
        expect(stale.err, c.name).toContain('the saved plan is stale');
        expect(stale.err, c.name).toContain(`replica ${REPLICA}: ${c.expect}`);
        expect(recordText(), c.name).toBe(record);
        expect(current(), c.name).toBe(point);
        expect(existsSync(path.join(replicaDir, 'points/.partial')), c.name).toBe(false);
        expectNothingLeft();
      } finally {
        await c.cleanup?.();
        writeFileSync(spec, readFileSync(specWith()));
      }
    }
    // Unchanged, it still applies.
    const fresh = await rmm('apply', '-f', spec, '--plan', planFile);
    expect(fresh.code, fresh.out + fresh.err).toBe(0);
  });

  it('lets go of everything on both hosts within the heartbeat timeout when the rmm host vanishes mid-copy, and the next apply converges', async () => {
    // A copy slow enough to be cut in the middle: 48 MiB at 4 MiB/s into the frozen /srv/data.
    const big = path.join(originRoot, 'srv/data/steps/big.bin');
    writeFileSync(big, randomBytes(48 << 20));
    const cut = specWith({ connection: { heartbeatTimeout: '10s' }, policy: { retention: { recoveryPoints: 2 }, bandwidthLimit: '4MiB/s' } });
    const child = spawn(process.execPath, [cli, 'apply', '-f', cut, '--yes', '--sync-now', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    const keys = path.join(lab.hosts.target.root, 'home/rmm/.ssh/authorized_keys');
    try {
      await waitFor(() => text.includes('sync /srv/data ->'), 60_000, () => text);
      expect(readFileSync(keys, 'utf8')).toContain('rmm-ephemeral');
      // The rmm host's power goes: its packets stop (no FIN, no RST reaches the hosts), then the process dies.
      execFileSync('ip', ['link', 'set', 'dev', lab.bridge, 'down']);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const frozen = () => {
        try {
          execFileSync('timeout', ['1', 'sh', '-c', `echo thawed > ${path.join(originRoot, 'srv/data/steps/thawed.txt')}`]);
          return false;
        } catch {
          return true;
        }
      };
      expect(frozen()).toBe(true);
      // 10 s without a heartbeat, plus the last one's 5 s and the holders' own polling.
      await waitFor(() => !frozen(), 30_000, () => 'the origin is still frozen');
      await waitFor(() => !readFileSync(keys, 'utf8').includes('rmm-ephemeral'), 30_000, () => 'the one-run key is still authorized');
      await waitFor(() => lockFree(), 30_000, () => 'the lock is still held');
    } finally {
      execFileSync('ip', ['link', 'set', 'dev', lab.bridge, 'up']);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(big, { force: true });
    }
    const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(next.code, next.out + next.err).toBe(0);
    expect(record().state).toBe('consistent');
    expectCopyOfOrigin();
    expectNothingLeft();
  });

  it('stops on SIGINT: the running copy ends, snapshots and work files go, the record says interrupted, the lock is free, exit 130, and the next apply converges', async () => {
    const big = path.join(originRoot, 'srv/data/steps/big.bin');
    writeFileSync(big, randomBytes(48 << 20));
    const slow = specWith({ policy: { retention: { recoveryPoints: 2 }, bandwidthLimit: '4MiB/s' } });
    const before = current();
    const child = spawn(process.execPath, [cli, 'apply', '-f', slow, '--yes', '--sync-now', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => (text += c.toString()));
    try {
      await waitFor(() => text.includes('sync /srv/data ->'), 60_000, () => text);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code, text).toBe(130);
      expect(text).toContain('rmm: SIGINT: stopping');
      expect(text).toContain(`${REPLICA}: still at recovery point ${before.replace('points/', '')}, as before this run`);
      expect(record().state).toBe('interrupted');
      expect(record().error).toContain('interrupted by SIGINT');
      expect(current()).toBe(before);
      expect(lockFree()).toBe(true);
      expectNothingLeft();
      expect(running(`rsync .*${REPLICA}`)).toBe('');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(big, { force: true });
    }
    expect((await rmm('plan', '-f', spec)).out).toContain('was interrupted');
    const next = await rmm('apply', '-f', spec, '--yes');
    expect(next.code, next.out + next.err).toBe(0);
    expectCopyOfOrigin();
  });

  it('fails a sync whose freeze reached policy snapshot.maxFreeze, and records it not consistent', async () => {
    const big = path.join(originRoot, 'srv/data/steps/big.bin');
    writeFileSync(big, randomBytes(16 << 20));
    try {
      const short = specWith({ policy: { retention: { recoveryPoints: 2 }, bandwidthLimit: '2MiB/s', snapshot: { maxFreeze: '2s' } } });
      const before = current();
      const { code, out } = await rmm('apply', '-f', short, '--yes', '--sync-now', 'all');
      expect(code).toBe(1);
      expect(out).toMatch(/the freeze of \/srv\/data ended before its copy did \(thawed \/srv\/data: frozen for the longest allowed \(2 s/);
      expect(current()).toBe(before);
      expect(record().state).toBe('failed');
      expectNothingLeft();
    } finally {
      rmSync(big, { force: true });
    }
    expect((await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all')).code).toBe(0);
  });

  it('fails a delta sync into a full target within the stall bound, saying the target is full, and converges once space is freed', async () => {
    const filler = path.join(lab.hosts.target.root, 'srv/replicas/filler.bin');
    const big = path.join(originRoot, 'srv/data/steps/big.bin');
    writeFileSync(big, randomBytes(32 << 20));
    const before = current();
    try {
      const free = Number(execFileSync('df', ['--output=avail', '-B1', path.join(lab.hosts.target.root, 'srv/replicas')], { encoding: 'utf8' }).split('\n')[1]);
      execFileSync('fallocate', ['-l', String(free - (8 << 20)), filler]);
      const full = specWith({ policy: { retention: { recoveryPoints: 2 }, stallTimeout: '20s' } });
      const { code, out } = await rmm('apply', '-f', full, '--yes', '--sync-now', 'all');
      expect(code).toBe(1);
      expect(out).toMatch(/FAILED: copy \/srv\/data \(.*\): copying \/srv\/data of origin to \S+ failed: the target is full/);
      expect(current()).toBe(before);
      expect(record().state).toBe('failed');
      expectNothingLeft();
      // A first copy that may not fit says so at plan time, with the figures (refused where they are exact: test/plan).
      const roomless = writeLabSpec(lab, { replica: 'roomless', exclude: { mounts: ['/u02'] } });
      const plan = await rmm('plan', '-f', roomless);
      expect(plan.out).toMatch(/may not fit: the first copy needs about [\d.]+ GiB \(used on the origin's copied filesystems\), target has 0\.0\d GiB free for \/srv\/replicas\/roomless, where btrfs counts its whole filesystem/);
    } finally {
      rmSync(filler, { force: true });
      rmSync(big, { force: true });
    }
    const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(next.code, next.out + next.err).toBe(0);
    expectCopyOfOrigin();
  });

  it('reports a planted record with traversal ids as damaged in plan, apply and status, and touches nothing outside the replica', async () => {
    const file = path.join(replicaDir, '.rmm/record.json');
    const good = readFileSync(file, 'utf8');
    const victim = path.join(lab.hosts.target.root, 'srv/victim');
    mkdirSync(victim, { recursive: true });
    writeFileSync(path.join(victim, 'sentinel'), 'must stay\n');
    const planted = JSON.parse(good) as ReplicaRecord;
    const point = planted.points.at(-1)!;
    writeFileSync(file, JSON.stringify({ ...planted, points: [{ ...point, id: '../../../victim' }, point] }));
    try {
      const plan = await rmm('plan', '-f', spec);
      expect(plan.code).toBe(1);
      expect(plan.out).toContain('is damaged: points[0].id "../../../victim" is not a recovery point id');
      const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(apply.code).toBe(1);
      const status = await rmm('status', '-f', spec);
      expect(status.out).toMatch(new RegExp(`^${REPLICA}: damaged: the replica record .* is damaged`, 'm'));
      const json = expectStatus((await rmm('status', '-f', spec, '-o', 'json')).out);
      expect(json[0]!['state']).toBe('damaged');
      expect(readFileSync(path.join(victim, 'sentinel'), 'utf8')).toBe('must stay\n');
    } finally {
      writeFileSync(file, good);
      rmSync(victim, { recursive: true, force: true });
    }
    expect((await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all')).code).toBe(0);
  });

  it("copies the origin's own files and folders named like rmm's snapshots, and never takes them for leftovers", async () => {
    const file = path.join(originRoot, '.rmm-snap.user-file');
    const folder = path.join(originRoot, `.rmm-snap.${REPLICA}.not-a-leftover`);
    writeFileSync(file, "the origin's\n");
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'inside'), 'also the origin\'s\n');
    try {
      const { code, out } = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(code, out).toBe(0);
      expect(out).not.toContain('left by an interrupted run');
      expect(readFileSync(path.join(replicaDir, current(), '.rmm-snap.user-file'), 'utf8')).toBe("the origin's\n");
      expect(readFileSync(path.join(replicaDir, current(), `.rmm-snap.${REPLICA}.not-a-leftover/inside`), 'utf8')).toBe("also the origin's\n");
      expect(existsSync(folder)).toBe(true);
    } finally {
      rmSync(file, { force: true });
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('syncs two replicas of one origin in one apply (direct and relayed, parallelism 4), one after the other, both consistent', async () => {
    const twins = writeLabSpec(lab, { replica: 'twin-a', exclude: EXCLUDE });
    // One server protected twice, as at two sites: the second through rmm's host.
    const relayed = { apiVersion: 'rmm/v1', kind: 'Environment', metadata: { name: 'lab-relay' }, spec: { transfer: 'relay', hosts: [{ name: 'target', address: lab.hosts.target.address, path: '/srv/replicas' }] } };
    const second = { apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name: 'twin-b' }, spec: { origin: 'origin', environment: 'lab-relay' } };
    writeFileSync(twins, `${readFileSync(twins, 'utf8')}\n---\n${JSON.stringify(relayed)}\n---\n${JSON.stringify(second)}\n`);
    try {
      const { code, out } = await rmm('apply', '-f', twins, '--yes', '--parallelism', '4');
      expect(code, out).toBe(0);
      expect(out).toMatch(/twin-b: waited for replica twin-a of the same origin|twin-a: waited for replica twin-b of the same origin/);
      for (const twin of ['twin-a', 'twin-b']) {
        const dir = path.join(lab.hosts.target.root, 'srv/replicas', twin);
        expect((JSON.parse(readFileSync(path.join(dir, '.rmm/record.json'), 'utf8')) as ReplicaRecord).state).toBe('consistent');
        const copy = path.join(dir, readlinkSync(path.join(dir, 'current')), 'srv/data');
        expect(diffTrees(describeTree(path.join(originRoot, 'srv/data'), []), describeTree(copy, []))).toEqual([]);
      }
    } finally {
      for (const twin of ['twin-a', 'twin-b']) rmSync(path.join(lab.hosts.target.root, 'srv/replicas', twin), { recursive: true, force: true });
    }
  });

  // Every step that sends a command, on the host it sends it to. `release /srv/data` (a freeze ends
  // when its holder's stdin closes) and `unlock` (the lock's holder ends the same way) send none.
  const faults: Fault[] = [
    { step: 'lock', role: 'target' },
    { step: 'check', role: 'target' },
    { step: 'record-start', role: 'target' },
    { step: 'clean', role: 'origin' },
    { step: 'snapshot /', role: 'origin' },
    { step: 'snapshot /srv/data', role: 'origin' },
    { step: 'compare', role: 'origin' },
    { step: 'hooks preSync', role: 'origin' },
    { step: 'channel', role: 'origin' },
    { step: 'channel', role: 'target' },
    { step: 'copy /', role: 'target' },
    { step: 'copy /srv/data', role: 'origin' },
    { step: 'release /', role: 'origin' },
    { step: 'revoke', role: 'target' },
    { step: 'promote', role: 'target' },
    { step: 'hooks postSync', role: 'target' },
    { step: 'record', role: 'target' },
    { step: 'prune', role: 'target' },
    // Half done: the command ran, and its reply was lost.
    { step: 'channel', role: 'target', match: 'rmm-authorize', after: true },
    { step: 'promote', role: 'target', match: 'rmm-promote', after: true },
    { step: 'record', role: 'target', match: 'rmm-write', after: true },
  ];

  for (const fault of faults) {
    it(`fails cleanly at ${fault.step} (${fault.role}${fault.after ? `, after ${fault.match} ran` : ''}): the last consistent copy stays, every undo runs, and the next apply converges`, async () => {
      changeOrigin();
      const before = { record: record(), current: current() };
      const { result, events, injector } = await applyWith(spec, fault);
      expect(injector.fired, 'the fault fired').toBeDefined();
      if (fault.step === 'release /') {
        // A snapshot that will not go does not undo a complete copy: a warning, and one more try at the end.
        expect(result.failed).toEqual([]);
        expect(events.some((e) => e.type === 'note' && e.text.startsWith('warning: could not release the snapshot of /,'))).toBe(true);
        expect(record().state).toBe('consistent');
        expectNothingLeft();
        return;
      }
      expect(result.failed).toHaveLength(1);
      const failed = events.find((e) => e.type === 'replica.failed')!;
      // A hook's command that fails is that hook's failure.
      expect(failed).toMatchObject({ step: fault.step, code: fault.step.startsWith('hooks') ? 'hook.failed' : 'fault.injected' });
      const host = fault.role === 'origin' ? lab.hosts.origin.address : lab.hosts.target.address;
      expect(result.failed[0]!.error).toContain(fault.step);
      expect(result.failed[0]!.error).toContain(host);
      expect(result.failed[0]!.error).toContain('injected fault');
      expect(events.filter((e) => e.type === 'step' && e.status === 'undo-failed')).toEqual([]);

      const committed = fault.step === 'prune';
      if (committed) {
        // The record said consistent before prune ran: the new point is the last consistent copy.
        expect(record().state).toBe('consistent');
        expect(current()).toBe(`points/${record().points.at(-1)!.id}`);
      } else {
        expect(current()).toBe(before.current);
        expect(record().points).toEqual(before.record.points);
        const wrote = !['lock', 'check'].includes(fault.step);
        expect(record().state).toBe(wrote ? 'failed' : before.record.state);
        if (wrote) expect(record().error).toContain('injected fault');
      }
      expectNothingLeft();

      const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(next.code, next.out + next.err).toBe(0);
      expect(record().state).toBe('consistent');
      expectCopyOfOrigin();
      expectNothingLeft();
      expect(statSync(path.join(replicaDir, current())).isDirectory()).toBe(true);
      // No point folder outlives the record's mention of it (a failed prune's is removed by the next).
      expect(readdirSync(path.join(replicaDir, 'points')).sort()).toEqual(record().points.map((p) => p.id));
    });
  }
});

/** The processes whose command line matches, one per line; '' when none. */
function running(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-fa', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}
