import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Replica } from '../../src/config/spec.js';
import { AlertTracker } from '../../src/watch/alerts.js';
import { postAlert, shownUrl } from '../../src/watch/webhooks.js';

const replica = { name: 'web-dr', origin: { name: 'web' }, target: { endpoint: { address: '198.18.0.20' } }, policy: { rpoMs: 20_000 } } as unknown as Replica;
const at = (s: number) => new Date(s * 1000).toISOString();

describe('alerts', () => {
  it('says each episode once: failed when looks start failing, rpo-breached when the copy grows too old (also between looks), recovered when a good look ends both', () => {
    const t = new AlertTracker();
    expect(t.look(replica, { outcome: 'synced', asOf: at(0) }, 2_000)).toEqual([]);
    expect(t.look(replica, { outcome: 'verified', asOf: at(10) }, 11_000)).toEqual([]);
    const failed = t.look(replica, { outcome: 'failed', error: { code: 'ssh.connect_failed', message: 'cannot connect to 198.18.0.20:22' } }, 15_000);
    expect(failed).toMatchObject([{ type: 'rmm.alert', alert: 'failed', replica: 'web-dr', origin: 'web', target: '198.18.0.20', error: { code: 'ssh.connect_failed' }, lastConsistentAt: at(10), rpoMs: 20_000 }]);
    expect(t.look(replica, { outcome: 'failed', error: { code: 'ssh.connect_failed', message: 'again' } }, 20_000)).toEqual([]);
    expect(t.tick([replica], 29_000)).toEqual([]);
    const breached = t.tick([replica], 31_000);
    expect(breached).toMatchObject([{ alert: 'rpo-breached', message: 'replica web-dr is past its RPO of 20s: its copy is 21s old (consistent as of 1970-01-01T00:00:10.000Z)' }]);
    expect(t.tick([replica], 40_000)).toEqual([]);
    const recovered = t.look(replica, { outcome: 'synced', asOf: at(41) }, 45_000);
    expect(recovered).toMatchObject([{ alert: 'recovered', message: 'replica web-dr recovered: its syncs failing (cannot connect to 198.18.0.20:22) and its RPO breach ended; its copy is 4s old (consistent as of 1970-01-01T00:00:41.000Z)' }]);
    expect(t.look(replica, { outcome: 'verified', asOf: at(50) }, 51_000)).toEqual([]);
  });

  it('ends an episode only with the recovered that says so: a good look while the copy is still too old ends nothing, and a failure then is no second failed', () => {
    const t = new AlertTracker();
    t.look(replica, { outcome: 'synced', asOf: at(0) }, 1000);
    expect(t.look(replica, { outcome: 'failed', error: { code: 'x.y', message: 'down' } }, 25_000).map((a) => a.alert)).toEqual(['failed', 'rpo-breached']);
    expect(t.look(replica, { outcome: 'suspended' }, 30_000)).toEqual([]);
    expect(t.look(replica, { outcome: 'failed', error: { code: 'x.y', message: 'down again' } }, 35_000)).toEqual([]);
    expect(t.look(replica, { outcome: 'synced', asOf: at(36) }, 40_000).map((a) => a.alert)).toEqual(['recovered']);
  });

  it('never breaches a replica without an RPO or without a copy yet', () => {
    const t = new AlertTracker();
    const noRpo = { ...replica, policy: {} } as unknown as Replica;
    t.look(noRpo, { outcome: 'synced', asOf: at(0) }, 1000);
    expect(t.tick([noRpo], 10_000_000)).toEqual([]);
    const fresh = { ...replica, name: 'never-copied' } as unknown as Replica;
    expect(t.tick([fresh], 10_000_000)).toEqual([]);
  });

  it('posts an alert as JSON, retries an answer of 5xx, gives up on a 4xx, and shows only where it went', async () => {
    const got: { path: string; body: unknown }[] = [];
    let status = [503, 200];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ path: req.url ?? '', body: JSON.parse(body) });
        res.statusCode = status.shift() ?? 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/s3cr3t-token`;
    try {
      const alert = new AlertTracker().look(replica, { outcome: 'failed', error: { code: 'x.y', message: 'boom' } }, 1000)[0]!;
      expect(await postAlert(url, alert)).toEqual({ delivered: true });
      expect(got).toHaveLength(2);
      expect(got[1]).toEqual({ path: '/hooks/s3cr3t-token', body: alert });
      status = [404];
      expect(await postAlert(url, alert)).toEqual({ delivered: false, problem: 'HTTP 404' });
      expect(shownUrl(url)).toBe(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.close();
    }
    // Nobody listening: said, bounded.
    expect(await postAlert(url, new AlertTracker().look(replica, { outcome: 'failed' }, 0)[0]!, { attempts: 1 })).toEqual({ delivered: false, problem: expect.stringMatching(/^cannot reach it/) });
  });
});

describe('a webhook in the configuration', () => {
  it('is checked, and a bad one named by file, line and field without showing its URL (it may hold a token)', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { rmm } = await import('../support/cli.js');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rmm-hook-')), 'policy.yaml');
    writeFileSync(file, 'apiVersion: rmm/v1\nkind: Policy\nmetadata: { name: p }\nspec:\n  alerts:\n    webhooks:\n      - url: ftp://s3cret@example.com/x\n      - { url: "https://example.com/ok", events: [sometimes] }\n');
    const { code, err } = await rmm('validate', '-f', file);
    expect(code).toBe(2);
    expect(err).toContain(`${file}:7:14: spec.alerts.webhooks[0].url: is not an http:// or https:// URL`);
    expect(err).toMatch(/:8:\d+: spec\.alerts\.webhooks\[1\]\.events\[0\]: .*rpo-breached/);
    expect(err).not.toContain('s3cret');
    writeFileSync(file, 'apiVersion: rmm/v1\nkind: Policy\nmetadata: { name: p }\nspec:\n  alerts:\n    webhooks:\n      - url: https://me:s3cret@example.com/x\n');
    const credentials = await rmm('validate', '-f', file);
    expect(credentials.err).toContain(`${file}:7:14: spec.alerts.webhooks[0].url: carries a user or password`);
    expect(credentials.err).not.toContain('s3cret');
  });
});

describe('a webhook and the plan', () => {
  it('stays out of what a plan carries (and so its JSON and saved file): alerts change nothing apply does, and the URL may hold a token', async () => {
    const { loadSpec } = await import('../../src/config/load.js');
    const { applyInputs, InputsCache } = await import('../../src/plan/inputs.js');
    const { spec } = await loadSpec(['examples/dr-ipremap-asm.yaml']);
    const replica = spec.replicas.find((r) => r.policy.alerts)!;
    expect(replica.policy.alerts?.webhooks[0]?.url).toBe('https://oncall.example.com/hooks/rmm');
    const inputs = applyInputs(replica, undefined, new InputsCache(new Map()));
    expect(JSON.stringify(inputs)).not.toContain('oncall.example.com');
    expect(inputs.policy.rpoMs).toBe(replica.policy.rpoMs);
  });
});
