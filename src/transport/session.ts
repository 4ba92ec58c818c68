/**
 * An SSH session to one host: run commands built from argv (optionally under sudo), stream
 * through a channel, and read and atomically write remote files.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { connect, type SessionInfo, type SessionOptions } from './connect.js';
import { ConnectError, RemoteCommandError, SudoError, TimeoutError, truncateOutput } from './errors.js';
import { signalNumber } from './exit-codes.js';
import { shellJoin } from './quote.js';
import type { CommandOptions, ExecOptions, ExecResult, RemoteHost, RemoteProcess, ReverseTunnel } from './host.js';
import { openReverseTunnel } from './tunnel.js';

export { DEFAULT_CIPHERS, type SessionInfo, type SessionOptions } from './connect.js';
export type { CommandOptions, ExecOptions, ExecResult, ExitStatus, RemoteHost, RemoteProcess, ReverseTunnel } from './host.js';

// OpenSSH's sshd allows 10 channels per connection (MaxSessions); above that, opens fail. Long-held
// channels (a freeze holder per filesystem, a tar stream each) can take them all while a command
// that would let them end waits for one, so a session opens more connections, up to MAX_LANES.
const MAX_CHANNELS = 8;
const MAX_LANES = 4;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Timeouts are enforced on the remote side with coreutils `timeout`: sshd refuses signal requests
// for root logins (root sessions run without privilege separation), and closing a channel does
// not stop a command that neither reads nor writes. 124: timed out; 137: needed the KILL.
const KILL_AFTER_S = 5;
const TIMED_OUT_CODES: readonly number[] = [124, 137];
const BACKSTOP_MS = (KILL_AFTER_S + 5) * 1000;

function withRemoteTimeout(argv: readonly string[], timeoutMs: number): string[] {
  return ['timeout', '-k', String(KILL_AFTER_S), String(timeoutMs / 1000), ...argv];
}

export async function openSession(opts: SessionOptions): Promise<SshSession> {
  const { client, info } = await connect(opts);
  // Further connections check the host key this one recorded.
  const another = async () => (await connect({ ...opts, trustNewHostKeys: false })).client;
  return new SshSession(client, info, opts.sudo ?? false, another);
}

/** One SSH connection of a session and how many more channels it may open. */
interface Lane {
  readonly client: Client;
  free: number;
}

export class SshSession implements RemoteHost {
  #closed = false;
  #lost: Error | undefined;
  readonly #lanes: Lane[];
  #opening: Promise<Lane | undefined> | undefined;
  /** Callers waiting for a channel to close on any lane. */
  readonly #waiting: (() => void)[] = [];

