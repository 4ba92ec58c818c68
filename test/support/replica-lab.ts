import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { applyPlan } from '../../src/apply/apply.js';
import type { ApplyEvent } from '../../src/apply/events.js';
import { loadSpec } from '../../src/config/load.js';
import { observe } from '../../src/observe/observe.js';
import { makePlan, type Plan } from '../../src/plan/plan.js';
import { createSessionPool, type RemoteHost } from '../../src/transport/index.js';

/** Exclusions that leave most of the lab origin's Debian root at home: tests about steps, not volume. */
export const MOSTLY_DATA = { mounts: ['/u02'], paths: ['/usr/*', '/var/*', '/lib/*', '/lib64/*', '/bin/*', '/sbin/*', '/etc/*', '/boot/*', '/opt/*', '/root/*', '/home/*', '/tmp/*'] };

/** Whether nobody holds the replica's lock on the target. */
export function lockIsFree(replicaDir: string): boolean {
  try {
    execFileSync('flock', ['-n', path.join(replicaDir, '.rmm/lock'), 'true']);
    return true;
  } catch {
    return false;
  }
}

/**
 * Nothing of a sync is left on either host: no snapshot, no freeze (`probe`, a folder on the frozen
 * filesystem, takes a write), no lock, no one-run key, no work folder.
 */
export function expectNothingLeft(at: { originRoot: string; targetRoot: string; replicaDir: string; replica: string; probe: string }): void {
  expect(readdirSync(at.originRoot).filter((n) => n.startsWith('.rmm-snap'))).toEqual([]);
  execFileSync('timeout', ['20', 'sh', '-c', `echo thawed > ${path.join(at.probe, 'thawed.txt')}`]);
  expect(lockIsFree(at.replicaDir)).toBe(true);
  for (const home of ['root', 'home/rmm']) {
    const keys = path.join(at.targetRoot, home, '.ssh/authorized_keys');
    if (existsSync(keys)) expect(readFileSync(keys, 'utf8')).not.toContain('rmm-ephemeral');
  }
  expect(readdirSync(path.join(at.originRoot, 'run')).filter((n) => n.startsWith(`.rmm-${at.replica}.`))).toEqual([]);
}

/**
 * Observes, plans (every replica due, unless `onSchedule`) and applies in this process. `onStep` runs as each step starts,
 * before it sends anything; `wrapHost` puts a wrapper around each host (faults, recording).
 */
export async function applyInProcess(
  file: string,
  opts: { onStep?: (step: string) => void; wrapHost?: (host: RemoteHost, role: 'origin' | 'target') => RemoteHost; edit?: (plan: Plan) => Promise<void>; onSchedule?: boolean } = {},
) {
  const { spec } = await loadSpec([file]);
  const pool = createSessionPool();
  try {
    const observed = await observe(spec, pool, { parallelism: 4, trustNewHostKeys: false });
    const plan = makePlan(spec, observed, new Date(), opts.onSchedule ? {} : { syncNow: 'all' });
    await opts.edit?.(plan);
    const events: ApplyEvent[] = [];
    const emit = (e: ApplyEvent) => {
      events.push(e);
      if (e.type === 'step' && e.status === 'start') opts.onStep?.(e.step);
    };
    const started = Date.now();
    const result = await applyPlan(spec, plan, pool, { parallelism: 4, trustNewHostKeys: false, emit, ...(opts.wrapHost ? { wrapHost: opts.wrapHost } : {}) });
    return { plan, events, result, seconds: (Date.now() - started) / 1000 };
  } finally {
    await pool.closeAll();
  }
}
