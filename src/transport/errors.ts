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
      'ssh.host_key_unknown',
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
      'ssh.host_key_changed',
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
      'ssh.host_key_revoked',
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
      'ssh.auth_failed',
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
    super('ssh.connect_failed', `cannot connect to ${hostPort(host, port)}: ${what[reason]}${detail ? ` (${detail})` : ''}`, options);
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
    super('remote.sudo_failed', `sudo failed on ${host}: ${what[reason]}`);
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

/**
 * Shaped like execa's error: the same facts a result has, plus the host and what the code means.
 * Its message is one line that leads with the cause (the program, the host, and the line of its
 * output that says why); the command as sent and its output are facts of their own (`detail`,
 * shown with --verbose, and always in JSON).
 */
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
    const program = programOf(facts.argv);
    const meaning =
      facts.exitCode !== null
        ? exitCodeMeaning(program, facts.exitCode)
        : facts.signal
          ? `killed by ${facts.signal}`
          : 'ended without an exit status';
    const status = facts.exitCode !== null ? `exit code ${facts.exitCode}` : (facts.signal ?? 'no exit status');
    const why = rootCause(facts.stderr);
    // The code's meaning only when the output names no cause: "ssh failed, or ... exited with 255" adds nothing to "No route to host".
    super('remote.command_failed', `${program ?? 'a command'} failed on ${facts.host} (${status}${meaning && !why ? `: ${meaning}` : ''})${why ? `: ${why}` : ''}`, options);
    this.host = facts.host;
    this.command = facts.command;
    this.argv = facts.argv;
    this.exitCode = facts.exitCode;
    this.signal = facts.signal;
    this.stdout = truncateOutput(facts.stdout);
    this.stderr = truncateOutput(facts.stderr);
    this.meaning = meaning;
  }

  /** What --verbose adds: the command as sent, and the end of what it printed on stderr. */
  get detail(): string {
    const tail = lastLines(this.stderr, 20).replace(/[ \t\r]+$/gm, '');
    return `on ${this.host}: ${this.command}${tail ? `\n${tail}` : ''}`;
  }

  override toJSON(): Record<string, unknown> {
    const { host, command, argv, exitCode, signal, stdout, stderr, meaning } = this;
    return { ...super.toJSON(), host, command, argv, exitCode, signal, meaning, stdout, stderr };
  }
}

/** The program a command line runs, past sudo and rmm's `sh -c SCRIPT NAME` wrappers. */
export function programOf(argv: readonly string[]): string | undefined {
  let i = 0;
  for (;;) {
    const word = argv[i];
    if (word === undefined) return undefined;
    const base = word.split('/').pop()!;
    if (base === 'sudo' || base === 'env' || base === 'nice' || base === 'ionice' || base === 'setsid' || base === 'timeout' || base === 'exec') {
      i++;
      while (argv[i] !== undefined && (argv[i]!.startsWith('-') || (base === 'timeout' && /^\d/.test(argv[i]!)) || (base === 'env' && argv[i]!.includes('=')))) i++;
      continue;
    }
    if ((base === 'sh' || base === 'bash') && argv[i + 1] === '-c') {
      // sh -c SCRIPT [NAME [ARGS...]]: the script's program when it runs its arguments ("$@").
      const script = argv[i + 2] ?? '';
      if (argv[i + 4] !== undefined && /"\$@"/.test(script)) {
        i += 4;
        continue;
      }
      return argv[i + 3] ?? 'sh';
    }
    return base;
  }
}

// The words programs use for why they failed, the weightiest first: a line with one of the first
// kind is the cause even after lines of a later kind (a file that vanished, then a full disk).
/** How ssh and other clients say a host could not be reached at all. */
export const UNREACHABLE = /No route to host|Connection refused|Connection timed out|Network is unreachable|Could not resolve hostname/;
const CAUSES: readonly RegExp[] = [
  new RegExp(`${UNREACHABLE.source}|Host key verification failed|Connection reset`),
  /No space left on device|Disk quota exceeded|Read-only file system/,
  /Permission denied|Operation not permitted|a password is required|not allowed to execute/,
  /command not found|Out of memory|Input\/output error|File name too long|Device or resource busy/,
  /is not a (?:directory|block device)|No such file or directory/,
];
// rsync's own closing lines say only that it stopped, never why.
const NOISE = /^rsync error: |^rsync: connection unexpectedly closed|^rsync: \[(?:sender|receiver|generator)\] write error: Broken pipe|^\[(?:sender|receiver|generator)\]/;

/** The line of a failed command's stderr that says why, in the program's own words (at most 300 characters). */
export function rootCause(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('[… ') && !NOISE.test(l));
  let line: string | undefined;
  for (const cause of CAUSES) if ((line = lines.find((l) => cause.test(l)))) break;
  line ??= lines.at(-1) ?? stderr.trim().split('\n').at(-1)?.trim();
  if (!line) return undefined;
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

export class TimeoutError extends RmmError {
  constructor(readonly facts: { host: string; command: string; timeoutMs: number; stdout: string; stderr: string }) {
    super('remote.command_timeout', `command timed out after ${facts.timeoutMs} ms on ${facts.host} and was terminated: ${facts.command}`);
    this.facts = { ...facts, stdout: truncateOutput(facts.stdout), stderr: truncateOutput(facts.stderr) };
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}
