import type { Readable } from 'node:stream';
import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';

/**
 * rsync ends a copy that moves no data for policy.stallTimeout by itself (--timeout); tar has no such
 * bound, and a `tar | ssh | tar` stream whose target stopped reading (a hung disk, a host that
 * vanished) would wait for ssh's keepalives, or for ever where the target still answers them. The
 * watchdog fails the tar streams of one copy when none of them moved a byte for that long: a stream
 * may idle while the others carry the files dealt to them, the copy as a whole may not. It sees the
 * bytes rmm carries (relay) and the byte counts each direct stream's origin side reports (TAR_STREAM).
 */
export class StallWatchdog {
  #last = Date.now();
  readonly #timer: NodeJS.Timeout;
  #stalled: Promise<void> = Promise.resolve();

  /** `onStall` fails the copy, then ends its processes: stop() waits for that. */
  constructor(
    readonly timeoutMs: number,
    onStall: () => Promise<void>,
  ) {
    this.#timer = setInterval(
      () => {
        if (Date.now() - this.#last < timeoutMs) return;
        clearInterval(this.#timer);
        this.#stalled = onStall().catch(() => {});
      },
      Math.min(1000, Math.max(50, timeoutMs / 10)),
    );
  }

  /** Bytes moved now. */
  readonly moved = (): void => {
    this.#last = Date.now();
  };

  /** Every chunk the stream gives counts as bytes moved (its data still goes where it went). */
  watch(stream: Readable): void {
    stream.on('data', this.moved);
  }

  /** Stops watching; resolves once what a stall started has ended. */
  stop(): Promise<void> {
    clearInterval(this.#timer);
    return this.#stalled;
  }
}

/** The error of a copy whose streams stalled, worded as rsync's exit 30 is (src/sync/copy.ts). */
export function stalledCopy(what: string, timeoutMs: number): RmmError {
  return new RmmError('sync.stalled', `${what} failed: no data moved for ${Math.round(timeoutMs / 1000)} s (policy stallTimeout); the target or the link between the hosts stopped answering`);
}

/**
 * Kills what unpacks into `dest` on the target (each stream's tar, and the sudo above it), also
 * when stopped: its stream stalled, so it would never end by itself. Bounded: a target that does not
 * answer is left to the connection's end.
 */
/**
 * Kills the origin's side of this run's direct streams: their ssh, which logs in with the run's key
 * (`ssh -i WORKDIR/key ...`); its tar then ends on a broken pipe. A receiver that SIGKILL cannot end
 * (stuck in the kernel) would otherwise hold the origin's tar, and with it the snapshot, forever.
 */
export async function killSenders(origin: RemoteHost, workDir: string): Promise<void> {
  const pattern = `^ssh -i ${workDir.replace(/[.[\]()*+?{}|^$\\]/g, '\\$&')}/key `;
  await origin.exec(['pkill', '-KILL', '-f', '--', pattern], { sudo: true, allowFailure: true, timeoutMs: 15_000 }).catch(() => {});
}

export async function killReceivers(target: RemoteHost, dest: string): Promise<void> {
  // pkill -f matches the arguments joined by spaces: `... tar -x ... -C DEST -f -` (src/sync/tar.ts untar).
  const pattern = `(^|[ /])tar -x .* -C ${dest.replace(/[.[\]()*+?{}|^$\\]/g, '\\$&')} -f -$`;
  await target.exec(['pkill', '-KILL', '-f', '--', pattern], { sudo: true, allowFailure: true, timeoutMs: 15_000 }).catch(() => {});
}
