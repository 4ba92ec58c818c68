import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectError,
  HostKeyChangedError,
  HostKeyUnknownError,
  MAX_OUTPUT_CHARS,
  RemoteCommandError,
  SudoError,
  TimeoutError,
} from '../../src/transport/errors.js';
import { exitCodeMeaning } from '../../src/transport/exit-codes.js';

const fingerprint = { keyType: 'ssh-ed25519', sha256: 'SHA256:YRtQb/HX0YCy68K4G5x7NiSE/eLuQJA6e2tyA/TIHbQ' };

describe('exit code meanings', () => {
  it('uses rsync(1) for rsync and sh conventions otherwise', () => {
    const rsync = [0, 1, 2, 3, 5, 6, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 35];
    for (const code of rsync) expect(exitCodeMeaning('/usr/bin/rsync', code)).toBeTruthy();
    expect(exitCodeMeaning('rsync', 23)).toBe('partial transfer due to error');
    expect(exitCodeMeaning('rsync', 24)).toBe('partial transfer due to vanished source files');
    expect(exitCodeMeaning('cp', 23)).toBeUndefined();
    expect(exitCodeMeaning('cp', 1)).toBeUndefined();
    expect(exitCodeMeaning('foo', 126)).toMatch(/not executable/);
    expect(exitCodeMeaning('rsync', 127)).toBe('command not found');
    expect(exitCodeMeaning('ssh', 255)).toMatch(/ssh failed/);
    expect(exitCodeMeaning('sleep', 143)).toBe('killed by signal 15 (SIGTERM)');
  });
});

describe('transport errors', () => {
  it('RemoteCommandError has the shape of a result, plus host and meaning, with output truncated', () => {
    const stderr = `${'x'.repeat(MAX_OUTPUT_CHARS)}\nrsync error: some files could not be transferred (code 23)\n`;
    const err = new RemoteCommandError({
      host: '198.18.0.10',
      command: "rsync -aHAX / 'root@t:/srv/a b/'",
      argv: ['rsync', '-aHAX', '/', 'root@t:/srv/a b/'],
      exitCode: 23,
      signal: null,
      stdout: '',
      stderr,
    });
    expect(err.message).toBe(
      "command failed on 198.18.0.10 with exit code 23 (partial transfer due to error): rsync -aHAX / 'root@t:/srv/a b/'\n" +
        `${'x'.repeat(MAX_OUTPUT_CHARS)}\nrsync error: some files could not be transferred (code 23)`,
    );
    expect(err.stderr.length).toBeLessThan(stderr.length + 100);
    expect(err.stderr).toMatch(/^\[… \d+ characters cut …\]\n/);
    expect(err.stderr.endsWith('(code 23)\n')).toBe(true);
    expect(err.toJSON()).toMatchObject({
      error: 'RemoteCommandError',
      code: 'REMOTE_COMMAND_FAILED',
      host: '198.18.0.10',
      exitCode: 23,
      signal: null,
      meaning: 'partial transfer due to error',
      argv: ['rsync', '-aHAX', '/', 'root@t:/srv/a b/'],
    });
  });

  it('RemoteCommandError names a signal', () => {
    const err = new RemoteCommandError({ host: 'h', command: 'sleep 9', argv: ['sleep', '9'], exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '' });
    expect(err.message).toBe('command failed on h with SIGKILL (killed by SIGKILL): sleep 9');
  });

  it('host key errors say what to do, and carry their facts', () => {
    const unknown = new HostKeyUnknownError({ host: '198.18.0.10', port: 2222, fingerprint, knownHostsFile: '/etc/rmm/known hosts' });
    expect(unknown.message).toContain("ssh-keyscan -p 2222 198.18.0.10 >> '/etc/rmm/known hosts'");
    expect(unknown.message).toContain('ssh-ed25519 SHA256:YRtQb');
    expect(unknown.toJSON()).toMatchObject({ code: 'HOST_KEY_UNKNOWN', host: '198.18.0.10', port: 2222, fingerprint });

    const changed = new HostKeyChangedError({ host: '198.18.0.10', port: 2222, fingerprint, knownHostsFile: '/k', line: 7, expected: [fingerprint] });
    expect(changed.message).toMatch(/has CHANGED.*\/k line 7.*man-in-the-middle.*not even with --trust-new-host-keys/s);
    expect(changed.message).toContain("ssh-keygen -R '[198.18.0.10]:2222' -f /k");
    expect(changed.toJSON()).toMatchObject({ code: 'HOST_KEY_CHANGED', line: 7, expected: [fingerprint] });
  });

  it('connection, auth, sudo and timeout errors carry host and port', () => {
    expect(new ConnectError({ host: '198.18.0.10', port: 22, reason: 'refused' }).message).toBe(
      'cannot connect to 198.18.0.10:22: connection refused (is sshd running on that port?)',
    );
    expect(new ConnectError({ host: 'fd00::1', port: 22, reason: 'timeout' }).message).toContain('[fd00::1]:22');
    const auth = new AuthenticationError({ host: 'h', port: 22, user: 'rmm', reason: 'rejected', methods: ['publickey (/k)'] });
    expect(auth.toJSON()).toMatchObject({ code: 'SSH_AUTH_FAILED', user: 'rmm', reason: 'rejected', methods: ['publickey (/k)'] });
    const sudo = new SudoError({ host: 'h', user: 'rmm', reason: 'password-required', command: 'sudo -n -- id', stderr: 'sudo: a password is required\n' });
    expect(sudo.toJSON()).toMatchObject({ code: 'SUDO_FAILED', reason: 'password-required' });
    const timeout = new TimeoutError({ host: 'h', command: 'sleep 9', timeoutMs: 500, stdout: 'a', stderr: '' });
    expect(timeout.toJSON()).toMatchObject({ code: 'REMOTE_COMMAND_TIMEOUT', timeoutMs: 500, command: 'sleep 9', stdout: 'a' });
  });
});
