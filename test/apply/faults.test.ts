/**
 * Real faults at named steps on the lab hosts, not injected errors: a tool missing on either host
 * (found at plan time) or removed between plan and apply, sudo taken away, the target's link cut
 * mid-copy and a degraded link (loss and delay). For each: the message names host, step and cause,
 * the last consistent copy stays byte-identical to its point, nothing of the run is left on either
 * host after the next apply, and that apply converges. Needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaRecord } from '../../src/record/record.js';
import { HostWrapper, type CommandOptions, type ExecOptions, type RemoteHost } from '../../src/transport/index.js';
import { rmm } from '../support/cli.js';
import { labCut, labDown, labJoin, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec, type LabSpecOptions } from '../support/lab-spec.js';
import { applyInProcess, expectNothingLeft as expectNothingLeftOn, lockIsFree, MOSTLY_DATA } from '../support/replica-lab.js';
import { expectApplyEvents, expectOutput, expectPlan, expectStatus } from '../support/json-contract.js';
import { describeTree, diffTrees } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;
const REPLICA = 'faults';
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

describe.skipIf(!isRoot)('real faults at named steps (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let targetRoot: string;
  let replicaDir: string;
  let spec: string;
  let change = 0;
  const specWith = (opts: LabSpecOptions = {}) => writeLabSpec(lab, { replica: REPLICA, exclude: MOSTLY_DATA, policy: { retention: { recoveryPoints: 2 } }, ...opts });
  const changeOrigin = () => writeFileSync(path.join(originRoot, 'srv/data/faults/changing.txt'), `change ${++change}\n`);
  const recordText = () => readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8');
  const record = () => JSON.parse(recordText()) as ReplicaRecord;
  const current = () => readlinkSync(path.join(replicaDir, 'current'));

  /** The last consistent point is still byte-identical to what the record says it holds. */
  function expectLastPointKept(before: { record: string; current: string; tree: ReturnType<typeof describeTree> }): void {
    const now = record();
    expect(now.points).toEqual((JSON.parse(before.record) as ReplicaRecord).points);
    expect(current()).toBe(before.current);
    expect(diffTrees(before.tree, describeTree(path.join(replicaDir, before.current, 'srv/data/faults'), []))).toEqual([]);
  }

  const snapshotBefore = () => ({ record: recordText(), current: current(), tree: describeTree(path.join(replicaDir, current(), 'srv/data/faults'), []) });

  const expectNothingLeft = () => expectNothingLeftOn({ originRoot, targetRoot, replicaDir, replica: REPLICA, probe: path.join(originRoot, 'srv/data/faults') });
  const lockFree = () => lockIsFree(replicaDir);
  const applyWith = (file: string, onStep: (step: string) => void) => applyInProcess(file, { onStep });

  async function expectConverges(file = spec): Promise<void> {
    changeOrigin();
    const next = await rmm('apply', '-f', file, '--yes', '--sync-now', 'all');
    expect(next.code, next.out + next.err).toBe(0);
    expect(record().state).toBe('consistent');
    expect(diffTrees(describeTree(path.join(originRoot, 'srv/data/faults'), []), describeTree(path.join(replicaDir, current(), 'srv/data/faults'), []))).toEqual([]);
    expectNothingLeft();
  }

  /** Moves a host's binary out of the way for the duration of `body`. */
  async function without<T>(root: string, binary: string, body: () => Promise<T>): Promise<T> {
    const file = path.join(root, 'usr/bin', binary);
    try {
      return await body();
    } finally {
      if (existsSync(`${file}.hidden`)) renameSync(`${file}.hidden`, file);
    }
  }
  const hide = (root: string, binary: string) => renameSync(path.join(root, 'usr/bin', binary), path.join(root, 'usr/bin', `${binary}.hidden`));

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    targetRoot = lab.hosts.target.root;
    replicaDir = path.join(targetRoot, 'srv/replicas', REPLICA);
    mkdirSync(path.join(originRoot, 'srv/data/faults'), { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(path.join(originRoot, 'srv/data/faults', `f${i}`), `file ${i}\n`);
    changeOrigin();
    spec = specWith({ connection: { heartbeatTimeout: '10s' } });
    const first = await rmm('apply', '-f', spec, '--yes');
    expect(first.code, first.out + first.err).toBe(0);
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  for (const side of ['origin', 'target'] as const) {
    it(`blocks at plan time when rsync is missing on the ${side}, writes nothing, and converges once it is back`, async () => {
      const root = side === 'origin' ? originRoot : targetRoot;
      changeOrigin();
      const before = recordText();
      await without(root, 'rsync', async () => {
        hide(root, 'rsync');
        const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
        expect(plan.code).toBe(1);
        expect(plan.out).toContain(`${side} ${side} has no rsync (install it, or set policy autoInstallPackages: true)`);
        const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
        expect(apply.code).toBe(1);
        expect(recordText()).toBe(before);
      });
      await expectConverges();
    });
  }

  it('blocks a first copy at plan time when tar is missing on the target, naming the package', async () => {
    const fresh = writeLabSpec(lab, { replica: 'faults-first', exclude: MOSTLY_DATA });
    await without(targetRoot, 'tar', async () => {
      hide(targetRoot, 'tar');
      const plan = await rmm('plan', '-f', fresh);
      expect(plan.code).toBe(1);
      expect(plan.out).toContain('target target has no tar (first copies by tar streams); install the package tar there');
    });
    expect(existsSync(path.join(targetRoot, 'srv/replicas/faults-first'))).toBe(false);
  });

  it('fails a first copy by tar streams into a target that fills up, saying the target is full, and converges once space is freed', async () => {
    const fresh = specWith({ replica: 'faults-full', connection: { heartbeatTimeout: '10s' }, policy: { stallTimeout: '20s' } });
    const freshDir = path.join(targetRoot, 'srv/replicas/faults-full');
    const big = path.join(originRoot, 'srv/data/faults/full.bin');
    const filler = path.join(targetRoot, 'srv/replicas/filler.bin');
    writeFileSync(big, randomBytes(32 << 20));
    try {
      const { result, events } = await applyWith(fresh, (step) => {
        if (step !== 'copy /srv/data') return;
        // Another writer takes the room after the plan counted it.
        const free = Number(execFileSync('df', ['--output=avail', '-B1', path.join(targetRoot, 'srv/replicas')], { encoding: 'utf8' }).split('\n')[1]);
        execFileSync('fallocate', ['-l', String(free - (8 << 20)), filler]);
      });
      expect(result.failed).toHaveLength(1);
      expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step: 'copy /srv/data', code: 'target.full' });
      expect(result.failed[0]!.error).toMatch(/copying \/srv\/data of origin to \S+ failed: the target is full \(no space left on /);
      const failed = JSON.parse(readFileSync(path.join(freshDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
      expect(failed.state).toBe('failed');
      expect(failed.points).toEqual([]);
      expect(existsSync(path.join(freshDir, 'current'))).toBe(false);
    } finally {
      rmSync(filler, { force: true });
      rmSync(big, { force: true });
    }
    const next = await rmm('apply', '-f', fresh, '--yes');
    expect(next.code, next.out + next.err).toBe(0);
    const copy = path.join(freshDir, readlinkSync(path.join(freshDir, 'current')), 'srv/data/faults');
    expect(diffTrees(describeTree(path.join(originRoot, 'srv/data/faults'), []), describeTree(copy, []))).toEqual([]);
    rmSync(freshDir, { recursive: true, force: true });
  }, 300_000);

  it('fails at copy, naming the origin and rsync, when rsync vanishes from the origin after the plan', async () => {
    changeOrigin();
    const before = snapshotBefore();
    const { result, events } = await without(originRoot, 'rsync', () => applyWith(spec, (step) => step === 'channel' && hide(originRoot, 'rsync')));
    expect(result.failed).toHaveLength(1);
    const failed = events.find((e) => e.type === 'replica.failed')!;
    expect(failed).toMatchObject({ step: expect.stringMatching(/^copy /) });
    expect(result.failed[0]!.error).toContain(lab.hosts.origin.address);
    expect(result.failed[0]!.error).toMatch(/rsync did not start on \S+: .*(rsync: (command )?not found|failed to run command 'rsync')/);
    expect(record().state).toBe('failed');
    expectLastPointKept(before);
    await expectConverges();
  });

  it('fails a direct copy between hosts cut from each other with one line: the hosts and No route to host; the next plan gives that line', async () => {
    changeOrigin();
    const before = snapshotBefore();
    await labCut();
    // With no neighbour entry left, the origin's connection fails at once as the operator meets it
    // (No route to host) rather than by a timeout.
    execFileSync('ip', ['-n', lab.hosts.origin.netns, 'neigh', 'flush', 'all']);
    let failed: Awaited<ReturnType<typeof rmm>>;
    let verbose: Awaited<ReturnType<typeof rmm>>;
    try {
      failed = await rmm('apply', '-f', spec, '--yes', '--sync-now', REPLICA);
      verbose = await rmm('apply', '-f', spec, '--yes', '--verbose');
    } finally {
      await labJoin();
    }
    expect(failed.code, failed.out + failed.err).toBe(1);
    const line = failed.out.split('\n').find((l) => l.startsWith(`${REPLICA}: FAILED: `))!;
    expect(line).toContain(`(${lab.hosts.origin.address} -> ${lab.hosts.target.address})`);
    expect(line).toContain(`ssh: connect to host ${lab.hosts.target.address} port 22: No route to host`);
    expect(line).toContain('set transfer: relay');
    // No script, no command line, no rsync closing lines: those are --verbose's.
    expect(failed.out).not.toMatch(/rmm-lifeline|sudo -n|--numeric-ids|rsync error:/);
    expect(failed.out).toContain('--verbose shows the command and its output');
    expect(verbose.out).toMatch(/rsync -aHAXS --numeric-ids/);
    expect(verbose.out).toContain('rsync error:');
    // What the record keeps, and the next plan gives as its reason, is that one line.
    expect(record().error).toBe(line.slice(`${REPLICA}: FAILED: `.length).replace(' (a later run may succeed)', ''));
    const plan = await rmm('plan', '-f', spec);
    expect(plan.out).toContain(`    the last sync failed: ${record().error}\n`);
    expect(plan.out).not.toMatch(/rmm-lifeline|--numeric-ids/);
    expectLastPointKept(before);
    await expectConverges();
  });

  it('blocks at plan time a login that is not root without connection.sudo, naming each host and what to set, and writes nothing', async () => {
    const unprivileged = writeLabSpec(lab, { replica: 'no-sudo', exclude: MOSTLY_DATA, connection: { sudo: false } });
    const plan = await rmm('plan', '-f', unprivileged);
    expect(plan.code, plan.out + plan.err).toBe(1);
    expect(plan.out).toContain('! replica no-sudo: blocked');
    for (const [side, host] of [['origin', lab.hosts.origin.address], ['target', lab.hosts.target.address]] as const) {
      expect(plan.out).toMatch(new RegExp(`${side} \\S+ \\(${host.replaceAll('.', '\\.')}\\): rmm logs in as rmm, who is not root, and connection.sudo is false; rmm needs root there .*set connection.sudo: true`));
    }
    const apply = await rmm('apply', '-f', unprivileged, '--yes', '-o', 'json');
    expect(apply.code).toBe(1);
    expect(expectApplyEvents(apply.out).at(-1)).toMatchObject({ type: 'summary', synced: 0, blocked: 1 });
    expect(existsSync(path.join(targetRoot, 'srv/replicas/no-sudo'))).toBe(false);
  });

  it('says unknown, and why, for a replica whose target cannot be reached, in text and in JSON: never invented facts', async () => {
    const quick = specWith({ connection: { heartbeatTimeout: '10s', connectTimeout: '3s' } });
    const veth = lab.hosts.target.netns;
    execFileSync('ip', ['link', 'set', veth, 'down']);
    let text: Awaited<ReturnType<typeof rmm>>;
    let json: Awaited<ReturnType<typeof rmm>>;
    try {
      text = await rmm('status', '-f', quick);
      json = await rmm('status', '-f', quick, '-o', 'json');
    } finally {
      execFileSync('ip', ['link', 'set', veth, 'up']);
    }
    expect(text.code).toBe(1);
    expect(text.out).toMatch(new RegExp(`^${REPLICA}: unknown: .*${lab.hosts.target.address.replaceAll('.', '\\.')}`, 'm'));
    expect(text.out).not.toMatch(/never synced|EXCEEDED|0 bytes/);
    const [row] = expectStatus(json.out);
    expect(row).toMatchObject({ replica: REPLICA, state: 'unknown', lastConsistent: null, ageMs: null, bytes: null, recoveryPoints: [] });
    expect(row!['cause']).toContain(lab.hosts.target.address);
  });

  for (const [side, step] of [['target', 'lock'], ['origin', 'snapshot /srv/data']] as const) {
    it(`fails at ${step}, naming sudo on the ${side}, when sudo is taken away there after the plan`, async () => {
      const root = side === 'origin' ? originRoot : targetRoot;
      const sudoers = path.join(root, 'etc/sudoers.d/rmm');
      const rule = readFileSync(sudoers, 'utf8');
      changeOrigin();
      const before = snapshotBefore();
      try {
        const { result, events } = await applyWith(spec, (s) => s === step && writeFileSync(sudoers, '# taken away by the test\n'));
        expect(result.failed).toHaveLength(1);
        expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step });
        expect(result.failed[0]!.error).toContain(side === 'origin' ? lab.hosts.origin.address : lab.hosts.target.address);
        expect(result.failed[0]!.error).toMatch(/sudo/);
      } finally {
        writeFileSync(sudoers, rule);
      }
      expectLastPointKept(before);
      await expectConverges();
    });
  }

  it("fails within the bounds when the target's link is cut mid-copy, lets go of the origin, and converges once it is back", async () => {
    const cut = specWith({ connection: { heartbeatTimeout: '10s' }, policy: { retention: { recoveryPoints: 2 }, stallTimeout: '20s', bandwidthLimit: '4MiB/s' } });
    writeFileSync(path.join(originRoot, 'srv/data/faults/big.bin'), randomBytes(48 * 1024 * 1024));
    const before = snapshotBefore();
    const veth = lab.hosts.target.netns;
    let down = false;
    try {
      const { result, events, seconds } = await applyWith(cut, (step) => {
        if (step !== 'copy /srv/data') return;
        // Once bytes flow: cut the link while rsync is mid-file.
        setTimeout(() => {
          execFileSync('ip', ['link', 'set', veth, 'down']);
          down = true;
        }, 3000);
      });
      expect(down).toBe(true);
      expect(result.failed).toHaveLength(1);
      expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step: expect.stringMatching(/^(copy|release|revoke|record|promote)/) });
      // rsync's stall timeout (20 s) plus ssh's and the heartbeats' bounds, never a hang.
      expect(seconds).toBeLessThan(150);
      // The origin is thawed while the target is still unreachable.
      execFileSync('timeout', ['20', 'sh', '-c', `echo thawed > ${path.join(originRoot, 'srv/data/faults/thawed.txt')}`]);
    } finally {
      execFileSync('ip', ['link', 'set', veth, 'up']);
    }
    // The target let go of the lock and the key by itself within the heartbeat timeout.
    await waitFor(lockFree, 30_000);
    expect(JSON.parse(before.record).points).toEqual(record().points);
    expect(current()).toBe(before.current);
    await expectConverges(cut);
  }, 300_000);

  it('never shows a key passphrase: not in any output mode, saved plan, record, hook environment or remote command line', async () => {
    const secret = `S3cret-${randomBytes(6).toString('hex')}`;
    const dir = path.dirname(spec);
    const key = path.join(dir, 'encrypted_key');
    writeFileSync(key, readFileSync(lab.clientKey));
    execFileSync('chmod', ['600', key]);
    execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', secret, '-f', key]);
    const envDump = path.join(dir, 'local-hook-env.txt');
    const hooked = specWith({
      connection: { heartbeatTimeout: '10s', auth: { keyFile: key, passphraseEnv: 'RMM_TEST_KEY_PASSPHRASE' } },
      hooks: {
        preSync: [{ command: ['env'], on: 'origin' }, { command: ['sh', '-c', `env | tee ${envDump}`], on: 'local' }],
        postSync: [{ command: ['env'], on: 'target' }],
      },
    });
    process.env.RMM_TEST_KEY_PASSPHRASE = secret;
    const outputs: string[] = [];
    try {
      const saved = path.join(dir, 'saved.plan');
      for (const args of [
        ['validate', '-f', hooked],
        ['plan', '-f', hooked, '--sync-now', 'all'],
        ['plan', '-f', hooked, '--sync-now', 'all', '-o', 'json', '--out', saved],
        ['apply', '-f', hooked, '--yes', '--plan', saved],
        ['apply', '-f', hooked, '--yes', '--sync-now', 'all', '-o', 'json'],
        ['status', '-f', hooked],
        ['status', '-f', hooked, '-o', 'json'],
        ['discover', 'origin', '-f', hooked],
        ['discover', 'origin', '-f', hooked, '-o', 'json'],
        ['unlock', REPLICA, '-f', hooked],
      ]) {
        changeOrigin();
        const run = await rmm(...args);
        expect(run.code, `${args.join(' ')}: ${run.out}${run.err}`).toBeLessThan(args[0] === 'plan' ? 4 : 1);
        // The JSON outputs are the ones their schemas publish.
        if (args[0] === 'apply' && args.includes('json')) expectApplyEvents(run.out);
        if (args[0] === 'status' && args.includes('json')) expectStatus(run.out);
        if (args[0] === 'plan' && args.includes('json')) expectPlan(run.out);
        if (args[0] === 'discover' && args.includes('json')) expectOutput('discover', run.out);
        outputs.push(run.out, run.err);
      }
      outputs.push(readFileSync(saved, 'utf8'), recordText(), readFileSync(envDump, 'utf8'));
      // Every command line rmm sends either host, recorded through the RemoteHost wrapper.
      changeOrigin();
      const commands: string[] = [];
      const { result } = await applyInProcess(hooked, { wrapHost: (host) => new RecordingHost(host, commands) });
      expect(result.failed).toEqual([]);
      expect(commands.length).toBeGreaterThan(20);
      outputs.push(...commands);
    } finally {
      delete process.env.RMM_TEST_KEY_PASSPHRASE;
    }
    expect(outputs.join('\n')).toContain('RMM_REPLICA=');
    for (const text of outputs) expect(text).not.toContain(secret);
  }, 300_000);

  it("refuses to apply a saved plan when the target's host key changed after the plan, and writes nothing", async () => {
    const dir = path.dirname(spec);
    const knownHosts = path.join(dir, 'known_hosts.moving');
    writeFileSync(knownHosts, readFileSync(lab.knownHosts));
    const file = specWith({ connection: { heartbeatTimeout: '10s' }, knownHosts });
    const saved = path.join(dir, 'hostkey.plan');
    changeOrigin();
    const plan = await rmm('plan', '-f', file, '--sync-now', 'all', '--out', saved);
    expect(plan.code, plan.out + plan.err).toBe(3);
    const fake = path.join(dir, 'fake_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', fake]);
    const fakeKey = readFileSync(`${fake}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const others = readFileSync(lab.knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(lab.hosts.target.address));
    writeFileSync(knownHosts, [...others, `${lab.hosts.target.address} ${fakeKey}`, ''].join('\n'));
    const before = recordText();
    const apply = await rmm('apply', '-f', file, '--yes', '--plan', saved);
    expect(apply.code).toBe(1);
    expect(apply.out + apply.err).toMatch(/host key.*changed/i);
    expect(apply.out + apply.err).toContain(lab.hosts.target.address);
    expect(recordText()).toBe(before);
    expectNothingLeft();
    writeFileSync(knownHosts, readFileSync(lab.knownHosts));
    await expectConverges(file);
  });

  it('converges after rmm is SIGKILLed as each step starts: no undo runs, the hosts let go by themselves, the next apply cleans up', async () => {
    const plan = JSON.parse((await rmm('plan', '-f', spec, '--sync-now', 'all', '-o', 'json')).out) as { actions: { sync: { steps: { id: string }[] } }[] };
    const steps = plan.actions[0]!.sync.steps.map((s) => s.id).filter((id) => id !== 'lock');
    expect(steps).toContain('promote');
    let restored = 0;
    for (const step of steps) {
      changeOrigin();
      const before = record();
      const child = spawn(process.execPath, [cli, 'apply', '-f', spec, '--yes', '--sync-now', 'all', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let seen = '';
      let killed = false;
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (!killed && seen.includes(`"step":${JSON.stringify(step)},"status":"start"`)) {
          killed = true;
          child.kill('SIGKILL');
        }
      });
      await new Promise((r) => child.once('exit', r));
      expect(killed, `${step}: the step never started:\n${seen}`).toBe(true);
      // Its holders on the hosts see rmm's connection end: the lock and any freeze go by themselves.
      await waitFor(lockFree, 30_000);
      execFileSync('timeout', ['20', 'sh', '-c', `echo thawed > ${path.join(originRoot, 'srv/data/faults/thawed.txt')}`]);
      // The record was written whole or not at all; current names a point it holds, or the copy
      // it holds as pending when the kill fell between promote and record.
      const after = record();
      const held = [...before.points, ...after.points, ...(after.pending ? [after.pending] : [])].map((p) => `points/${p.id}`);
      expect(held, step).toContain(current());
      expect(existsSync(path.join(replicaDir, current(), 'srv/data/faults'))).toBe(true);
      if (current() === `points/${after.pending?.id}`) {
        const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
        expect(plan.out).toContain(`the last run was stopped after it promoted its copy to points/${after.pending!.id} and before it recorded it`);
        restored++;
      }
      await expectConverges();
      // No folder is left that the record does not name: a promoted copy was put back and copied on.
      const folders = readdirSync(path.join(replicaDir, 'points')).filter((n) => n !== '.partial').sort();
      expect(folders, step).toEqual(record().points.map((p) => p.id).sort());
    }
    // A kill as `record` starts falls after promote: that case was met and put right.
    expect(restored).toBeGreaterThan(0);
  }, 600_000);

  it('copies exactly over a degraded link: slow, queueing and dropping packets', async () => {
    writeFileSync(path.join(originRoot, 'srv/data/faults/big.bin'), randomBytes(8 * 1024 * 1024));
    const veth = lab.hosts.target.netns;
    // This kernel has no netem (CONFIG_NET_SCH_NETEM is not set): a token bucket with a short queue
    // gives a 16 Mbit/s link that delays and drops what exceeds it, toward the target.
    execFileSync('tc', ['qdisc', 'add', 'dev', veth, 'root', 'tbf', 'rate', '16mbit', 'burst', '16kb', 'latency', '20ms']);
    try {
      await expectConverges();
      const dropped = Number(/dropped (\d+)/.exec(execFileSync('tc', ['-s', 'qdisc', 'show', 'dev', veth], { encoding: 'utf8' }))?.[1]);
      expect(dropped).toBeGreaterThan(0);
    } finally {
      execFileSync('tc', ['qdisc', 'del', 'dev', veth, 'root']);
    }
  }, 300_000);
});

/** Passes every command through, keeping its command line. */
class RecordingHost extends HostWrapper {
  constructor(
    inner: RemoteHost,
    private readonly lines: string[],
  ) {
    super(inner);
  }

  override exec(argv: readonly string[], opts?: ExecOptions) {
    this.lines.push(this.inner.command(argv, opts));
    return super.exec(argv, opts);
  }

  override spawn(argv: readonly string[], opts?: CommandOptions) {
    this.lines.push(this.inner.command(argv, opts));
    return super.spawn(argv, opts);
  }
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 250));
  }
}
