/**
 * A throwaway sshd for transport tests: its own network namespace and veth link
 * (198.19.0.2 ↔ 198.19.0.1, inside the lab range 198.18.0.0/15), its own host keys and config
 * in a temp dir, and two temporary users: one with passwordless sudo, one whose sudo needs a
 * password (when this machine has sudo). Needs root. Everything is removed by `stop`, and leftovers of a crashed run by `start`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const NETNS = 'rmmt-transport';
const VETH_HOST = 'rmmt-h';
const VETH_NS = 'rmmt-n';
const HOST_ADDR = '198.19.0.1';
export const SSHD_ADDR = '198.19.0.2';
const SUDOERS = '/etc/sudoers.d/rmmt-transport';
const USERS = { sudoer: 'rmmt', passwordSudoer: 'rmmtpw' } as const;

export interface SshdFixture {
  host: string;
  port: number;
  /** A second port on the same sshd, for `[host]:port` known_hosts entries. */
  altPort: number;
  users: { root: string; sudoer: string; passwordSudoer: string };
  /** Unencrypted ed25519 client key, authorized for every user. */
  clientKey: string;
  /** The same kind of key, encrypted with `passphrase`, also authorized. */
  encryptedKey: string;
  passphrase: string;
  /** A key no user authorizes. */
  strangerKey: string;
  /** known_hosts with the server's key for both ports. */
  knownHosts: string;
  /** The server's host key blob. */
  hostKey: Buffer;
  dir: string;
  /** sshd's log so far (LogLevel VERBOSE). */
  log(): string;
  stop(): Promise<void>;
}

/** Why the fixture cannot run here, or undefined when it can. */
export function sshdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespace, temporary users, sshd)';
  for (const tool of ['/usr/sbin/sshd', '/usr/bin/ssh-keygen']) {
    if (!existsSync(tool)) return `${tool} is not installed`;
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (ip) is not installed';
  }
  return undefined;
}

/** The fixture's users run sudo from this machine's own /usr/bin. */
export function hasSudo(): boolean {
  return existsSync('/usr/bin/sudo') && existsSync('/usr/sbin/visudo');
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const tryRun = (cmd: string, args: string[]) => {
  try {
    run(cmd, args);
  } catch {
    /* already gone */
  }
};

function removeLeftovers(): void {
  tryRun('ip', ['netns', 'del', NETNS]);
  tryRun('ip', ['link', 'del', VETH_HOST]);
  for (const user of Object.values(USERS)) tryRun('userdel', ['-f', user]); // -f: even with processes left
  rmSync(SUDOERS, { force: true });
}

export async function startSshd(): Promise<SshdFixture> {
  removeLeftovers();
  const dir = mkdtempSync('/tmp/rmmt-sshd-');
  chmodSync(dir, 0o755);
  let sshd: ChildProcess | undefined;
  const logFile = join(dir, 'sshd.log');

  const stop = async () => {
    if (sshd && sshd.exitCode === null) {
      const exited = new Promise((resolve) => sshd?.once('exit', resolve));
      sshd.kill('SIGTERM');
      await exited;
    }
    removeLeftovers();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    run('ip', ['netns', 'add', NETNS]);
    run('ip', ['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS]);
    run('ip', ['link', 'set', VETH_NS, 'netns', NETNS]);
    run('ip', ['addr', 'add', `${HOST_ADDR}/24`, 'dev', VETH_HOST]);
    run('ip', ['link', 'set', VETH_HOST, 'up']);
    run('ip', ['-n', NETNS, 'addr', 'add', `${SSHD_ADDR}/24`, 'dev', VETH_NS]);
    run('ip', ['-n', NETNS, 'link', 'set', VETH_NS, 'up']);
    run('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);

    const key = (name: string, passphrase = '') => {
      const path = join(dir, name);
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', path]);
      return path;
    };
    const hostKeyPath = key('ssh_host_ed25519_key');
    const clientKey = key('id_client');
    const passphrase = 'correct horse battery staple';
    const encryptedKey = key('id_encrypted', passphrase);
    const strangerKey = key('id_stranger');

    mkdirSync(join(dir, 'home'));
    for (const user of Object.values(USERS)) {
      // `-p '*'`: no password login, but not a locked account, which sshd would refuse.
      run('useradd', ['-m', '-d', join(dir, 'home', user), '-s', '/bin/sh', '-p', '*', user]);
    }
    if (hasSudo()) {
      writeFileSync(SUDOERS, `${USERS.sudoer} ALL=(ALL) NOPASSWD: ALL\n${USERS.passwordSudoer} ALL=(ALL) ALL\n`, { mode: 0o440 });
      run('visudo', ['-cf', SUDOERS]);
    }

    const authorized = join(dir, 'authorized_keys');
    mkdirSync(authorized);
    const pub = [clientKey, encryptedKey].map((k) => readFileSync(`${k}.pub`, 'utf8')).join('');
    for (const user of ['root', ...Object.values(USERS)]) writeFileSync(join(authorized, user), pub);

    const port = 22;
    const altPort = 2222;
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress ${SSHD_ADDR}:${port}`,
        `ListenAddress ${SSHD_ADDR}:${altPort}`,
        `HostKey ${hostKeyPath}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}/%u`,
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    run('/usr/sbin/sshd', ['-t', '-f', config]);
    const log = openSync(logFile, 'a');
    sshd = spawn('ip', ['netns', 'exec', NETNS, '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', log, log] });
    closeSync(log);
    await waitForPort(SSHD_ADDR, port, 10_000);
    await waitForPort(SSHD_ADDR, altPort, 10_000);

    const hostKeyLine = readFileSync(`${hostKeyPath}.pub`, 'utf8').split(' ');
    const hostKeyText = `${hostKeyLine[0]} ${hostKeyLine[1]}`;
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `${SSHD_ADDR} ${hostKeyText}\n[${SSHD_ADDR}]:${altPort} ${hostKeyText}\n`, { mode: 0o600 });

    return {
      host: SSHD_ADDR,
      port,
      altPort,
      users: { root: 'root', ...USERS },
      clientKey,
      encryptedKey,
      passphrase,
      strangerKey,
      knownHosts,
      hostKey: Buffer.from(hostKeyLine[1] ?? '', 'base64'),
      dir,
      log: () => readFileSync(logFile, 'utf8'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
