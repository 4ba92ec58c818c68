import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReconcileResult } from '../../src/apply/reconcile.js';
import type { Replica, Spec } from '../../src/config/spec.js';
import { WatchController, type WatchEvent } from '../../src/watch/controller.js';

const replica = (name: string, origin: string, specHash = 'h1', policy: Record<string, unknown> = {}) => ({ name, specHash, policy, origin: { endpoint: { address: origin, port: 22 } } }) as unknown as Replica;
const spec = (...replicas: Replica[]) => ({ replicas, files: [] }) as unknown as Spec;
const done = (requeueAfterMs: number): ReconcileResult => ({ outcome: 'synced', action: { reasons: ['schedule'] }, requeueAfterMs }) as unknown as ReconcileResult;

/** A controller whose reconcile takes `ms` and records who ran when, and how many at once. */
function harness(parallelism: number, result: (r: Replica) => ReconcileResult, ms = 1000) {
  const runs: { name: string; at: number }[] = [];
  const events: WatchEvent[] = [];
  let running = 0;
  let most = 0;
  const origins = new Set<string>();
  let sameOrigin = false;
  const controller = new WatchController({
    parallelism,
    random: () => 0,
    emit: (e) => events.push(e),
    reconcile: async (r, signal) => {
      runs.push({ name: r.name, at: Date.now() });
      const origin = r.origin.endpoint.address;
      if (origins.has(origin)) sameOrigin = true;
      origins.add(origin);
      most = Math.max(most, ++running);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve(undefined)));
      });
      running--;
      origins.delete(origin);
      return result(r);
    },
  });
  return { controller, runs, events, most: () => most, sameOrigin: () => sameOrigin };
}

