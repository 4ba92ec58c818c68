import { RmmError } from '../errors.js';
import { HostWrapper, type CommandOptions, type ExecOptions, type ExecResult, type RemoteHost, type RemoteProcess } from '../transport/index.js';

/** The operator stopped rmm (SIGINT, SIGTERM); what a step had begun was ended and undone. */
export class InterruptedError extends RmmError {
  constructor(readonly reason: string) {
    super('apply.interrupted', `interrupted by ${reason}`);
  }
}

export function interruptOf(signal: AbortSignal): InterruptedError {
  return signal.reason instanceof InterruptedError ? signal.reason : new InterruptedError(String(signal.reason ?? 'a signal'));
}

/**
 * A host whose commands end when the run is interrupted, while a step runs: the processes that step
 * started are ended (EOF and a signal; lifelines end what they run) and its waits for a command's
 * end are abandoned. Between steps and during the undos nothing is cut short, so the undos can
 * release snapshots, write the record and let go of the lock; holders taken by earlier steps (a
 * freeze, the lock) are released by those undos, not killed.
 */
export class InterruptibleHost extends HostWrapper {
  /** Set while a step runs, by the sync. */
  stepRunning = false;
  readonly #started = new Set<RemoteProcess>();

  constructor(
    inner: RemoteHost,
    private readonly signal: AbortSignal,
  ) {
    super(inner);
    signal.addEventListener('abort', () => {
      for (const proc of this.#started) proc.kill('TERM');
    });
  }

  override exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.cut(this.inner.exec(argv, opts));
  }

  override async spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    const proc = await this.cut(this.inner.spawn(argv, opts));
    if (!this.stepRunning) return proc;
    this.#started.add(proc);
    void proc.exit.then(() => this.#started.delete(proc));
    return proc;
  }

  override readFile(path: string, opts?: CommandOptions): Promise<Buffer> {
    return this.cut(this.inner.readFile(path, opts));
  }

  override writeFileAtomic(path: string, data: string | Buffer, opts?: CommandOptions & { mode?: number }): Promise<void> {
    return this.cut(this.inner.writeFileAtomic(path, data, opts));
  }

  /** Processes a step started stay this step's: the next step's are tracked afresh. */
  stepEnded(): void {
    this.stepRunning = false;
    this.#started.clear();
  }

  private cut<T>(work: Promise<T>): Promise<T> {
    if (!this.stepRunning) return work;
    if (this.signal.aborted) {
      work.catch(() => {});
      return Promise.reject(interruptOf(this.signal));
    }
    return new Promise<T>((resolve, reject) => {
      const stop = () => reject(interruptOf(this.signal));
      this.signal.addEventListener('abort', stop, { once: true });
      work.then(resolve, reject).finally(() => this.signal.removeEventListener('abort', stop));
    });
  }
}
