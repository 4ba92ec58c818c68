import { RmmError } from '../errors.js';
import { HostWrapper, type CommandOptions, type RemoteHost, type RemoteProcess } from '../transport/index.js';
import type { Step } from './runner.js';

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
 * A host whose processes end when the run is interrupted, while a step runs: the processes that
 * step started (a copy's rsync or tar streams, a hook) are ended (a signal and EOF; lifelines end
 * what they run). A short command is let finish: abandoning it would let it land after the undos
 * (a snapshot made, a key authorized or a record written after they were cleaned up). The runner
 * then treats the step as interrupted. Holders taken by earlier steps (a freeze, the lock) are
 * released by the undos, not killed.
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

  override async spawn(argv: readonly string[], opts?: CommandOptions): Promise<RemoteProcess> {
    const proc = await this.inner.spawn(argv, opts);
    if (!this.stepRunning) return proc;
    if (this.signal.aborted) proc.kill('TERM');
    this.#started.add(proc);
    void proc.exit.then(() => this.#started.delete(proc));
    return proc;
  }

  /** Processes a step started stay this step's: the next step's are tracked afresh. */
  stepEnded(): void {
    this.stepRunning = false;
    this.#started.clear();
  }
}

/** The step, with its hosts told while it runs: an interrupt then ends the processes it started. */
export function interruptibleStep(step: Step, hosts: readonly InterruptibleHost[]): Step {
  if (hosts.length === 0) return step;
  return {
    ...step,
    run: async (scope) => {
      for (const h of hosts) h.stepRunning = true;
      try {
        return await step.run(scope);
      } finally {
        for (const h of hosts) h.stepEnded();
      }
    },
  };
}
