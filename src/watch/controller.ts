import { hashOf } from '../config/resolve.js';
import type { AlertKind, Replica, Spec } from '../config/spec.js';
import type { ReconcileOutcome, ReconcileResult } from '../apply/reconcile.js';

/** What the watch loop says of itself, beside the events of each sync it runs. */
export type WatchEvent =
  | { type: 'watch.start'; replicas: readonly string[]; files: readonly string[]; metrics?: string }
  /** The files changed and were valid: the replicas now watched, and what changed. */
  | { type: 'watch.reload'; replicas: readonly string[]; added: readonly string[]; changed: readonly string[]; removed: readonly string[] }
  /** The files changed and are not valid: the last valid configuration keeps running. */
  | { type: 'watch.invalid'; message: string; problems: readonly string[] }
  /** A replica was reconciled: how it came out, and when the loop looks at it again. */
  | { type: 'watch.result'; replica: string; outcome: ReconcileOutcome; nextAt: string | null; seconds: number; reason?: string; error?: { message: string; code: string; retryable: boolean }; asOf?: string }
  /** An alert posted to a webhook (`to`: its scheme, host and port only: the rest may be a token). */
  | { type: 'watch.alert'; replica: string; alert: AlertKind; to: string; delivered: boolean; problem?: string }
  | { type: 'watch.stop'; reason: string };

export interface ControllerOptions {
  /** Replicas reconciled at once (never two of one origin: a filesystem takes one freeze at a time). */
  readonly parallelism: number;
  /** One replica brought to its spec; `signal` ends a running sync (its step undone). */
  readonly reconcile: (replica: Replica, signal: AbortSignal) => Promise<ReconcileResult>;
  readonly emit: (e: WatchEvent) => void;
  readonly now?: () => number;
  /** 0 to 1: spreads the next looks of replicas on one schedule. */
  readonly random?: () => number;
}

/** A replica with no schedule is looked at again after this long (its record, its RPO). */
export const RECHECK_MS = 10 * 60_000;
/** Retries after failures double up to this. */
export const MAX_BACKOFF_MS = 30 * 60_000;
/** Jitter: up to a tenth of the wait, and never more than this. */
const MAX_JITTER_MS = 30_000;
/** setTimeout's longest wait. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The long-running loop of `rmm watch`, as a controller's work queue: each replica is due at a
 * time; a due replica is reconciled (observe, plan, apply: level-based, so a look too many is
 * harmless), then queued again when its result says (its schedule's next time), after a backoff
 * that doubles while it keeps failing, or at once when its spec changes. A replica is never run
 * twice at once, nor two of one origin; at most `parallelism` run together.
 */
