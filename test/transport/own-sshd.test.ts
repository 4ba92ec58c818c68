/**
 * Cases the lab cannot host, against a throwaway sshd (support/sshd.ts): a second port, a user
 * whose sudo needs a password, and OpenSSH's default limit of 10 sessions per connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostKeyUnknownError, SudoError } from '../../src/transport/errors.js';
import { openSession, type SessionOptions, type SshSession } from '../../src/transport/session.js';
import { hasSudo, sshdUnavailable, startSshd, type SshdFixture } from './support/sshd.js';

const skip = sshdUnavailable();
const title = skip ? `SSH sessions against a throwaway sshd — SKIPPED: ${skip}` : 'SSH sessions against a throwaway sshd';

describe.skipIf(skip)(title, () => {
  let fx: SshdFixture;
  const sessions: SshSession[] = [];
  const open = async (over: Partial<SessionOptions> = {}) => {
    const session = await openSession({ ...options(), ...over });
    sessions.push(session);
    return session;
  };
  const options = (): SessionOptions => ({
    host: fx.host,
    port: fx.port,
    user: 'root',
    auth: { keyFile: fx.clientKey },
    knownHostsFile: fx.knownHosts,
  });

  beforeAll(async () => {
    fx = await startSshd();
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await fx?.stop();
  });

  it('uses [host]:port known_hosts entries for a non-standard port', async () => {
    const session = await open({ port: fx.altPort });
    expect((await session.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    const onlyPort22 = join(fx.dir, 'known_hosts-22');
    writeFileSync(onlyPort22, `${fx.host} ssh-ed25519 ${fx.hostKey.toString('base64')}\n`);
    const err = await openSession({ ...options(), port: fx.altPort, knownHostsFile: onlyPort22 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyUnknownError);
    expect((err as Error).message).toContain(`ssh-keyscan -p ${fx.altPort} ${fx.host} >> ${onlyPort22}`);
  });

  it.skipIf(!hasSudo())('says when sudo wants a password (skipped when this machine has no sudo)', async () => {
    const session = await open({ user: fx.users.passwordSudoer, sudo: true });
    const err = await session.exec(['id', '-u']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SudoError);
    expect(err).toMatchObject({ code: 'remote.sudo_failed', facts: { reason: 'password-required', user: fx.users.passwordSudoer } });
    expect((err as Error).message).toContain('NOPASSWD');
  });

  it('runs more commands at once than sshd allows sessions (MaxSessions 10)', async () => {
    const root = await open();
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => root.exec(['sh', '-c', `sleep 0.2; echo ${i}`])));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 25 }, (_, i) => `${i}\n`));
  });
});
