import type { Duplex, Readable } from 'node:stream';
import type { SessionInfo } from './connect.js';

export type { SessionInfo };

export interface CommandOptions {
  /** Overrides the host's `sudo` setting for this command. */
  sudo?: boolean;
  /** Passed as an `env NAME=VALUE` prefix (sshd drops most env requests). */
  env?: Readonly<Record<string, string>>;
}

export interface ExecOptions extends CommandOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
  /** Exit codes that count as success; default [0]. */
  okCodes?: readonly number[];
  /** Return whatever the exit code, instead of rejecting. */
  allowFailure?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** 128 + the signal number when the command was killed by a signal, as sh reports it. */
  exitCode: number;
  signal: string | null;
}

export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
  /** The tail of stderr, also for processes whose stderr a caller streams elsewhere. */
  stderr: string;
}

/** A command running on a host: its stdin and stdout as one stream, with flow control. */
export interface RemoteProcess {
  channel: Duplex;
  stderr: Readable;
  command: string;
  /**
   * Resolves when the channel closes, which happens only after stdout has been read to its end:
   * pipe or resume `channel`, or this never settles. Never rejects.
   */
  exit: Promise<ExitStatus>;
  /** Like `exit`, but rejects with RemoteCommandError (or SudoError) unless the code is in okCodes. */
  wait(okCodes?: readonly number[]): Promise<ExitStatus>;
  /** Signals the command (where the server delivers it) and sends EOF; closes the channel 2 s later if still open. */
  kill(signal?: string): void;
}

/** A reverse tunnel: a port on a host's loopback that leads to another host's sshd. */
export interface ReverseTunnel {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A host rmm works on. The SSH session implements it; tests wrap it to fail, hang or drop a named
 * command. Nothing outside transport/ sees how commands travel.
 */
export interface RemoteHost {
  readonly info: SessionInfo;
  readonly closed: boolean;
  /** The command string sent to the host for argv, with the sudo and env prefixes. */
  command(argv: readonly string[], opts?: CommandOptions): string;
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess>;
  readFile(path: string, opts?: CommandOptions): Promise<Buffer>;
  /** Writes beside the file, fsyncs, renames over it. Keeps an existing file's mode and owner unless `mode` is given. */
  writeFileAtomic(path: string, data: string | Buffer, opts?: CommandOptions & { mode?: number }): Promise<void>;
  /** Asks this host's sshd to listen on its loopback and carries each connection to `to`'s sshd on `port`. */
  /** `to`'s sshd as `to` itself reaches it (`address`:`port`), which differs from rmm's view behind a NAT or port forward. */
  openReverseTunnel(to: RemoteHost, port: number, address?: string): Promise<ReverseTunnel>;
  /** The SSH session underneath (for transport/ itself, e.g. a tunnel's other end). */
  session(): unknown;
}

/** A host that passes everything to another: wrappers (interrupts, fault injection) override what they change. */
export class HostWrapper implements RemoteHost {
  constructor(protected readonly inner: RemoteHost) {}

  get info(): SessionInfo {
    return this.inner.info;
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  command(argv: readonly string[], opts?: CommandOptions): string {
    return this.inner.command(argv, opts);
  }

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(argv, opts);
  }

  spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    return this.inner.spawn(argv, opts);
  }

  readFile(path: string, opts?: CommandOptions): Promise<Buffer> {
    return this.inner.readFile(path, opts);
  }

  writeFileAtomic(path: string, data: string | Buffer, opts?: CommandOptions & { mode?: number }): Promise<void> {
    return this.inner.writeFileAtomic(path, data, opts);
  }

  openReverseTunnel(to: RemoteHost, port: number, address?: string): Promise<ReverseTunnel> {
    return this.inner.openReverseTunnel(to, port, address);
  }

  session(): unknown {
    return this.inner.session();
  }
}
