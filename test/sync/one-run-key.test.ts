/**
 * The one-run key runs only the receiving side of its run's copies, on real lab hosts: while a
 * direct copy is held at its first tar stream, the origin uses the key to run other commands on the
 * target, and each is refused, while the copy itself goes on to succeed. Needs root.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/apply/apply.js';
import { lockReplica } from '../../src/apply/lock.js';
import { endpointSession } from '../../src/apply/sessions.js';
import { openPushChannel, removeEphemeralAccess } from '../../src/sync/channel.js';
import type { ApplyEvent } from '../../src/apply/events.js';
import { loadSpec } from '../../src/config/load.js';
import { observe } from '../../src/observe/observe.js';
import { makePlan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { createSessionPool, HostWrapper, type CommandOptions, type RemoteHost, type RemoteProcess } from '../../src/transport/index.js';
import { MOSTLY_DATA } from '../support/replica-lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { labDown, labExec, labUp, type Lab, type LabExecResult } from '../support/lab/lab.js';
import { describeTree, diffTrees } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;
const REPLICA = 'onerunkey';
// / goes by rsync (exclude.paths applies to it), /srv/data by tar streams: both kinds of command.
const EXCLUDE = MOSTLY_DATA;

const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Holds the origin's first command whose line contains `match` until `release()`. */
class HeldOrigin extends HostWrapper {
  #held = false;
  /** The command line that was held. */
  heldCommand = '';
  #release!: () => void;
  readonly released = new Promise<void>((r) => (this.#release = r));
  #reached!: () => void;
  readonly reached = new Promise<void>((r) => (this.#reached = r));

  constructor(
    inner: RemoteHost,
    private readonly match: string,
  ) {
    super(inner);
  }

  release(): void {
    this.#release();
  }

  override async spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    if (!this.#held && this.inner.command(argv, opts).includes(this.match)) {
      this.#held = true;
      this.heldCommand = this.inner.command(argv, opts);
      this.#reached();
      await this.released;
    }
    return this.inner.spawn(argv, opts);
  }
}

describe.skipIf(!isRoot)('the one-run key (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let targetRoot: string;
  let replicaDir: string;

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    targetRoot = lab.hosts.target.root;
    replicaDir = path.join(targetRoot, 'srv/replicas', REPLICA);
    mkdirSync(path.join(originRoot, 'srv/data', REPLICA), { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(path.join(originRoot, 'srv/data', REPLICA, `f${i}`), `file ${i}\n`.repeat(1000));
    writeFileSync(path.join(originRoot, 'tmp/evil-file'), 'not for the target\n');
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  /** Runs a shell command on the origin as its root, as a compromised origin would. */
  const onOrigin = async (script: string): Promise<LabExecResult & { code: number }> => {
    try {
      return { ...(await labExec('origin', ['sh', '-c', script])), code: 0 };
    } catch (err) {
      const e = err as { exitCode: number | null; stdout: string; stderr: string };
      return { stdout: e.stdout, stderr: e.stderr, code: e.exitCode ?? -1 };
    }
  };

  it('runs nothing on the target but the copy: id, sh -c, an rsync server or a tar elsewhere are refused, and the copy succeeds', async () => {
    const spec = writeLabSpec(lab, { replica: REPLICA, exclude: EXCLUDE });
    const { spec: loaded } = await loadSpec([spec]);
    const pool = createSessionPool();
    let held: HeldOrigin | undefined;
    const wrapHost = (host: RemoteHost, role: 'origin' | 'target'): RemoteHost => (role === 'origin' ? (held = new HeldOrigin(host, ' rmm-tar ')) : host);
    try {
      const observed = await observe(loaded, pool, { parallelism: 4, trustNewHostKeys: false });
      const plan = makePlan(loaded, observed, new Date(), { syncNow: 'all' });
      const events: ApplyEvent[] = [];
      const applying = applyPlan(loaded, plan, pool, { parallelism: 4, trustNewHostKeys: false, emit: (e) => events.push(e), wrapHost });
      // The copy of /srv/data is about to open its first tar stream: its lines are allowed by now.
      for (let i = 0; !held && i < 600; i++) await new Promise((r) => setTimeout(r, 50));
      await Promise.race([held!.reached, applying.then((r) => Promise.reject(new Error(`the apply ended before the copy was held: ${JSON.stringify(r.failed)}`)))]);
      try {
        const work = readdirSync(path.join(originRoot, 'run')).filter((n) => n.startsWith(`.rmm-${REPLICA}.`));
        expect(work).toHaveLength(1);
        const key = `/run/${work[0]}/key`;
        const gates = readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith(`rmm-gate.${REPLICA}.`));
        expect(gates).toHaveLength(1);
        const gate = path.join(targetRoot, 'run', gates[0]!);
        // The login user reads the gate and its list; only root changes them.
        for (const f of [gate, `${gate}/gate`, `${gate}/allowed`]) {
          const st = statSync(f);
          expect([f, st.uid, st.mode & 0o022]).toEqual([f, 0, 0]);
        }
        const authorized = readFileSync(path.join(targetRoot, 'home/rmm/.ssh/authorized_keys'), 'utf8').split('\n').filter((l) => l.includes(`rmm-ephemeral:${REPLICA}:`));
        expect(authorized).toHaveLength(1);
        expect(authorized[0]).toMatch(new RegExp(`^restrict,command="/bin/sh /run/${gates[0]}/gate",expiry-time="\\d{14}Z" ssh-ed25519 `));
        const allowed = readFileSync(`${gate}/allowed`, 'utf8').trim().split('\n');
        const tarLine = allowed.find((l) => l.startsWith("sudo -n tar -x "))!;
        expect(tarLine, allowed.join("\n")).toBeDefined();
        expect(tarLine).toMatch(/ -C \/srv\/replicas\/onerunkey\/points\/\.partial\/srv\/data -f -$/);
        expect(allowed.some((l) => /^sudo -n rsync --server -\w+e\.\w+ .* \. \/srv\/replicas\/onerunkey\/points\/\.partial\/$/.test(l))).toBe(true);

        const ssh = `ssh -i ${key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
        const to = `rmm@${lab.hosts.target.address}`;
        const refusedBy = (r: { code: number; stderr: string }, what: string) => {
          expect(r.code, `${what}: ${r.stderr}`).not.toBe(0);
          expect(r.stderr, what).toContain('rmm: refused: the one-run key of this copy runs only its receiving commands');
        };
        refusedBy(await onOrigin(`${ssh} ${to} id`), 'id');
        refusedBy(await onOrigin(`${ssh} ${to} 'sudo -n id'`), 'sudo id');
        refusedBy(await onOrigin(`${ssh} ${to} "sh -c 'touch /tmp/pwned; sudo -n touch /tmp/pwned-root'"`), 'sh -c');
        refusedBy(await onOrigin(`${ssh} -T ${to} </dev/null`), 'a login shell');
        // The allowed tar line, and more after it.
        refusedBy(await onOrigin(`${ssh} ${to} ${sq(`${tarLine}; touch /tmp/pwned`)} </dev/null`), 'an allowed line and more');
        refusedBy(await onOrigin(`tar -C /tmp -cf - evil-file | ${ssh} ${to} 'sudo -n tar -x -C /tmp -f -'`), 'tar into /tmp');
        refusedBy(await onOrigin(`tar -C /tmp -cf - evil-file | ${ssh} ${to} ${sq(tarLine.replace(/-C \S+ -f -$/, '-C /tmp -f -'))}`), 'the allowed tar into /tmp');
        const rsync = await onOrigin(`rsync -a -e '${ssh}' --rsync-path='sudo -n rsync' /tmp/evil-file ${to}:/tmp/evil/`);
        expect(rsync.code).not.toBe(0);
        expect(rsync.stderr).toContain('rmm: refused');
        const rsyncInto = await onOrigin(`rsync -aHAXS --numeric-ids --delete -e '${ssh}' --rsync-path='sudo -n rsync' /tmp/evil-file ${to}:/srv/replicas/${REPLICA}/points/.partial/etc/`);
        expect(rsyncInto.code).not.toBe(0);
        expect(rsyncInto.stderr).toContain('rmm: refused');
        // Nothing of it reached the target.
        for (const f of ['tmp/pwned', 'tmp/pwned-root', 'tmp/evil-file', 'tmp/evil']) expect(existsSync(path.join(targetRoot, f)), f).toBe(false);
        expect(existsSync(path.join(replicaDir, 'points/.partial/etc/evil-file'))).toBe(false);
      } finally {
        held!.release();
      }
      const result = await applying;
      expect(result.failed).toEqual([]);
      expect(events.some((e) => e.type === 'replica.done')).toBe(true);
    } finally {
      await pool.closeAll();
    }
    const record = JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
    expect(record.state).toBe('consistent');
    const copy = path.join(replicaDir, 'current/srv/data');
    expect(diffTrees(describeTree(path.join(originRoot, 'srv/data'), []), describeTree(copy, []))).toEqual([]);
    // The key and its gate are gone with the run.
    expect(readFileSync(path.join(targetRoot, 'home/rmm/.ssh/authorized_keys'), 'utf8')).not.toContain('rmm-ephemeral');
    expect(readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith('rmm-gate.'))).toEqual([]);
    expect(readdirSync(path.join(originRoot, 'run')).filter((n) => n.startsWith(`.rmm-${REPLICA}.`))).toEqual([]);
  });
  it('in relay, where the origin reaches the target through rmm, runs nothing but the copy either', async () => {
    const replica = `${REPLICA}-relay`;
    const spec = writeLabSpec(lab, { replica, transfer: 'relay', exclude: EXCLUDE });
    const { spec: loaded } = await loadSpec([spec]);
    const pool = createSessionPool();
    let held: HeldOrigin | undefined;
    // The rsync of /, through the reverse tunnel: tar streams in relay are carried by rmm, without the key.
    const wrapHost = (host: RemoteHost, role: 'origin' | 'target'): RemoteHost => (role === 'origin' ? (held = new HeldOrigin(host, ' rmm-lifeline rsync ')) : host);
    try {
      const observed = await observe(loaded, pool, { parallelism: 4, trustNewHostKeys: false });
      const plan = makePlan(loaded, observed, new Date(), { syncNow: 'all' });
      const applying = applyPlan(loaded, plan, pool, { parallelism: 4, trustNewHostKeys: false, emit: () => {}, wrapHost });
      for (let i = 0; !held && i < 600; i++) await new Promise((r) => setTimeout(r, 50));
      await Promise.race([held!.reached, applying.then((r) => Promise.reject(new Error(`the apply ended before the copy was held: ${JSON.stringify(r.failed)}`)))]);
      try {
        const port = /-p (\d+) /.exec(held!.heldCommand)![1];
        const work = readdirSync(path.join(originRoot, 'run')).filter((n) => n.startsWith(`.rmm-${replica}.`));
        const ssh = `ssh -p ${port} -i /run/${work[0]}/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR rmm@127.0.0.1`;
        for (const command of ['id', "'sudo -n id'", "'sh -c id'", "'sudo -n rsync --server -logDtpre.iLsfxCIvu . /tmp/evil/'"]) {
          const r = await onOrigin(`${ssh} ${command} </dev/null`);
          expect(r.code, command).not.toBe(0);
          expect(r.stderr, command).toContain('rmm: refused: the one-run key of this copy runs only its receiving commands');
        }
      } finally {
        held!.release();
      }
      expect((await applying).failed).toEqual([]);
    } finally {
      await pool.closeAll();
    }
    const record = JSON.parse(readFileSync(path.join(targetRoot, 'srv/replicas', replica, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
    expect(record.state).toBe('consistent');
    expect(readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith('rmm-gate.'))).toEqual([]);
  });
  it("is removed with its gate by the lock's holder when rmm's connection ends without letting go (rmm killed)", async () => {
    const replica = `${REPLICA}-killed`;
    const { spec: loaded } = await loadSpec([writeLabSpec(lab, { replica, exclude: EXCLUDE })]);
    const r = loaded.replicas[0]!;
    const keys = path.join(targetRoot, 'home/rmm/.ssh/authorized_keys');
    const gates = () => readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith(`rmm-gate.${replica}.`));
    const pool = createSessionPool();
    try {
      const origin = await endpointSession(pool, r.origin.endpoint, false);
      const target = await endpointSession(pool, r.target.endpoint, false);
      await lockReplica(target, `/srv/replicas/${replica}/.rmm/lock`, replica, 'one-run-key test', 30_000);
      await openPushChannel({ origin, target, targetEndpoint: r.target.endpoint, replica, runId: 'killedrun' });
      expect(readFileSync(keys, 'utf8')).toContain(`rmm-ephemeral:${replica}:killedrun`);
      expect(gates()).toEqual([`rmm-gate.${replica}.killedrun`]);
    } finally {
      await pool.closeAll(); // no release: the connection just ends, as when rmm is killed
    }
    for (let i = 0; i < 100 && (readFileSync(keys, 'utf8').includes(`rmm-ephemeral:${replica}:`) || gates().length > 0); i++) await new Promise((res) => setTimeout(res, 100));
    expect(readFileSync(keys, 'utf8')).not.toContain(`rmm-ephemeral:${replica}:`);
    expect(gates()).toEqual([]);
    const cleanup = createSessionPool();
    try {
      await removeEphemeralAccess(await endpointSession(cleanup, r.origin.endpoint, false), await endpointSession(cleanup, r.target.endpoint, false), replica);
    } finally {
      await cleanup.closeAll();
    }
  });
});
