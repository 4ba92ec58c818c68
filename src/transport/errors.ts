/**
 * Transport failures. Each carries its facts (`toJSON`) and a message that says what to do.
 * None ever holds key material or a passphrase: keys are named by path or env var only.
 */
import { RmmError } from '../errors.js';
import { exitCodeMeaning } from './exit-codes.js';
import type { HostKeyFingerprint } from './known-hosts.js';
import { shellQuote } from './quote.js';

/** Cap on stdout/stderr kept in an error: enough for diagnosis, bounded for logs and JSON. */
export const MAX_OUTPUT_CHARS = 16 * 1024;

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Keeps the tail, where a failing command says why. */
export function truncateOutput(text: string, max = MAX_OUTPUT_CHARS): string {
  if (text.length <= max) return text;
  return `[… ${text.length - max} characters cut …]\n${text.slice(-max)}`;
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function fp(f: HostKeyFingerprint): string {
  return `${f.keyType} ${f.sha256}`;
}

export interface HostKeyFacts {
  host: string;
  port: number;
  fingerprint: HostKeyFingerprint;
  knownHostsFile: string;
}

export class HostKeyUnknownError extends RmmError {
  constructor(readonly facts: HostKeyFacts) {
    const { host, port, fingerprint, knownHostsFile } = facts;
    super(
      'HOST_KEY_UNKNOWN',
      `the host key of ${hostPort(host, port)} is not in ${knownHostsFile}: ${fp(fingerprint)}. ` +
        'Verify this fingerprint out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then trust it with ' +
        `\`ssh-keyscan -p ${port} ${shellQuote(host)} >> ${shellQuote(knownHostsFile)}\` or run with --trust-new-host-keys`,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export class HostKeyChangedError extends RmmError {
  constructor(readonly facts: HostKeyFacts & { expected: HostKeyFingerprint[]; line: number }) {
    const { host, port, fingerprint, knownHostsFile, line, expected } = facts;
    super(
      'HOST_KEY_CHANGED',
      `the host key of ${hostPort(host, port)} has CHANGED: it is now ${fp(fingerprint)}, but ` +
        `${knownHostsFile} line ${line} expects ${expected.map(fp).join(' or ')}. Someone may be ` +
        'intercepting the connection (man-in-the-middle), or the host was reinstalled. rmm never replaces a known key, ' +
        'not even with --trust-new-host-keys: verify the new fingerprint out of band, then remove the old entry with ' +
        `\`ssh-keygen -R ${shellQuote(port === 22 ? host : `[${host}]:${port}`)} -f ${shellQuote(knownHostsFile)}\` and add the new one`,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export class HostKeyRevokedError extends RmmError {
  constructor(readonly facts: HostKeyFacts & { line: number }) {
    const { host, port, fingerprint, knownHostsFile, line } = facts;
    super(
      'HOST_KEY_REVOKED',
      `the host key of ${hostPort(host, port)} (${fp(fingerprint)}) is marked @revoked in ${knownHostsFile} line ${line}; refusing to connect`,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export type AuthFailureReason =
  | 'rejected' // the server refused every key offered
  | 'no-method' // the spec gives no key and no agent
  | 'key-unreadable'
  | 'key-invalid'
  | 'passphrase-needed'
  | 'agent-unavailable';

export interface AuthFacts {
  host: string;
  port: number;
  user: string;
  reason: AuthFailureReason;
  /** Methods offered, e.g. `publickey (/root/.ssh/id_ed25519)`, `agent`. Never a key itself. */
  methods: string[];
  detail?: string;
}

export class AuthenticationError extends RmmError {
  constructor(readonly facts: AuthFacts, options?: { cause?: unknown }) {
    const { host, port, user, reason, methods, detail } = facts;
    const what: Record<AuthFailureReason, string> = {
      rejected: `the server refused every key offered (${methods.join(', ') || 'none'}); is the public key in ~${user}/.ssh/authorized_keys?`,
      'no-method': 'no key file, key env var or agent is configured',
      'key-unreadable': 'the private key cannot be read',
      'key-invalid': 'the private key cannot be parsed (wrong passphrase, or not a private key)',
      'passphrase-needed': 'the private key is encrypted and no passphrase env var is set',
      'agent-unavailable': 'the ssh agent socket is not available (is SSH_AUTH_SOCK set?)',
    };
    super(
      'SSH_AUTH_FAILED',
      `cannot log in to ${hostPort(host, port)} as ${user}: ${what[reason]}${detail ? ` (${detail})` : ''}`,
      options,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export type ConnectFailureReason = 'refused' | 'timeout' | 'unreachable' | 'dns' | 'handshake' | 'closed' | 'other';

export class ConnectError extends RmmError {
  constructor(
    readonly facts: { host: string; port: number; reason: ConnectFailureReason; detail?: string },
    options?: { cause?: unknown },
  ) {
    const { host, port, reason, detail } = facts;
    const what: Record<ConnectFailureReason, string> = {
      refused: 'connection refused (is sshd running on that port?)',
      timeout: 'timed out',
      unreachable: 'host or network unreachable',
      dns: 'host name not found',
      handshake: 'SSH handshake failed',
      closed: 'the connection was closed',
      other: 'connection failed',
    };
    super('SSH_CONNECT_FAILED', `cannot connect to ${hostPort(host, port)}: ${what[reason]}${detail ? ` (${detail})` : ''}`, options);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export type SudoFailureReason = 'password-required' | 'not-permitted' | 'sudo-missing';

export class SudoError extends RmmError {
  constructor(readonly facts: { host: string; user: string; reason: SudoFailureReason; command: string; stderr: string }) {
    const { host, user, reason } = facts;
    const what: Record<SudoFailureReason, string> = {
      'password-required': `sudo asks ${user} for a password; rmm needs passwordless sudo (\`${user} ALL=(ALL) NOPASSWD: ALL\` in sudoers)`,
      'not-permitted': `${user} may not run this command with sudo`,
      'sudo-missing': 'sudo is not installed; log in as root or install sudo',
    };
    super('SUDO_FAILED', `sudo failed on ${host}: ${what[reason]}`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export interface CommandFacts {
  host: string;
  /** The command as sent, readable and copy-pasteable into sh. */
  command: string;
  argv: readonly string[];
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Shaped like execa's error: the same facts a result has, plus the host and what the code means. */
export class RemoteCommandError extends RmmError {
  readonly host: string;
  readonly command: string;
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly meaning: string | undefined;

  constructor(facts: CommandFacts, options?: { cause?: unknown }) {
    const meaning =
      facts.exitCode !== null
        ? exitCodeMeaning(facts.argv[0], facts.exitCode)
        : facts.signal
          ? `killed by ${facts.signal}`
          : 'ended without an exit status';
    const status = facts.exitCode !== null ? `exit code ${facts.exitCode}` : (facts.signal ?? 'no exit status');
    const tail = lastLines(facts.stderr, 20);
    super(
      'REMOTE_COMMAND_FAILED',
      `command failed on ${facts.host} with ${status}${meaning ? ` (${meaning})` : ''}: ${facts.command}${tail ? `\n${tail}` : ''}`,
      options,
    );
    this.host = facts.host;
    this.command = facts.command;
    this.argv = facts.argv;
    this.exitCode = facts.exitCode;
    this.signal = facts.signal;
    this.stdout = truncateOutput(facts.stdout);
    this.stderr = truncateOutput(facts.stderr);
    this.meaning = meaning;
  }

  override toJSON(): Record<string, unknown> {
    const { host, command, argv, exitCode, signal, stdout, stderr, meaning } = this;
    return { ...super.toJSON(), host, command, argv, exitCode, signal, meaning, stdout, stderr };
  }
}

export class TimeoutError extends RmmError {
  constructor(readonly facts: { host: string; command: string; timeoutMs: number; stdout: string; stderr: string }) {
    super('REMOTE_COMMAND_TIMEOUT', `command timed out after ${facts.timeoutMs} ms on ${facts.host} and was terminated: ${facts.command}`);
    this.facts = { ...facts, stdout: truncateOutput(facts.stdout), stderr: truncateOutput(facts.stderr) };
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}