export class WatchController {
  readonly #replicas = new Map<string, Replica>();
  /** When each idle replica is due (ms since the epoch). */
  readonly #due = new Map<string, number>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #busyOrigins = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #abort = new AbortController();
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly opts: ControllerOptions) {
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
  }

  /** The replicas to watch: new ones and changed ones (any field) are due at once; gone ones are dropped (a running one ends its run). */
  setSpec(spec: Spec): { added: string[]; changed: string[]; removed: string[] } {
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    const names = new Set(spec.replicas.map((r) => r.name));
    for (const name of [...this.#replicas.keys()]) {
      if (names.has(name)) continue;
      removed.push(name);
      this.#replicas.delete(name);
      this.#due.delete(name);
      this.#failures.delete(name);
    }
    for (const replica of spec.replicas) {
      const before = this.#replicas.get(replica.name);
      this.#replicas.set(replica.name, replica);
      // Any change counts, not only the copy's shape (specHash): a new schedule or RPO is looked at now.
      if (before && hashOf(before) === hashOf(replica)) continue;
      (before ? changed : added).push(replica.name);
      this.#failures.delete(replica.name);
      if (!this.#running.has(replica.name)) this.#due.set(replica.name, this.#now());
      // A running one is due again when its run ends (see #run): it ran the old spec.
    }
    this.#pump();
    return { added, changed, removed };
  }

  /** When each idle replica is due next, for status and tests. */
  dueTimes(): ReadonlyMap<string, number> {
    return this.#due;
  }

  /** Stops: nothing more starts, running syncs end their step and undo it; resolves when they have. `reason` aborts them. */
  async stop(reason: unknown): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      if (this.#timer) clearTimeout(this.#timer);
      this.#abort.abort(reason);
    }
    await Promise.all(this.#running.values());
  }

  #pump(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopped) return;
    const now = this.#now();
    const order = [...this.#due].sort((a, b) => a[1] - b[1]);
    for (const [name, at] of order) {
      if (at > now || this.#running.size >= this.opts.parallelism) break;
      const replica = this.#replicas.get(name)!;
      if (this.#busyOrigins.has(originOf(replica))) continue;
      this.#start(replica);
    }
    // The next time a replica comes due; one due already but held back (its origin busy, or
    // parallelism reached) starts when a run ends, which pumps again.
    const next = Math.min(...[...this.#due.values()].filter((at) => at > now));
    if (Number.isFinite(next)) this.#timer = setTimeout(() => this.#pump(), Math.min(MAX_TIMER_MS, next - now));
  }

  #start(replica: Replica): void {
    this.#due.delete(replica.name);
    this.#busyOrigins.add(originOf(replica));
    const run = this.#run(replica).finally(() => {
      this.#running.delete(replica.name);
      this.#busyOrigins.delete(originOf(replica));
      this.#pump();
    });
    this.#running.set(replica.name, run);
  }

  async #run(replica: Replica): Promise<void> {
    let result: Look;
    const started = this.#now();
    // A signal of its own, ended with the loop's: what a run hangs on it goes with the run (the
    // loop's own would gather a listener per run for as long as watch runs).
    const run = new AbortController();
    const stop = (): void => run.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener('abort', stop, { once: true });
    try {
      const r = await this.opts.reconcile(replica, run.signal);
      result = {
        outcome: r.outcome,
        ...(r.requeueAfterMs !== undefined ? { requeueAfterMs: r.requeueAfterMs } : {}),
        ...(r.error ? { error: r.error } : {}),
        ...(r.action.reasons[0] !== undefined ? { reason: r.action.reasons[0] } : {}),
        ...(r.asOf !== undefined ? { asOf: r.asOf } : {}),
      };
    } catch (err) {
      // reconcile reports its failures itself; one that escapes it (a bug, a lost session) is retried.
      result = { outcome: 'failed', error: { message: (err as Error)?.message ?? String(err), code: (err as { code?: string })?.code ?? 'rmm.internal', retryable: true } };
    } finally {
      this.#abort.signal.removeEventListener('abort', stop);
    }
    if (this.#stopped) return;
    const current = this.#replicas.get(replica.name);
    if (!current) return; // removed while it ran
    const wait = current !== replica && hashOf(current) !== hashOf(replica) ? 0 : this.#wait(current, result);
    const at = this.#now() + wait;
    this.#due.set(replica.name, at);
    const { requeueAfterMs: _, ...said } = result;
    try {
      this.opts.emit({ type: 'watch.result', replica: replica.name, nextAt: new Date(at).toISOString(), seconds: (this.#now() - started) / 1000, ...said });
    } catch {
      // What shows the result (a closed output) must not stop the loop.
    }
  }

  /** How long until the next look: the result's own time, a doubling backoff after failures, plus jitter. */
  #wait(replica: Replica, result: Look): number {
    const name = replica.name;
    let wait: number;
    if (result.error) {
      const failures = (this.#failures.get(name) ?? 0) + 1;
      this.#failures.set(name, failures);
      // A replica on a short schedule is retried as often as it is synced, at first.
      const schedule = replica.policy?.schedule;
      const every = schedule?.kind === 'interval' ? schedule.intervalMs : Infinity;
      const base = result.error.retryable ? Math.max(1000, Math.min(every, result.requeueAfterMs ?? 60_000)) : MAX_BACKOFF_MS;
      wait = Math.min(MAX_BACKOFF_MS, base * 2 ** (failures - 1));
    } else {
      this.#failures.delete(name);
      // At least a second: a look whose plan and next time disagree must not spin.
      wait = Math.max(1000, result.requeueAfterMs ?? RECHECK_MS);
    }
    return wait + Math.floor(this.#random() * Math.min(wait / 10, MAX_JITTER_MS));
  }
}

/** What one reconcile came to, as the loop keeps it. */
interface Look {
  readonly outcome: ReconcileOutcome;
  readonly requeueAfterMs?: number;
  readonly reason?: string;
  readonly error?: { readonly message: string; readonly code: string; readonly retryable: boolean };
  readonly asOf?: string;
}

/** Replicas of one origin are reconciled one after another. */
function originOf(replica: Replica): string {
  const e = replica.origin.endpoint;
  return `${e.address}:${e.port}`;
}
