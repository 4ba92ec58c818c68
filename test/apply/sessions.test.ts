import { describe, expect, it } from 'vitest';
import { sessionOptions } from '../../src/apply/sessions.js';
import type { Endpoint } from '../../src/config/spec.js';

const endpoint = (heartbeatTimeoutMs: number) =>
  ({ name: 'h', address: '198.18.0.10', port: 22, user: 'rmm', sudo: true, auth: { kind: 'keyFile', path: '/k' }, knownHostsFile: '/kh', ciphers: [], connectTimeoutMs: 15_000, heartbeatTimeoutMs }) as unknown as Endpoint;

describe('the SSH session of an endpoint', () => {
  it("gives a host up after as long without an answer as the host waits for rmm (heartbeatTimeout), 30 s at least", () => {
    expect(sessionOptions(endpoint(30_000), false)).toMatchObject({ keepaliveIntervalMs: 10_000, keepaliveCountMax: 3 });
    expect(sessionOptions(endpoint(60_000), false)).toMatchObject({ keepaliveIntervalMs: 10_000, keepaliveCountMax: 6 });
    expect(sessionOptions(endpoint(10_000), false)).toMatchObject({ keepaliveCountMax: 3 });
  });
});
