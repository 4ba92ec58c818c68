import type { CommandOptions, ExecOptions, RemoteHost, RemoteProcess } from '../../src/transport/index.js';
import { RmmError } from '../../src/errors.js';

/** A fault to inject: the first command `role`'s host is asked to run while `step` runs fails. */
export interface Fault {
  readonly step: string;
  readonly role: 'origin' | 'target';
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

  check(role: 'origin' | 'target', host: RemoteHost, argv: readonly string[], opts?: CommandOptions): void {
    const f = this.fault;
    if (!f || this.fired || f.role !== role || f.step !== this.step) return;
    this.fired = { step: f.step, host: host.info.host, command: host.command(argv, opts) };
    throw new InjectedFault(this.fired);
  }
}

class FaultyHost implements RemoteHost {
  constructor(
    private readonly inner: RemoteHost,
    private readonly role: 'origin' | 'target',
    private readonly faults: FaultInjector,
  ) {}

  get info() {
    return this.inner.info;
  }

  get closed() {
    return this.inner.closed;
  }

  command(argv: readonly string[], opts?: CommandOptions): string {
    return this.inner.command(argv, opts);
  }

  async exec(argv: readonly string[], opts?: ExecOptions) {
    this.faults.check(this.role, this.inner, argv, opts);
    return this.inner.exec(argv, opts);
  }

  async spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    this.faults.check(this.role, this.inner, argv, opts);
    return this.inner.spawn(argv, opts);
  }

  async readFile(path: string, opts?: CommandOptions) {
    this.faults.check(this.role, this.inner, ['cat', '--', path], opts);
    return this.inner.readFile(path, opts);
  }

  async writeFileAtomic(path: string, data: string | Buffer, opts?: CommandOptions & { mode?: number }) {
    this.faults.check(this.role, this.inner, ['write', path], opts);
    return this.inner.writeFileAtomic(path, data, opts);
  }

  openReverseTunnel(to: RemoteHost, port: number) {
    return this.inner.openReverseTunnel(to, port);
  }

  session(): unknown {
    return this.inner.session();
  }
}
