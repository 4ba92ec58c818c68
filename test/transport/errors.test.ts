import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConnectError,
  HostKeyChangedError,
  HostKeyUnknownError,
  MAX_OUTPUT_CHARS,
  programOf,
  RemoteCommandError,
  rootCause,
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
    // One line: the program, the host, the code and the line that says why; the command is the detail.
    expect(err.message).toBe('rsync failed on 198.18.0.10 (exit code 23): ' + 'x'.repeat(300) + '...');
    expect(err.detail.startsWith("on 198.18.0.10: rsync -aHAX / 'root@t:/srv/a b/'\n[… ")).toBe(true);
    expect(err.detail.endsWith('\nrsync error: some files could not be transferred (code 23)')).toBe(true);
    expect(err.stderr.length).toBeLessThan(stderr.length + 100);
    expect(err.stderr).toMatch(/^\[… \d+ characters cut …\]\n/);
    expect(err.stderr.endsWith('(code 23)\n')).toBe(true);
    expect(err.toJSON()).toMatchObject({
      code: 'remote.command_failed',
      host: '198.18.0.10',
      exitCode: 23,
      signal: null,
      meaning: 'partial transfer due to error',
      argv: ['rsync', '-aHAX', '/', 'root@t:/srv/a b/'],
    });
  });

  it('RemoteCommandError names a signal', () => {
    const err = new RemoteCommandError({ host: 'h', command: 'sleep 9', argv: ['sleep', '9'], exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '' });
    expect(err.message).toBe('sleep failed on h (SIGKILL: killed by SIGKILL)');
  });

  it('RemoteCommandError leads with the line that says why, past rsync closing lines and rmm wrappers', () => {
    const lifeline = ['sudo', '-n', '--', 'sh', '-c', 'exec 3<&0\n"$@" </dev/null 3<&- &\nwait', 'rmm-lifeline', 'rsync', '-a', '/', 'rmm@t:/x/'];
    const err = new RemoteCommandError({
      host: '198.18.0.10',
      command: 'sudo -n -- sh -c ...',
      argv: lifeline,
      exitCode: 255,
      signal: null,
      stdout: '',
      stderr: 'ssh: connect to host 198.18.0.20 port 22: No route to host\r\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: unexplained error (code 255) at io.c(232) [sender=3.2.7]\n',
    });
    expect(err.message).toBe('rsync failed on 198.18.0.10 (exit code 255): ssh: connect to host 198.18.0.20 port 22: No route to host');
    expect(err.detail).toContain('rsync error: unexplained error');
    expect(err.toJSON()).toMatchObject({ argv: lifeline, exitCode: 255, stderr: expect.stringContaining('No route to host') });
  });

  it('rootCause prefers the weightiest cause to the last line, and falls back to the last line', () => {
    expect(rootCause('rsync: [sender] link_stat "/a" failed: No such file or directory (2)\nrsync: write failed on "/t/b": No space left on device (28)\nrsync error: error in file IO (code 11)\n')).toBe(
      'rsync: write failed on "/t/b": No space left on device (28)',
    );
    expect(rootCause('sudo: a password is required\n')).toBe('sudo: a password is required');
    expect(rootCause('something odd happened\nand then this\n')).toBe('and then this');
    expect(rootCause('')).toBeUndefined();
    expect(rootCause(`${'y'.repeat(400)}\n`)).toBe(`${'y'.repeat(300)}...`);
  });

  it('programOf names the program past sudo, env, timeout and sh -c wrappers', () => {
    expect(programOf(['sudo', '-n', '--', 'rsync', '-a'])).toBe('rsync');
    expect(programOf(['sudo', '-n', 'sh', '-c', 'exit 3', 'rmm-check'])).toBe('rmm-check');
    expect(programOf(['sh', '-c', '"$@"', 'rmm-lifeline', '/usr/bin/tar', '-x'])).toBe('tar');
    expect(programOf(['timeout', '20', 'env', 'A=1', 'lvcreate', '-s'])).toBe('lvcreate');
    expect(programOf([])).toBeUndefined();
  });

  it('host key errors say what to do, and carry their facts', () => {
    const unknown = new HostKeyUnknownError({ host: '198.18.0.10', port: 2222, fingerprint, knownHostsFile: '/etc/rmm/known hosts' });
    expect(unknown.message).toContain("ssh-keyscan -p 2222 198.18.0.10 >> '/etc/rmm/known hosts'");
    expect(unknown.message).toContain('ssh-ed25519 SHA256:YRtQb');
    expect(unknown.toJSON()).toMatchObject({ code: 'ssh.host_key_unknown', host: '198.18.0.10', port: 2222, fingerprint });

    const changed = new HostKeyChangedError({ host: '198.18.0.10', port: 2222, fingerprint, knownHostsFile: '/k', line: 7, expected: [fingerprint] });
    expect(changed.message).toMatch(/has CHANGED.*\/k line 7.*man-in-the-middle.*not even with --trust-new-host-keys/s);
    expect(changed.message).toContain("ssh-keygen -R '[198.18.0.10]:2222' -f /k");
    expect(changed.toJSON()).toMatchObject({ code: 'ssh.host_key_changed', line: 7, expected: [fingerprint] });
  });

  it('connection, auth, sudo and timeout errors carry host and port', () => {
    expect(new ConnectError({ host: '198.18.0.10', port: 22, reason: 'refused' }).message).toBe(
      'cannot connect to 198.18.0.10:22: connection refused (is sshd running on that port?)',
    );
    expect(new ConnectError({ host: 'fd00::1', port: 22, reason: 'timeout' }).message).toContain('[fd00::1]:22');
    const auth = new AuthenticationError({ host: 'h', port: 22, user: 'rmm', reason: 'rejected', methods: ['publickey (/k)'] });
    expect(auth.toJSON()).toMatchObject({ code: 'ssh.auth_failed', user: 'rmm', reason: 'rejected', methods: ['publickey (/k)'] });
    const sudo = new SudoError({ host: 'h', user: 'rmm', reason: 'password-required', command: 'sudo -n -- id', stderr: 'sudo: a password is required\n' });
    expect(sudo.toJSON()).toMatchObject({ code: 'remote.sudo_failed', reason: 'password-required' });
    const timeout = new TimeoutError({ host: 'h', command: 'sleep 9', timeoutMs: 500, stdout: 'a', stderr: '' });
    expect(timeout.toJSON()).toMatchObject({ code: 'remote.command_timeout', timeoutMs: 500, command: 'sleep 9', stdout: 'a' });
  });
});
