import { HostWrapper, type CommandOptions, type ExecOptions, type RemoteHost, type RemoteProcess } from '../../src/transport/index.js';
import { RmmError } from '../../src/errors.js';

/**
 * A fault to inject: the first command `role`'s host is asked to run while `step` runs (and whose
 * command line contains `match`, when given) fails: before it runs, or, with `after`, once it has
 * run, as when its reply is lost.
 */
export interface Fault {
  readonly step: string;
  readonly role: 'origin' | 'target';
  readonly match?: string;
  readonly after?: boolean;
}

export class InjectedFault extends RmmError {
  constructor(readonly facts: { step: string; host: string; command: string }) {
    super('fault.injected', `injected fault on ${facts.host}: ${facts.command.slice(0, 80)}`);
  }
}

/**
 * Wraps hosts so that a test fails a command at a named step, instead of racing the CLI's output
 * with timers. The test tells it which step is running (from the apply's step events).
 */
export class FaultInjector {
  step: string | undefined;
  fired: { step: string; host: string; command: string } | undefined;

  constructor(readonly fault: Fault | undefined) {}

  /** For ApplyOptions.wrapHost. */
  readonly wrap = (host: RemoteHost, role: 'origin' | 'target'): RemoteHost => new FaultyHost(host, role, this);

  /** Whether this command is the one to fail; marks it fired. */
  hits(role: 'origin' | 'target', host: RemoteHost, argv: readonly string[], opts?: CommandOptions): boolean {
    const f = this.fault;
    if (!f || this.fired || f.role !== role || f.step !== this.step) return false;
    const command = host.command(argv, opts);
    if (f.match !== undefined && !command.includes(f.match)) return false;
    this.fired = { step: f.step, host: host.info.host, command };
    return true;
  }

  /** Runs the command with the fault applied. */
  async run<T>(role: 'origin' | 'target', host: RemoteHost, argv: readonly string[], opts: CommandOptions | undefined, command: () => Promise<T>): Promise<T> {
    if (!this.hits(role, host, argv, opts)) return command();
    if (this.fault!.after) await command().catch(() => {});
    throw new InjectedFault(this.fired!);
  }
}

class FaultyHost extends HostWrapper {
  constructor(
    inner: RemoteHost,
    private readonly role: 'origin' | 'target',
    private readonly faults: FaultInjector,
  ) {
    super(inner);
  }

  override exec(argv: readonly string[], opts?: ExecOptions) {
    return this.faults.run(this.role, this.inner, argv, opts, () => this.inner.exec(argv, opts));
  }

  override spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    return this.faults.run(this.role, this.inner, argv, opts, () => this.inner.spawn(argv, opts));
  }

  override readFile(path: string, opts?: CommandOptions) {
    return this.faults.run(this.role, this.inner, ['cat', '--', path], opts, () => this.inner.readFile(path, opts));
  }

  override writeFileAtomic(path: string, data: string | Buffer, opts?: CommandOptions & { mode?: number }) {
    return this.faults.run(this.role, this.inner, ['rmm-write', path], opts, () => this.inner.writeFileAtomic(path, data, opts));
  }
}
