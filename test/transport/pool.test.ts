import { describe, expect, it } from 'vitest';
import { ConnectError } from '../../src/transport/errors.js';
import { createSessionPool } from '../../src/transport/pool.js';
import type { SessionOptions, SshSession } from '../../src/transport/session.js';

/** Just enough of a session for the pool: it only looks at `closed` and calls `close`. */
function fakeOpener() {
  const opened: { opts: SessionOptions; session: { closed: boolean; close(): Promise<void> } }[] = [];
  let failNext = false;
  const open = async (opts: SessionOptions) => {
    await new Promise((r) => setTimeout(r, 5));
    if (failNext) {
      failNext = false;
      throw new ConnectError({ host: opts.host, port: opts.port ?? 22, reason: 'refused' });
    }
    const session = {
      closed: false,
      close: async () => {
        session.closed = true;
      },
    };
    opened.push({ opts, session });
    return session as unknown as SshSession;
  };
  return { open, opened, failNext: () => (failNext = true) };
}

const opts = (user = 'root', port = 22): SessionOptions => ({ host: '198.18.0.10', port, user, auth: { agent: true }, knownHostsFile: '/k' });

describe('session pool', () => {
  it('opens one session per host, port and user, even for concurrent callers', async () => {
    const fake = fakeOpener();
    const pool = createSessionPool(fake.open);
    const [a, b, c, d] = await Promise.all([pool.get(opts()), pool.get(opts()), pool.get(opts('rmm')), pool.get(opts('root', 2222))]);
    expect(a).toBe(b);
    expect(new Set([a, c, d]).size).toBe(3);
    expect(fake.opened).toHaveLength(3);
  });

  it('does not keep a failed open, and replaces a closed session', async () => {
    const fake = fakeOpener();
    const pool = createSessionPool(fake.open);
    fake.failNext();
    await expect(pool.get(opts())).rejects.toBeInstanceOf(ConnectError);
    const first = await pool.get(opts());
    await first.close();
    const second = await pool.get(opts());
    expect(second).not.toBe(first);
    await pool.closeAll();
    expect(second.closed).toBe(true);
  });
});
