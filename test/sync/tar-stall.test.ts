/**
 * A first copy's tar streams are bound by policy.stallTimeout as rsync is: on real lab hosts, the
 * target's receiving tar is stopped (SIGSTOP) mid-copy, and the sync fails within the bound, naming
 * the stall, with nothing left running on either host; the next apply converges. Needs root.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/apply/apply.js';
import type { ApplyEvent } from '../../src/apply/events.js';
import { loadSpec } from '../../src/config/load.js';
import { observe } from '../../src/observe/observe.js';
import { makePlan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { createSessionPool } from '../../src/transport/index.js';
import { MOSTLY_DATA } from '../support/replica-lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { describeTree, diffTrees } from '../support/tree.js';

const isRoot = process.getuid?.() === 0;
const EXCLUDE = MOSTLY_DATA;
const STALL_S = 5;

describe.skipIf(!isRoot)('a stalled tar stream (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let targetRoot: string;

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    targetRoot = lab.hosts.target.root;
    const data = path.join(originRoot, 'srv/data/tarstall');
    mkdirSync(data, { recursive: true });
    // Far more than the pipes and SSH windows between the two tars hold.
    for (let i = 0; i < 8; i++) writeFileSync(path.join(data, `big${i}.bin`), randomBytes(16 << 20));
    for (let i = 0; i < 200; i++) writeFileSync(path.join(data, `small${i}`), `file ${i}\n`);
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  /** Processes of this lab's `host` (all labs share one PID namespace) whose command line matches. */
  const processes = (host: 'origin' | 'target', pattern: string): number[] => {
    let out = '';
    try {
      out = execFileSync('pgrep', ['-f', '--', pattern], { encoding: 'utf8' });
    } catch {
      return [];
    }
    const root = lab.hosts[host].root;
    return out
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => {
        try {
          return readlinkSync(`/proc/${pid}/root`) === root;
        } catch {
          return false;
        }
      });
  };
  const receiversOf = (replica: string) => processes('target', `tar -x .* -C /srv/replicas/${replica}/points/\\.partial/srv/data -f -$`);

  async function apply(spec: string, onStep?: (step: string) => void) {
    const { spec: loaded } = await loadSpec([spec]);
    const pool = createSessionPool();
    try {
      const observed = await observe(loaded, pool, { parallelism: 4, trustNewHostKeys: false });
      const plan = makePlan(loaded, observed, new Date(), { syncNow: 'all' });
      const events: ApplyEvent[] = [];
      const emit = (e: ApplyEvent) => {
        events.push(e);
        if (e.type === 'step' && e.status === 'start') onStep?.(e.step);
      };
      const result = await applyPlan(loaded, plan, pool, { parallelism: 4, trustNewHostKeys: false, emit });
      return { result, events, plan };
    } finally {
      await pool.closeAll();
    }
  }

  it.each(['direct', 'relay'] as const)('fails a first copy (%s) whose target stopped reading within stallTimeout, naming the stall, leaves nothing running, and the next apply converges', async (transfer) => {
    const REPLICA = `tarstall-${transfer}`;
    const replicaDir = path.join(targetRoot, 'srv/replicas', REPLICA);
    const receivers = () => receiversOf(REPLICA);
    const spec = writeLabSpec(lab, { replica: REPLICA, transfer, exclude: EXCLUDE, policy: { stallTimeout: `${STALL_S}s` } });
    const stopped = new Set<number>();
    let stoppedAt = 0;
    let watching: NodeJS.Timeout | undefined;
    const failed = await apply(spec, (step) => {
      if (step !== 'copy /srv/data' || watching) return;
      // Every tar that unpacks this copy is stopped as soon as it shows, so no stream can go on.
      watching = setInterval(() => {
        for (const pid of receivers()) {
          if (stopped.has(pid) || readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'tar') continue;
          process.kill(pid, 'SIGSTOP');
          stopped.add(pid);
          stoppedAt ||= Date.now();
        }
      }, 20);
    }).finally(() => clearInterval(watching));
    const endedAt = Date.now();
    expect(failed.plan.actions[0]!.sync!.units.find((u) => u.fs.mountPoint === '/srv/data')!.method.kind).toBe('tar');
    expect(stopped.size).toBeGreaterThan(0);
    expect(failed.result.failed).toHaveLength(1);
    const error = failed.result.failed[0]!.error;
    expect(error).toContain(`copying /srv/data of origin to ${lab.hosts.target.address} failed: no data moved for ${STALL_S} s (policy stallTimeout)`);
    expect(failed.result.failed[0]!.step).toBe('copy /srv/data');
    // The bound, plus the origin's report each second, the check, the kill and the undos.
    expect(endedAt - stoppedAt).toBeLessThan((STALL_S + 15) * 1000);
    expect(endedAt - stoppedAt).toBeGreaterThanOrEqual(STALL_S * 1000 - 1500);

    const record = JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
    expect(record.state).toBe('failed');
    expect(record.error).toContain('no data moved');
    expect(record.points).toEqual([]);
    expect(existsSync(path.join(replicaDir, 'current'))).toBe(false);
    // Nothing of the stream is left: the stopped tars were killed, the origin's side ended.
    // A killed process whose parent went too may wait a moment for a reaper: dead all the same.
    const alive = (pid: number) => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return /^State:\s+Z/m.test(status) ? undefined : status.split('\n').filter((l) => /^(State|PPid|Name):/.test(l)).join(' ');
      } catch {
        return undefined;
      }
    };
    for (const pid of stopped) expect(alive(pid), `target tar ${pid}`).toBeUndefined();
    expect(receivers()).toEqual([]);
    expect(processes('origin', `/run/\\.rmm-${REPLICA}\\.`)).toEqual([]);
    expect(processes('origin', `tar -C /\\.rmm-snap|tar .*-c .*--null`)).toEqual([]);
    expect(readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith('rmm-gate.'))).toEqual([]);

    const next = await apply(spec);
    expect(next.result.failed).toEqual([]);
    const converged = JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
    expect(converged.state).toBe('consistent');
    const copy = path.join(replicaDir, 'current/srv/data');
    expect(diffTrees(describeTree(path.join(originRoot, 'srv/data'), []), describeTree(copy, []))).toEqual([]);
    expect(receivers()).toEqual([]);
    expect(readFileSync(path.join(targetRoot, 'home/rmm/.ssh/authorized_keys'), 'utf8')).not.toContain('rmm-ephemeral');
    expect(readdirSync(path.join(targetRoot, 'run')).filter((n) => n.startsWith('rmm-gate.'))).toEqual([]);
    expect(readdirSync(path.join(originRoot, 'run')).filter((n) => n.startsWith(`.rmm-${REPLICA}.`))).toEqual([]);
  });
});
