/**
 * rmm watch on real lab hosts: two replicas on 5 s and 8 s schedules kept within their RPO for
 * several cycles (as metrics and a status page too); a replica added to the file started without a
 * restart, whose lock keeps a concurrent apply out; an invalid edit reported by file and line while
 * the last valid configuration keeps running; SIGTERM ends it with every lock free; alerts posted to
 * a webhook while the target is cut off and once it is back. Needs root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmm } from '../support/cli.js';
import { expectStatus, expectWatchEvents } from '../support/json-contract.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { lockIsFree, MOSTLY_DATA } from '../support/replica-lab.js';
import { waitFor } from '../support/wait.js';

const isRoot = process.getuid?.() === 0;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

describe.skipIf(!isRoot)('rmm watch (needs root)', () => {
  let lab: Lab;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    lab = await labUp();
    dir = mkdtempSync(path.join(tmpdir(), 'rmm-watch-'));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('keeps two replicas on 5 s and 8 s schedules within their RPO, takes an added replica (whose lock keeps a concurrent apply out) and refuses an invalid edit without stopping, and stops on SIGTERM with every lock free', async () => {
    // One estate in a folder: the replicas in a file of their own, which the test edits.
    const base = writeLabSpec(lab, { replica: 'every-5s', exclude: MOSTLY_DATA, policy: { schedule: { interval: '5s' }, rpo: '15s', retention: { recoveryPoints: 2 } } });
    const docs = readFileSync(base, 'utf8').split('\n---\n');
    const replicaDoc = (name: string, policy: string, more: Record<string, unknown> = {}) => JSON.stringify({ apiVersion: 'rmm/v1', kind: 'Replica', metadata: { name }, spec: { origin: 'origin', environment: 'lab', policy, ...more } });
    // Its syncs hold its lock a while: long enough for a concurrent apply to meet it.
    const slow = { hooks: { preSync: [{ command: ['sleep', '5'], on: 'origin' }] } };
    const slower = { apiVersion: 'rmm/v1', kind: 'Policy', metadata: { name: 'every-8s' }, spec: { schedule: { interval: '8s' }, rpo: '20s', retention: { recoveryPoints: 2 } } };
    writeFileSync(path.join(dir, 'estate.yaml'), [...docs.slice(0, -1), JSON.stringify(slower)].join('\n---\n'));
    const replicas = path.join(dir, 'replicas.yaml');
    writeFileSync(replicas, [replicaDoc('every-5s', 'test-policy'), replicaDoc('every-8s', 'every-8s')].join('\n---\n'));

    let out = '';
    let err = '';
    child = spawn(process.execPath, [cli, 'watch', '-f', dir, '-o', 'json', '--metrics', `${lab.rmmAddress}:0`], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const events = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const results = (name: string) => events().filter((e) => e['type'] === 'watch.result' && e['replica'] === name);
    const good = (e: Record<string, unknown>) => ['synced', 'verified', 'up-to-date'].includes(e['outcome'] as string);
    const said = () => `${out.slice(-3000)}\n${err}`;

    // Several cycles of each: its first copy, then a look each time its schedule comes.
    await waitFor(() => results('every-5s').filter(good).length >= 5 && results('every-8s').filter(good).length >= 3, 120_000, said);
    expect(results('every-5s').every(good), said()).toBe(true);
    const status = expectStatus((await rmm('status', '-f', dir, '-o', 'json')).out);
    expect(status.map((r) => [r['replica'], r['state'], r['withinRpo']])).toEqual([
      ['every-5s', 'consistent', true],
      ['every-8s', 'consistent', true],
    ]);
    // The same, as Prometheus metrics and on the status page.
    const served = events().find((e) => e['type'] === 'watch.start')!['metrics'] as string;
    expect(served).toMatch(new RegExp(`^http://${lab.rmmAddress.replaceAll('.', '\\.')}:\\d+$`));
    const metrics = await (await fetch(`${served}/metrics`)).text();
    for (const name of ['every-5s', 'every-8s']) expect(metrics).toContain(`rmm_replica_within_rpo{replica="${name}"} 1`);
    expect(metrics).toMatch(/rmm_replica_looks_total\{replica="every-5s",outcome="(synced|verified)"\} [1-9]/);
    expect(await (await fetch(`${served}/`)).text()).toMatch(/<td>every-8s<\/td><td>(synced|verified|up-to-date)<\/td><td>\d+s ago<\/td><td>20s<\/td><td>yes<\/td>/);
    // Each look came when its schedule said: after the first copy, 5 s (8 s) from the sync before, give or take the jitter.
    const gaps = (name: string) => {
      const at = results(name).map((e) => Date.parse(e['nextAt'] as string));
      return at.slice(1).map((t, i) => t - at[i]!);
    };
    for (const gap of gaps('every-5s').slice(1)) expect(gap).toBeGreaterThanOrEqual(4_000);

    // A third replica: taken at once, without a restart.
    writeFileSync(replicas, [replicaDoc('every-5s', 'test-policy'), replicaDoc('every-8s', 'every-8s'), replicaDoc('added-later', 'every-8s', slow)].join('\n---\n'));
    // While watch syncs it, an apply from elsewhere (CI, a person) meets its lock and says so; nothing breaks.
    await waitFor(() => events().some((e) => e['type'] === 'step' && e['replica'] === 'added-later' && e['step'] === 'lock' && e['status'] === 'done'), 60_000, said);
    const concurrent = await rmm('apply', '-f', dir, '--yes', '--sync-now', 'added-later');
    expect(concurrent.code).toBe(1);
    expect(concurrent.out).toMatch(/added-later: FAILED: lock \(198\.18\.\d+\.20\): replica 'added-later' is being synced by another run \(rmm reconcile \S+ pid \d+\) on 198\.18\.\d+\.20; try again when it ends/);
    await waitFor(() => results('added-later').some((e) => e['outcome'] === 'synced'), 60_000, said);
    expect(events().find((e) => e['type'] === 'watch.reload')).toMatchObject({ added: ['added-later'], changed: [], removed: [] });

    // An invalid edit: reported by file and line; the replicas keep their schedules.
    writeFileSync(replicas, `${replicaDoc('every-5s', 'test-policy')}\n---\n${replicaDoc('every-8s', 'no-such-policy')}\n`);
    // (added-later, gone from this file, stays watched: the edit is not taken.)
    await waitFor(() => events().some((e) => e['type'] === 'watch.invalid'), 30_000, said);
    const invalid = events().find((e) => e['type'] === 'watch.invalid')!;
    expect((invalid['problems'] as string[]).join('\n')).toMatch(new RegExp(`^${replicas.replaceAll('/', '\\/')}:3:\\d+: spec\\.policy: .*no-such-policy`, 'm'));
    const before = results('added-later').length;
    await waitFor(() => results('added-later').length > before && results('every-5s').length > 0, 30_000, said);

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => (child!.exitCode !== null ? r(child!.exitCode) : child!.once('exit', r)));
    expect(code, said()).toBe(143);
    const all = expectWatchEvents(out);
    expect(all.at(-1)).toMatchObject({ type: 'watch.stop', reason: 'SIGTERM' });
    for (const name of ['every-5s', 'every-8s', 'added-later']) expect(lockIsFree(path.join(lab.hosts.target.root, 'srv/replicas', name)), name).toBe(true);
  });

  it("posts alerts to a policy's webhook: failed and rpo-breached while the target cannot be reached, recovered once it can, never showing the URL's token", async () => {
    const got: Record<string, unknown>[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ path: req.url, ...(JSON.parse(body) as Record<string, unknown>) });
        res.end();
      });
    });
    // On the lab's bridge: the rmm host's own address there.
    await new Promise<void>((r) => receiver.listen(0, lab.rmmAddress, r));
    const url = `http://${lab.rmmAddress}:${(receiver.address() as AddressInfo).port}/hooks/t0ken-in-path`;
    const spec = writeLabSpec(lab, {
      replica: 'alerted',
      exclude: MOSTLY_DATA,
      connection: { connectTimeout: '3s', heartbeatTimeout: '10s' },
      policy: { schedule: { interval: '3s' }, rpo: '8s', alerts: { webhooks: [{ url }] } },
    });
    let out = '';
    let err = '';
    const veth = lab.hosts.target.netns;
    child = spawn(process.execPath, [cli, 'watch', '-f', spec], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const said = () => `${out.slice(-3000)}\n${err}\n${JSON.stringify(got)}`;
    const alerts = () => got.map((g) => g['alert']);
    try {
      await waitFor(() => /alerted: (synced|verified)/.test(out), 60_000, said);
      execFileSync('ip', ['link', 'set', veth, 'down']);
      await waitFor(() => alerts().includes('failed') && alerts().includes('rpo-breached'), 60_000, said);
      execFileSync('ip', ['link', 'set', veth, 'up']);
      await waitFor(() => alerts().includes('recovered'), 90_000, said);
    } finally {
      execFileSync('ip', ['link', 'set', veth, 'up']);
    }
    child.kill('SIGTERM');
    await new Promise((r) => (child!.exitCode !== null ? r(child!.exitCode) : child!.once('exit', r)));
    receiver.close();
    expect(alerts().filter((a) => a === 'recovered')).toHaveLength(1);
    expect(got.every((g) => g['path'] === '/hooks/t0ken-in-path' && g['type'] === 'rmm.alert' && g['replica'] === 'alerted')).toBe(true);
    expect(got.find((g) => g['alert'] === 'rpo-breached')).toMatchObject({ rpoMs: 8000, target: lab.hosts.target.address, message: expect.stringMatching(/^replica alerted is past its RPO of 8s: its copy is \d+s old/) });
    expect(out).toMatch(new RegExp(`alerted: alert rpo-breached posted to http://${lab.rmmAddress.replaceAll('.', '\\.')}:\\d+\\n`));
    expect(out + err).not.toContain('t0ken');
  });

  it('converges after watch is SIGKILLed mid-sync: what it held on the hosts goes with its connections, and the next watch syncs', async () => {
    const spec = writeLabSpec(lab, {
      replica: 'killed-mid-sync',
      exclude: MOSTLY_DATA,
      connection: { heartbeatTimeout: '10s' },
      policy: { schedule: { interval: '3s' } },
      hooks: { preSync: [{ command: ['sleep', '5'], on: 'origin' }] },
    });
    const start = () => {
      let out = '';
      const proc = spawn(process.execPath, [cli, 'watch', '-f', spec, '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr.resume();
      return { proc, events: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
    };
    const first = start();
    child = first.proc;
    // Killed while it holds the lock, /srv/data is frozen and the origin runs its hook: no undo
    // runs. (A host that vanishes without closing its connections: test/apply/steps.test.ts.)
    await waitFor(() => first.events().some((e) => e['type'] === 'step' && e['step'] === 'hooks preSync' && e['status'] === 'start'), 60_000, () => JSON.stringify(first.events().slice(-5)));
    first.proc.kill('SIGKILL');
    await new Promise((r) => (first.proc.exitCode !== null || first.proc.signalCode !== null ? r(undefined) : first.proc.once('exit', r)));
    const replicaDir = path.join(lab.hosts.target.root, 'srv/replicas', 'killed-mid-sync');
    const second = start();
    child = second.proc;
    const results = () => second.events().filter((e) => e['type'] === 'watch.result');
    await waitFor(() => results().some((e) => e['outcome'] === 'synced'), 90_000, () => JSON.stringify(results()));
    expect(results().at(-1)).toMatchObject({ outcome: 'synced', reason: expect.stringMatching(/^initial sync: the first sync \(run \S+\) did not finish$/) });
    second.proc.kill('SIGTERM');
    expect(await new Promise((r) => second.proc.once('exit', r))).toBe(143);
    expect(lockIsFree(replicaDir)).toBe(true);
    expect((JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as { state: string }).state).toBe('consistent');
  });
});
