/**
 * One SSH session per (host, port, user) within a run. A session whose connection dropped is
 * replaced on the next `get`, which is the transport's reconnect.
 */
import { openSession, type SessionOptions, type SshSession } from './session.js';

export interface SessionPool {
  get(opts: SessionOptions): Promise<SshSession>;
  closeAll(): Promise<void>;
}

/** `onNewHostKey` goes with every session's options: what --trust-new-host-keys added is said. */
export function createSessionPool(open: (opts: SessionOptions) => Promise<SshSession> = openSession, always: Pick<SessionOptions, 'onNewHostKey'> = {}): SessionPool {
  const sessions = new Map<string, Promise<SshSession>>();

  const get = async (opts: SessionOptions): Promise<SshSession> => {
    const key = `${opts.user}@${opts.host}:${opts.port ?? 22}`;
    const existing = sessions.get(key);
    if (existing) {
      const session = await existing.catch(() => undefined);
      if (session && !session.closed) return session;
      if (sessions.get(key) !== existing) return get(opts); // another caller is already reopening
    }
    const opening = open({ ...always, ...opts });
    sessions.set(key, opening);
    // A failed open is not cached: the next get tries again.
    opening.catch(() => sessions.get(key) === opening && sessions.delete(key));
    return opening;
  };

  const closeAll = async (): Promise<void> => {
    const all = [...sessions.values()];
    sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.close(), () => undefined)));
  };

  return { get, closeAll };
}
