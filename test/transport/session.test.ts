import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectError,
  HostKeyChangedError,
  HostKeyUnknownError,
  RemoteCommandError,
  TimeoutError,
} from '../../src/transport/errors.js';
import { createSessionPool } from '../../src/transport/pool.js';
import { openSession, type SessionOptions, type SshSession } from '../../src/transport/session.js';
import { labUnavailable, useLabTarget, type LabTarget } from './support/lab-target.js';

const skip = labUnavailable();
const title = skip ? `SSH sessions against the lab — SKIPPED: ${skip}` : 'SSH sessions against the lab';

// Another host key, for "the key of this address changed".
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA0Iy8ROnjDddIX25VIMA38GdueYpuPVkISGKwDyoki7';

describe.skipIf(skip)(title, () => {
  let fx: LabTarget;
  const sessions: SshSession[] = [];

  const options = (over: Partial<SessionOptions> = {}): SessionOptions => ({
    host: fx.host,
    port: fx.port,
    user: 'root',
    auth: { keyFile: fx.clientKey },
    knownHostsFile: fx.knownHosts,
    connectTimeoutMs: 5_000,
    ...over,
  });
  const open = async (over: Partial<SessionOptions> = {}) => {
    const session = await openSession(options(over));
    sessions.push(session);
    return session;
  };
  const logins = () => fx.sshdLog().match(/Accepted publickey/g)?.length ?? 0;
  const hostKey = (type: string) => fx.hostKeys.get(type)?.toString('base64') ?? '';
  const tmpFile = (name: string, text: string) => {
    const path = join(fx.dir, `${name}-${randomBytes(4).toString('hex')}`);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };

  beforeAll(async () => {
    fx = await useLabTarget();
  }, 30 * 60_000);
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await fx?.release();
  }, 120_000);

  describe('exec', () => {
    let root: SshSession;
    beforeAll(async () => {
      root = await open();
    });

    it('returns stdout, stderr and the exit code', async () => {
      expect(await root.exec(['sh', '-c', 'echo out; echo err >&2'])).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 0, signal: null });
      expect((await root.exec(['sh', '-c', 'exit 3'], { allowFailure: true })).exitCode).toBe(3);
      expect((await root.exec(['sh', '-c', 'exit 24'], { okCodes: [0, 24] })).exitCode).toBe(24);
    });

    it('gets the exit status of quick commands, whose status can come with the exec reply', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => root.exec(['sh', '-c', `echo ${i}; exit ${i % 3}`], { allowFailure: true })));
      expect(results.map((r) => r.exitCode)).toEqual(Array.from({ length: 200 }, (_, i) => i % 3));
    });

    it('passes hostile arguments through byte for byte', async () => {
      const args = ['', ' ', "it's", 'a\nb', '$(touch /tmp/rmm-pwned)', '`id`', '$HOME', '*', '/etc/*', '~', '-rf', '--', 'a;b|c&d', '\\', '"', 'héllo', '日本語', '🙂', 'x=1', '\t'];
      const { stdout } = await root.exec(['printf', '%s\\0', ...args]);
      expect(stdout.split('\0').slice(0, -1)).toEqual(args);
      expect(existsSync('/tmp/rmm-pwned')).toBe(false);
    });

    it('feeds stdin and passes env as a prefix', async () => {
      const data = randomBytes(1 << 20);
      const { stdout } = await root.exec(['sha256sum'], { stdin: data });
      expect(stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      const env = await root.exec(['sh', '-c', 'printf %s "$RMM_REPLICA"'], { env: { RMM_REPLICA: "web 1's $(id)" } });
      expect(env.stdout).toBe("web 1's $(id)");
    });

    it('rejects a non-zero exit with RemoteCommandError saying what the code means', async () => {
      const err = await root.exec(['rsync', '--no-such-option']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteCommandError);
      const failure = err as RemoteCommandError;
      expect(failure).toMatchObject({ code: 'remote.command_failed', host: fx.host, exitCode: 1, meaning: 'syntax or usage error' });
      // One line that leads with the cause; the command as sent is the detail (--verbose, JSON).
      expect(failure.message).toMatch(new RegExp(`^rsync failed on ${fx.host.replaceAll('.', '\\.')} \\(exit code 1\\): .*no-such-option`));
      expect(failure.message).not.toContain('\n');
      expect(failure.detail).toContain('rsync --no-such-option');
      expect(failure.toJSON()).toMatchObject({ exitCode: 1, meaning: 'syntax or usage error', argv: ['rsync', '--no-such-option'] });
      expect(failure.stderr).toContain('no-such-option');

      const missing = (await root.exec(['rmm-no-such-command']).catch((e: unknown) => e)) as RemoteCommandError;
      expect(missing).toMatchObject({ exitCode: 127, meaning: 'command not found' });
    });

    it('times out, and the remote command is gone, also under sudo', async () => {
      const sudoer = await open({ user: fx.users.sudoer, sudo: true });
      for (const session of [root, sudoer]) {
        const started = Date.now();
        const err = await session.exec(['sleep', '31.4159'], { timeoutMs: 700 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TimeoutError);
        expect(err).toMatchObject({ code: 'remote.command_timeout', facts: { timeoutMs: 700, host: fx.host } });
        expect(Date.now() - started).toBeLessThan(5_000);
        const left = await root.exec(['pgrep', '-f', 'sleep 31.4159'], { allowFailure: true });
        expect(left.exitCode).toBe(1);
      }
    });

    it('reports the negotiated cipher, defaulting to aes128-gcm, and the server ident', async () => {
      expect(root.info.cipher).toBe('aes128-gcm@openssh.com');
      expect(root.info.serverIdent).toMatch(/^OpenSSH_/);
      expect(root.info.hostKey.sha256).toMatch(/^SHA256:/);
    });
  });

  describe('host keys', () => {
    it('refuses an unknown host key before logging in', async () => {
      const before = logins();
      const knownHostsFile = join(fx.dir, 'empty-known-hosts');
      const err = await openSession(options({ knownHostsFile })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostKeyUnknownError);
      const message = (err as Error).message;
      expect(message).toContain(fx.host);
      expect(message).toMatch(/ssh-ed25519 SHA256:/);
      expect(message).toContain(`ssh-keyscan -p ${fx.port} ${fx.host} >> ${knownHostsFile}`);
      expect(message).toContain('--trust-new-host-keys');
      expect(existsSync(knownHostsFile)).toBe(false);
      expect(logins()).toBe(before);
    });

    it('refuses a changed host key even with trustNewHostKeys, and leaves known_hosts alone', async () => {
      const text = `# line 1\n${fx.host} ${OTHER_KEY}\n`;
      const knownHostsFile = tmpFile('changed', text);
      const before = logins();
      const err = await openSession(options({ knownHostsFile, trustNewHostKeys: true })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostKeyChangedError);
      expect((err as Error).message).toMatch(/CHANGED/);
      expect((err as Error).message).toContain(`${knownHostsFile} line 2`);
      expect((err as HostKeyChangedError).toJSON()).toMatchObject({ code: 'ssh.host_key_changed', line: 2, knownHostsFile });
      expect(readFileSync(knownHostsFile, 'utf8')).toBe(text);
      expect(logins()).toBe(before);
    });

    it('trusts a new key on first use when asked, and matches it next time', async () => {
      const knownHostsFile = join(fx.dir, `tofu-${randomBytes(4).toString('hex')}`, 'known_hosts');
      const told: unknown[] = [];
      const first = await open({ knownHostsFile, trustNewHostKeys: true, onNewHostKey: (k) => told.push(k) });
      expect((await first.exec(['true'])).exitCode).toBe(0);
      expect(told).toEqual([{ host: fx.host, port: 22, fingerprint: first.info.hostKey, knownHostsFile }]);
      expect(statSync(knownHostsFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(knownHostsFile, 'utf8')).toBe(`${fx.host} ssh-ed25519 ${hostKey('ssh-ed25519')}\n`);
      const second = await open({ knownHostsFile, trustNewHostKeys: true, onNewHostKey: (k) => told.push(k) });
      expect(second.info.hostKey).toEqual(first.info.hostKey);
      expect(told).toHaveLength(1);
    });

    it('asks the server for the key type known_hosts has', async () => {
      for (const type of ['ecdsa-sha2-nistp256', 'ssh-rsa']) {
        const knownHostsFile = tmpFile('one-type', `${fx.host} ${type} ${hostKey(type)}\n`);
        const session = await open({ knownHostsFile });
        expect(session.info.hostKey.keyType).toBe(type);
      }
    });
  });

  describe('sudo', () => {
    it('runs as root through sudo -n for a non-root user', async () => {
      const session = await open({ user: fx.users.sudoer, sudo: true });
      expect((await session.exec(['id', '-u'])).stdout).toBe('0\n');
      expect((await session.exec(['id', '-u'], { sudo: false })).stdout).not.toBe('0\n');
      expect(session.command(['id', '-u'])).toBe('sudo -n -- id -u');
    });

    it('never uses sudo on its own: a privileged command on a host whose connection has no sudo runs as the login user', async () => {
      const session = await open({ user: fx.users.sudoer });
      expect(session.command(['id', '-u'], { sudo: true })).toBe('id -u');
      expect((await session.exec(['id', '-u'], { sudo: true })).stdout).not.toBe('0\n');
    });

    it('does not prefix sudo for root', async () => {
      const session = await open({ sudo: true });
      expect(session.command(['id'])).toBe('id');
    });
  });

  describe('authentication', () => {
    it('logs in with an encrypted key whose passphrase is in an env var', async () => {
      process.env.RMM_TEST_PASSPHRASE = fx.passphrase;
      const session = await open({ auth: { keyFile: fx.encryptedKey, passphraseEnv: 'RMM_TEST_PASSPHRASE' } });
      expect((await session.exec(['true'])).exitCode).toBe(0);
    });

    it('names the env var, never the passphrase or the key, when the passphrase is wrong or missing', async () => {
      process.env.RMM_TEST_PASSPHRASE = 'Tr0ub4dor&3-not-it';
      const wrong = await openSession(options({ auth: { keyFile: fx.encryptedKey, passphraseEnv: 'RMM_TEST_PASSPHRASE' } })).catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(AuthenticationError);
      expect(wrong).toMatchObject({ facts: { reason: 'key-invalid' } });
      const missing = await openSession(options({ auth: { keyFile: fx.encryptedKey } })).catch((e: unknown) => e);
      expect(missing).toMatchObject({ facts: { reason: 'passphrase-needed' } });
      const keyText = readFileSync(fx.encryptedKey, 'utf8');
      for (const err of [wrong, missing]) {
        const all = JSON.stringify((err as AuthenticationError).toJSON()) + (err as Error).message;
        expect(all).not.toContain('Tr0ub4dor&3-not-it');
        expect(all).not.toContain(keyText.split('\n')[1]);
      }
    });

    it('reads the key path from keyEnv', async () => {
      process.env.RMM_TEST_KEY = fx.clientKey;
      const session = await open({ auth: { keyEnv: 'RMM_TEST_KEY' } });
      expect((await session.exec(['true'])).exitCode).toBe(0);
      delete process.env.RMM_TEST_KEY;
      await expect(openSession(options({ auth: { keyEnv: 'RMM_TEST_KEY' } }))).rejects.toThrow(/\$RMM_TEST_KEY is not set/);
    });

    it('reports a key the server refuses as AuthenticationError', async () => {
      const err = await openSession(options({ auth: { keyFile: fx.strangerKey } })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthenticationError);
      expect(err).toMatchObject({ code: 'ssh.auth_failed', facts: { reason: 'rejected', user: 'root' } });
    });

    describe('with ssh-agent', () => {
      let agent: ChildProcess | undefined;
      let socket = '';
      beforeAll(async () => {
        socket = join(fx.dir, 'agent.sock');
        agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
        for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
        execFileSync('ssh-add', ['-q', fx.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      });
      afterAll(() => {
        agent?.kill();
      });

      it('logs in with a key held by the agent', async () => {
        const session = await open({ auth: { agent: socket } });
        expect((await session.exec(['true'])).exitCode).toBe(0);
      });
    });
  });

  describe('ciphers', () => {
    it('honours the preference list', async () => {
      const session = await open({ ciphers: ['aes128-ctr'] });
      expect(session.info.cipher).toBe('aes128-ctr');
      expect((await session.exec(['true'])).exitCode).toBe(0);
    });

    it('rejects an unknown cipher name before connecting', async () => {
      await expect(openSession(options({ ciphers: ['aes999-ctr'] }))).rejects.toThrow(/Unsupported algorithm: aes999-ctr/);
    });
  });

  describe('connection failures', () => {
    it('says the connection was refused, with host:port', async () => {
      const err = await openSession(options({ port: 2299 })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(err).toMatchObject({ facts: { reason: 'refused', port: 2299 } });
      expect((err as Error).message).toContain(`${fx.host}:2299`);
    });

    it('times out on an address nobody answers', async () => {
      const err = await openSession(options({ host: '198.18.0.77', connectTimeoutMs: 1_000 })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(['timeout', 'unreachable']).toContain((err as ConnectError).facts.reason);
    });
  });

  describe('streaming and files', () => {
    let root: SshSession;
    beforeAll(async () => {
      root = await open();
    });

    it('streams 50 MiB through cat intact', async () => {
      const data = randomBytes(50 * 1024 * 1024);
      const proc = await root.spawn(['cat']);
      const received = createHash('sha256');
      proc.channel.on('data', (chunk: Buffer) => received.update(chunk));
      await pipeline(Readable.from(chunkify(data, 1 << 20)), proc.channel);
      const status = await proc.wait();
      expect(status).toEqual({ exitCode: 0, signal: null, stderr: '' });
      expect(received.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    });

    it('holds more commands open than one connection allows (MaxSessions 10), on further connections', async () => {
      const session = await open();
      // Each holds its channel until its stdin ends, as a freeze holder or a tar stream does.
      const held = await Promise.all(Array.from({ length: 20 }, () => session.spawn(['sh', '-c', 'echo up; cat >/dev/null'])));
      await Promise.all(held.map((p) => new Promise((resolve) => p.channel.once('data', resolve))));
      expect((await session.exec(['echo', 'still answering'])).stdout).toBe('still answering\n');
      for (const p of held) {
        p.channel.resume();
        p.channel.end();
      }
      expect((await Promise.all(held.map((p) => p.exit))).every((s) => s.exitCode === 0)).toBe(true);
      await session.close();
    });

    it('gives a command waiting for a channel the first one to close on any connection', async () => {
      const session = await open();
      const connection = async (p: Awaited<ReturnType<SshSession['spawn']>>) => (await once(p.channel, 'data'))[0].toString().trim();
      // The first connection is the one a session starts with; fill it and the three more it may open.
      const first = (await session.exec(['sh', '-c', 'echo $SSH_CONNECTION'])).stdout.trim();
      const held = await Promise.all(Array.from({ length: 32 }, () => session.spawn(['sh', '-c', 'echo $SSH_CONNECTION; cat >/dev/null'])));
      const connections = await Promise.all(held.map(connection));
      expect(new Set(connections).size).toBe(4);
      const waiting = session.exec(['echo', 'answered']);
      // Channels close on the other connections only: the one on the first stays held.
      const others = held.filter((_, i) => connections[i] !== first);
      for (const p of others) {
        p.channel.resume();
        p.channel.end();
      }
      expect((await waiting).stdout).toBe('answered\n');
      for (const p of held) {
        p.channel.resume();
        p.channel.end();
      }
      await Promise.all(held.map((p) => p.exit));
      await session.close();
    });

    it('gives a spawned command its exit status and stderr', async () => {
      const proc = await root.spawn(['sh', '-c', 'echo oops >&2; exit 12']);
      proc.channel.resume();
      expect(await proc.exit).toEqual({ exitCode: 12, signal: null, stderr: 'oops\n' });
      await expect(proc.wait()).rejects.toBeInstanceOf(RemoteCommandError);
    });

    it('kills a spawned command: by a signal for a plain non-root login, by EOF for root', async () => {
      // sshd signals as the login user (so not a sudo'd command) and ignores signals on root logins.
      const sudoer = await open({ user: fx.users.sudoer });
      const sleeper = await sudoer.spawn(['sh', '-c', 'echo started; exec sleep 30']);
      // A signal sent before the command has started is lost (sshd's killpg finds no group yet).
      await new Promise((resolve) => sleeper.channel.once('data', resolve));
      sleeper.channel.resume();
      sleeper.kill();
      expect(await sleeper.exit).toMatchObject({ exitCode: null, signal: 'SIGTERM' });

      const reader = await root.spawn(['sh', '-c', 'cat; echo stdin closed >&2']);
      reader.channel.resume();
      reader.kill();
      expect(await reader.exit).toEqual({ exitCode: 0, signal: null, stderr: 'stdin closed\n' });
    });

    it('writes a file atomically with the mode asked, and reads it back', async () => {
      const dir = (await root.exec(['mktemp', '-d', '/tmp/rmmt-files-XXXXXX'])).stdout.trim();
      const path = `${dir}/replica record.json`;
      const data = Buffer.from('{"state":"consistent"}\n\u0000binary\u00ff');
      await root.writeFileAtomic(path, data, { mode: 0o640 });
      expect(await root.readFile(path)).toEqual(data);
      expect((await root.exec(['stat', '-c', '%a %U', path])).stdout).toBe('640 root\n');
      await root.writeFileAtomic(path, 'second\n');
      expect((await root.readFile(path)).toString()).toBe('second\n');
      expect((await root.exec(['stat', '-c', '%a', path])).stdout).toBe('640\n');
      expect((await root.exec(['ls', '-A', dir])).stdout).toBe('replica record.json\n');
      await root.exec(['rm', '-rf', '--', dir]);
    });

    it('writes a root-owned file through sudo', async () => {
      const session = await open({ user: fx.users.sudoer, sudo: true });
      const dir = (await session.exec(['mktemp', '-d', '/root/rmmt-XXXXXX'])).stdout.trim();
      await session.writeFileAtomic(`${dir}/fstab`, 'UUID=x / xfs defaults 0 1\n');
      expect((await session.readFile(`${dir}/fstab`)).toString()).toBe('UUID=x / xfs defaults 0 1\n');
      expect((await session.exec(['stat', '-c', '%a %U', `${dir}/fstab`])).stdout).toBe('644 root\n');
      await expect(session.readFile(`${dir}/fstab`, { sudo: false })).rejects.toBeInstanceOf(RemoteCommandError);
      await session.exec(['rm', '-rf', '--', dir]);
    });
  });

  describe('pool', () => {
    it('reuses one session per host, port and user, and reopens a closed one', async () => {
      const pool = createSessionPool();
      const [a, b] = await Promise.all([pool.get(options()), pool.get(options())]);
      expect(a).toBe(b);
      const other = await pool.get(options({ user: fx.users.sudoer }));
      expect(other).not.toBe(a);
      await a?.close();
      const reopened = await pool.get(options());
      expect(reopened).not.toBe(a);
      expect((await reopened.exec(['true'])).exitCode).toBe(0);
      await pool.closeAll();
      expect(reopened.closed).toBe(true);
      expect(other.closed).toBe(true);
    });

    it('says a closed session is closed', async () => {
      const session = await openSession(options());
      await session.close();
      await expect(session.exec(['true'])).rejects.toBeInstanceOf(ConnectError);
    });
  });
});

function* chunkify(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