  constructor(
    private readonly client: Client,
    readonly info: SessionInfo,
    private readonly sudoByDefault: boolean,
    private readonly another?: () => Promise<Client>,
  ) {
    this.#lanes = [{ client, free: MAX_CHANNELS }];
    // After login, errors (keepalive timeout, reset) end the connection; commands see it as closed.
    client.on('error', (err) => (this.#lost = err));
    client.once('close', () => {
      this.#closed = true;
      for (const lane of this.#lanes.slice(1)) lane.client.end();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether a command runs through `sudo -n`: a privileged command (the default; `sudo: false` asks
   * for the login user) on a host whose connection allows sudo, as a user who is not root. A host
   * without sudo in the spec never gets it: rmm's plan blocks a replica whose hosts would need it.
   */
  #sudo(opts: CommandOptions): boolean {
    return this.sudoByDefault && (opts.sudo ?? true) && this.info.user !== 'root';
  }

  /** The command string sent to the server for argv, with the sudo and env prefixes. */
  command(argv: readonly string[], opts: CommandOptions = {}): string {
    if (argv.length === 0) throw new RangeError('empty argv');
    const prefix: string[] = [];
    if (this.#sudo(opts)) prefix.push('sudo', '-n', '--');
    const env = Object.entries(opts.env ?? {});
    if (env.length > 0) {
      for (const [name] of env) if (!ENV_NAME.test(name)) throw new RangeError(`invalid environment variable name: ${name}`);
      prefix.push('env', ...env.map(([name, value]) => `${name}=${value}`));
    }
    return shellJoin([...prefix, ...argv]);
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const raw = await this.#run(argv, opts);
    return { ...raw, stdout: raw.stdout.toString('utf8') };
  }

  async spawn(argv: readonly string[], opts: CommandOptions = {}): Promise<RemoteProcess> {
    const command = this.command(argv, opts);
    const { channel, closed } = await this.#open(command);
    const stderr = collectTail(channel.stderr);
    const exit = closed.then((end) => ({ ...end, stderr: stderr() }));
    return {
      channel,
      stderr: channel.stderr,
      command,
      exit,
      wait: async (okCodes = [0]) => {
        const status = await exit;
        if (status.exitCode !== null && okCodes.includes(status.exitCode)) return status;
        throw this.#failure(argv, command, opts, { ...status, stdout: '' });
      },
      kill: (signal = 'TERM') => terminate(channel, signal),
    };
  }

  async readFile(path: string, opts: CommandOptions = {}): Promise<Buffer> {
    return (await this.#run(['cat', '--', path], opts)).stdout;
  }

  /** Writes beside the file, fsyncs, renames over it. Keeps an existing file's mode and owner unless `mode` is given. */
  async writeFileAtomic(path: string, data: string | Buffer, opts: CommandOptions & { mode?: number } = {}): Promise<void> {
    const dir = posix.dirname(path);
    const tmp = posix.join(dir, `.${posix.basename(path)}.rmm-${randomBytes(6).toString('hex')}`);
    const mode = opts.mode === undefined ? '' : opts.mode.toString(8);
    await this.#run(['sh', '-c', WRITE_ATOMIC, 'rmm-write', tmp, path, mode, dir], { ...opts, stdin: data });
  }

  /** The underlying ssh2 client, for other transport modules (tunnels); nothing outside transport/ uses it. */
  sshClient(): Client {
    return this.client;
  }

  session(): SshSession {
    return this;
  }

  openReverseTunnel(to: RemoteHost, port: number, address?: string): Promise<ReverseTunnel> {
    return openReverseTunnel(this, to.session() as SshSession, port, address);
  }

  async close(): Promise<void> {
    await this.#opening;
    if (this.#closed) return;
    await new Promise<void>((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
    });
  }

  /**
   * A connection with a channel taken for the caller: one with a free channel, else a new
   * connection (one opening at a time), else the first channel to close on any of them. After a
   * new connection fails, no other is tried: callers wait for a channel as if there were no more.
   */
  async #lane(): Promise<Lane> {
    for (let woken = false; ; woken = true) {
      const free = this.#lanes.find((l) => l.free > 0);
      if (free) {
        free.free--;
        return free;
      }
      if (!this.#closed && this.another && this.#lanes.length < MAX_LANES) {
        this.#opening ??= this.#openLane(this.another);
        if (await this.#opening) continue;
      }
      // A caller woken but beaten to the channel keeps its place at the head of the queue.
      await new Promise<void>((resolve) => (woken ? this.#waiting.unshift(resolve) : this.#waiting.push(resolve)));
    }
  }

  #release(lane: Lane): void {
    lane.free++;
    this.#waiting.shift()?.();
  }

  async #openLane(another: () => Promise<Client>): Promise<Lane | undefined> {
    try {
      const client = await another();
      // The first connection ends the others when it closes; one that arrives after that ends here.
      if (this.#closed) {
        client.end();
        return undefined;
      }
      const lane = { client, free: MAX_CHANNELS };
      client.on('error', () => {}); // the channels on it report the loss
      client.once('close', () => this.#lanes.includes(lane) && this.#lanes.splice(this.#lanes.indexOf(lane), 1));
      this.#lanes.push(lane);
      this.#opening = undefined;
      return lane;
    } catch {
      return undefined; // #opening stays settled: no further attempts
    }
  }

  /** Opens an exec channel; `closed` settles with its exit status when the channel closes. */
  async #open(command: string): Promise<{ channel: ClientChannel; closed: Promise<ChannelEnd> }> {
    const lane = await this.#lane();
    try {
      const opened = await new Promise<{ channel: ClientChannel; closed: Promise<ChannelEnd> }>((resolve, reject) => {
        const fail = (err: Error) => reject(this.#closed ? this.#closedError() : this.#openError(err));
        if (this.#closed) return reject(this.#closedError());
        try {
          lane.client.exec(command, (err, channel) => (err ? fail(err) : resolve({ channel, closed: channelEnd(channel) })));
        } catch (err) {
          fail(err as Error); // ssh2 throws "Not connected" once the socket is gone
        }
      });
      void opened.closed.then(() => this.#release(lane));
      return opened;
    } catch (err) {
      this.#release(lane);
      throw err;
    }
  }

  async #run(argv: readonly string[], opts: ExecOptions): Promise<Omit<ExecResult, 'stdout'> & { stdout: Buffer }> {
    const { timeoutMs } = opts;
    const command = this.command(timeoutMs === undefined ? argv : withRemoteTimeout(argv, timeoutMs), opts);
    const started = Date.now();
    const { channel, closed } = await this.#open(command);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    channel.on('data', (chunk: Buffer) => stdout.push(chunk));
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
    const timedOut = () =>
      new TimeoutError({ host: this.info.host, command, timeoutMs: timeoutMs ?? 0, stdout: text(stdout), stderr: text(stderr) });

    const status = await new Promise<ChannelEnd>((resolve, reject) => {
      // The remote `timeout` should end it first; this covers a host that stopped answering.
      const backstop =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              terminate(channel, 'TERM');
              reject(timedOut());
            }, timeoutMs + BACKSTOP_MS);
      void closed.then((end) => {
        clearTimeout(backstop);
        resolve(end);
      });
      channel.end(opts.stdin);
    });

    if (timeoutMs !== undefined && TIMED_OUT_CODES.includes(status.exitCode ?? -1) && Date.now() - started >= timeoutMs) {
      throw timedOut();
    }
    const out = { stdout: Buffer.concat(stdout), stderr: text(stderr) };
    // No exit status at all: the channel or the connection went away, which no caller may ignore.
    const noStatus = status.exitCode === null && status.signal === null;
    if (noStatus && this.#closed) throw this.#closedError();
    const ok = !noStatus && (opts.allowFailure || (opts.okCodes ?? [0]).includes(status.exitCode ?? -1));
    if (ok) {
      const exitCode = status.exitCode ?? 128 + (signalNumber(status.signal ?? '') ?? 0);
      return { ...out, exitCode, signal: status.signal };
    }
    throw this.#failure(argv, command, opts, { ...status, stdout: out.stdout.toString('utf8'), stderr: out.stderr });
  }

  #failure(
    argv: readonly string[],
    command: string,
    opts: CommandOptions,
    status: { exitCode: number | null; signal: string | null; stdout: string; stderr: string },
  ): Error {
    const { host, user } = this.info;
    const sudo = this.#sudo(opts);
    const reason = sudo ? sudoFailure(status.exitCode, status.stderr) : undefined;
    if (reason) return new SudoError({ host, user, reason, command, stderr: truncateOutput(status.stderr) });
    return new RemoteCommandError({ host, command, argv, ...status });
  }

  #closedError(): ConnectError {
    const { host, port } = this.info;
    return new ConnectError({ host, port, reason: 'closed', ...(this.#lost ? { detail: this.#lost.message } : {}) }, { cause: this.#lost });
  }

  #openError(err: Error): ConnectError {
    const { host, port } = this.info;
    return new ConnectError({ host, port, reason: 'other', detail: `cannot open a channel: ${err.message}` }, { cause: err });
  }
}

// $1 temp file, $2 destination, $3 octal mode or empty, $4 destination's directory.
const WRITE_ATOMIC = `set -e
trap 'rm -f -- "$1"' EXIT
umask 077
cat > "$1"
if [ -n "$3" ]; then chmod "$3" "$1"
elif [ -e "$2" ]; then chmod "$(stat -c %a -- "$2")" "$1"; chown "$(stat -c %u:%g -- "$2")" "$1" 2>/dev/null || :
else chmod 644 "$1"; fi
sync -- "$1" 2>/dev/null || sync
mv -f -- "$1" "$2"
trap - EXIT
sync -- "$4" 2>/dev/null || sync`;

function sudoFailure(exitCode: number | null, stderr: string): SudoError['facts']['reason'] | undefined {
  if (/sudo: (a password is required|a terminal is required)/.test(stderr)) return 'password-required';
  if (/is not in the sudoers file|is not allowed to execute/.test(stderr)) return 'not-permitted';
  if (exitCode === 127 && /sudo: (command )?not found/.test(stderr)) return 'sudo-missing';
  return undefined;
}

/**
 * Signals the command, sends EOF, and closes the channel if it has not closed after a grace
 * period. ssh2's `channel.signal()` silently does nothing once stdin is ended (it checks
 * `writable`), so the request goes to the protocol directly. sshd delivers it with killpg() as
 * the login user, and not at all for root logins, where EOF ends a command that reads stdin.
 * Closing at once would lose the exit status: sshd cannot send it on a closed channel.
 */
function terminate(channel: ClientChannel, signal: string, graceMs = 2_000): void {
  const internals = channel as unknown as { _client: { _protocol: { signal(id: number, name: string): void } }; outgoing: { id: number; state: string } };
  if (internals.outgoing.state === 'open' || internals.outgoing.state === 'eof') {
    internals._client._protocol.signal(internals.outgoing.id, signal);
  }
  if (!channel.writableEnded) channel.end();
  const timer = setTimeout(() => channel.close(), graceMs);
  channel.once('close', () => clearTimeout(timer));
}

interface ChannelEnd {
  exitCode: number | null;
  signal: string | null;
}

/**
 * Must be called in ssh2's exec callback, before any await: for a quick command the exit status
 * can arrive in the same read as the exec reply, and ssh2 emits 'exit' once, to whoever listens
 * then. 'close' (which ssh2 emits only after stdout has ended) follows it.
 */
function channelEnd(channel: ClientChannel): Promise<ChannelEnd> {
  const end: ChannelEnd = { exitCode: null, signal: null };
  channel.on('exit', (code: number | null, signal?: string) => {
    end.exitCode = code ?? null;
    end.signal = signal ?? null;
  });
  return new Promise((resolve) => channel.once('close', () => resolve(end)));
}

function collectTail(stream: Readable, max = 64 * 1024): () => string {
  let tail = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > 2 * max) tail = tail.subarray(-max);
  });
  return () => tail.subarray(-max).toString('utf8');
}