describe('the watch loop', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('reconciles each replica when its schedule says, every cycle, two at once', async () => {
    const h = harness(2, (r) => done(r.name === 'a' ? 5000 : 8000));
    h.controller.setSpec(spec(replica('a', 'o1'), replica('b', 'o2')));
    await vi.advanceTimersByTimeAsync(40_000);
    const times = (name: string) => h.runs.filter((r) => r.name === name).map((r) => r.at);
    // Each run takes 1 s, then waits its schedule from the end of the run.
    expect(times('a')).toEqual([0, 6000, 12000, 18000, 24000, 30000, 36000]);
    expect(times('b')).toEqual([0, 9000, 18000, 27000, 36000]);
    expect(h.most()).toBe(2);
    expect(h.events.filter((e) => e.type === 'watch.result')[0]).toEqual({ type: 'watch.result', replica: 'a', outcome: 'synced', nextAt: new Date(6000).toISOString(), seconds: 1, reason: 'schedule' });
    await h.controller.stop('test');
  });

  it('never runs two replicas of one origin at once, nor more than parallelism', async () => {
    const h = harness(2, () => done(500), 1000);
    h.controller.setSpec(spec(replica('a', 'o1'), replica('b', 'o1'), replica('c', 'o2'), replica('d', 'o3')));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.sameOrigin()).toBe(false);
    expect(h.most()).toBe(2);
    for (const name of ['a', 'b', 'c', 'd']) expect(h.runs.filter((r) => r.name === name).length).toBeGreaterThanOrEqual(4);
    await h.controller.stop('test');
  });

  it('waits without spinning while a due replica is held back by its origin: the run that holds it wakes it', async () => {
    const h = harness(4, () => done(60_000), 10_000);
    h.controller.setSpec(spec(replica('a', 'o1'), replica('b', 'o1')));
    await vi.advanceTimersByTimeAsync(100);
    // Only the running sync's own timer: no pump armed for b, which is due but must wait.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.runs.map((r) => `${r.name}@${r.at}`)).toEqual(['a@0', 'b@10000']);
    await h.controller.stop('test');
  });

  it('backs off after failures, doubling up to a bound, and starts over after a success', async () => {
    let fail = 3;
    const h = harness(1, () =>
      fail-- > 0 ? ({ outcome: 'failed', action: { reasons: [] }, requeueAfterMs: 60_000, error: { message: 'no route', code: 'ssh.connect_failed', retryable: true } } as unknown as ReconcileResult) : done(5000),
    );
    h.controller.setSpec(spec(replica('a', 'o1')));
    await vi.advanceTimersByTimeAsync(600_000);
    const at = h.runs.map((r) => r.at);
    // 1 s each; then 60 s, 120 s, 240 s after the failures; then the schedule's 5 s.
    expect(at.slice(0, 5)).toEqual([0, 61_000, 182_000, 423_000, 429_000]);
    const failed = h.events.find((e) => e.type === 'watch.result' && e.outcome === 'failed');
    expect(failed).toMatchObject({ error: { code: 'ssh.connect_failed', retryable: true } });
    await h.controller.stop('test');
  });

  it('takes a new configuration at once: a new replica runs now, a changed one runs again as soon as its run ends, a removed one no more', async () => {
    const h = harness(4, () => done(60_000));
    h.controller.setSpec(spec(replica('a', 'o1'), replica('b', 'o2')));
    await vi.advanceTimersByTimeAsync(500); // both running
    const change = h.controller.setSpec(spec(replica('a', 'o1', 'h2'), replica('c', 'o3')));
    expect(change).toEqual({ added: ['c'], changed: ['a'], removed: ['b'] });
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.runs.map((r) => `${r.name}@${r.at}`)).toEqual(['a@0', 'b@0', 'c@500', 'a@1000']);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.runs.filter((r) => r.name === 'b')).toHaveLength(1);
    // A new schedule (the copy's shape, specHash, unchanged) is looked at now, not at the old time.
    const runs = h.runs.length;
    expect(h.controller.setSpec(spec(replica('a', 'o1', 'h2', { schedule: '5m' }), replica('c', 'o3')))).toEqual({ added: [], changed: ['a'], removed: [] });
    await vi.advanceTimersByTimeAsync(10);
    expect(h.runs.slice(runs).map((r) => r.name)).toEqual(['a']);
    await h.controller.stop('test');
  });

  it('stops: the running sync is told to end, and nothing starts after', async () => {
    const h = harness(2, () => done(1000), 10_000);
    h.controller.setSpec(spec(replica('a', 'o1')));
    await vi.advanceTimersByTimeAsync(100);
    const stopping = h.controller.stop('SIGTERM');
    await vi.advanceTimersByTimeAsync(0);
    await stopping;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.runs).toHaveLength(1);
    expect(h.events.filter((e) => e.type === 'watch.result')).toEqual([]);
  });

  it('gives each run a signal of its own, so a long watch gathers no listeners', async () => {
    const signals = new Set<AbortSignal>();
    const controller = new WatchController({ parallelism: 1, random: () => 0, emit: () => {}, reconcile: async (_r, signal) => (signals.add(signal), signal.addEventListener('abort', () => {}), done(1000)) });
    controller.setSpec(spec(replica('a', 'o1')));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(signals.size).toBeGreaterThan(20);
    await controller.stop('test');
  });

  it('retries a reconcile that threw, as a failure', async () => {
    let first = true;
    const controller = new WatchController({
      parallelism: 1,
      random: () => 0,
      emit: (e) => events.push(e),
      reconcile: async () => {
        if (first) {
          first = false;
          throw Object.assign(new Error('session lost'), { code: 'ssh.connect_failed' });
        }
        return done(1000);
      },
    });
    const events: WatchEvent[] = [];
    controller.setSpec(spec(replica('a', 'o1')));
    await vi.advanceTimersByTimeAsync(70_000);
    expect(events[0]).toMatchObject({ type: 'watch.result', outcome: 'failed', error: { message: 'session lost', code: 'ssh.connect_failed', retryable: true }, nextAt: new Date(60_000).toISOString() });
    expect(events[1]).toMatchObject({ outcome: 'synced' });
    await controller.stop('test');
  });
});
