import { describe, expect, it } from 'vitest';
import type { Replica } from '../../src/config/spec.js';
import { parseAddress, WatchMetrics } from '../../src/watch/metrics.js';

const replica = (name: string, rpoMs?: number) => ({ name, policy: rpoMs === undefined ? {} : { rpoMs } }) as unknown as Replica;

describe('watch metrics and status page', () => {
  it('serves Prometheus metrics and a status page made from the watch events, read-only', async () => {
    let now = Date.parse('2026-12-07T12:00:30Z');
    const m = new WatchMetrics(() => now);
    m.setReplicas([replica('web-dr', 20_000), replica('db-<dr>', 10_000)]);
    m.observe({ type: 'filesystem.done', replica: 'web-dr', mountPoint: '/', files: 10, bytesSent: 1234, bytesTotal: 5000 });
    m.observe({ type: 'watch.result', replica: 'web-dr', outcome: 'synced', nextAt: '2026-12-07T12:00:35Z', seconds: 2.5, asOf: '2026-12-07T12:00:20Z' });
    m.observe({ type: 'watch.result', replica: 'db-<dr>', outcome: 'failed', nextAt: '2026-12-07T12:01:30Z', seconds: 3, error: { code: 'ssh.connect_failed', message: 'no route <to> host', retryable: true } });
    m.observe({ type: 'watch.alert', replica: 'db-<dr>', alert: 'failed', to: 'http://198.18.0.1:9', delivered: true });
    const served = await m.serve('127.0.0.1:0');
    try {
      const text = await (await fetch(`${served.url}/metrics`)).text();
      expect(text).toContain('rmm_replica_looks_total{replica="web-dr",outcome="synced"} 1');
      expect(text).toContain('rmm_replica_sent_bytes_total{replica="web-dr"} 1234');
      expect(text).toContain('rmm_replica_consistent_age_seconds{replica="web-dr"} 10');
      expect(text).toContain('rmm_replica_rpo_seconds{replica="web-dr"} 20');
      expect(text).toContain('rmm_replica_within_rpo{replica="web-dr"} 1');
      expect(text).toContain('rmm_replica_within_rpo{replica="db-<dr>"} 0');
      expect(text).toContain('rmm_replica_failing{replica="db-<dr>"} 1');
      expect(text).toContain('rmm_replica_last_look_seconds{replica="web-dr"} 2.5');
      expect(text).toContain('rmm_replica_alerts_total{replica="db-<dr>",alert="failed",delivered="true"} 1');
      // Ages count at the scrape.
      now += 15_000;
      expect(await (await fetch(`${served.url}/metrics`)).text()).toContain('rmm_replica_within_rpo{replica="web-dr"} 0');
      const page = await (await fetch(`${served.url}/`)).text();
      expect(page).toContain('<td>web-dr</td><td>synced</td><td>25s ago</td><td>20s</td><td>NO</td>');
      expect(page).toContain('<td>db-&#60;dr&#62;</td>');
      expect(page).toContain('ssh.connect_failed: no route &#60;to&#62; host');
      expect(page).not.toContain('<to>');
      expect((await fetch(`${served.url}/metrics`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${served.url}/other`)).status).toBe(404);
    } finally {
      await served.close();
    }
  });

  it('takes HOST:PORT, [V6]:PORT and :PORT', () => {
    expect(parseAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseAddress(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(() => parseAddress('9464')).toThrow("'9464' is not HOST:PORT");
    expect(() => parseAddress('h:99999')).toThrow();
  });
});
