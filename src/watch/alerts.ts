import type { ReconcileOutcome } from '../apply/reconcile.js';
import type { AlertKind, Replica } from '../config/spec.js';
import { formatDuration } from '../config/units.js';

/** What a webhook receives, one JSON object per alert. */
export interface Alert {
  readonly type: 'rmm.alert';
  readonly alert: AlertKind;
  readonly replica: string;
  readonly origin: string;
  readonly target: string;
  readonly at: string;
  /** One line for people: what happened, and since when. */
  readonly message: string;
  /** Since when the replica's current recovery point is known to equal the origin, if it has one. */
  readonly lastConsistentAt: string | null;
  readonly rpoMs: number | null;
  readonly error?: { readonly code: string; readonly message: string };
}

interface Standing {
  /** The current point's time, as the last look that read it said. */
  asOf?: number;
  failing?: { code: string; message: string };
  breached: boolean;
}

const GOOD: ReadonlySet<ReconcileOutcome> = new Set(['synced', 'verified', 'up-to-date', 'fixed-up', 'rolled-back', 'suspended']);

/**
 * Each replica's standing between looks, and the alerts its changes make: `failed` when looks start
 * failing, `rpo-breached` when the current point grows older than the RPO (seen at a look or
 * between looks, while the target cannot even be reached), `recovered` when a good look ends
 * either. Each is said once per episode. Pure: the caller posts them.
 */
export class AlertTracker {
  readonly #standing = new Map<string, Standing>();

  /** After a look at the replica. */
  look(replica: Replica, look: { outcome: ReconcileOutcome; asOf?: string; error?: { code: string; message: string } }, now: number): Alert[] {
    const s = this.#of(replica.name);
    if (look.asOf !== undefined) s.asOf = Math.max(s.asOf ?? 0, Date.parse(look.asOf));
    const alerts: Alert[] = [];
    if (GOOD.has(look.outcome) && !look.error) {
      // An episode ends with the one `recovered` that says so: a good look while the copy is still
      // too old ends neither (a failure then is the same episode, not a second `failed`).
      if ((s.failing || s.breached) && !this.#late(replica, s, now)) {
        const ended = [...(s.failing ? [`its syncs failing (${s.failing.message})`] : []), ...(s.breached ? ['its RPO breach'] : [])].join(' and ');
        alerts.push(this.#alert('recovered', replica, s, now, `replica ${replica.name} recovered: ${ended} ended; ${this.#age(s, now)}`));
        s.failing = undefined;
        s.breached = false;
      }
    } else if (!s.failing) {
      s.failing = look.error ?? { code: `replica.${look.outcome}`, message: look.outcome };
      alerts.push(this.#alert('failed', replica, s, now, `replica ${replica.name} failed: ${s.failing.message}`, s.failing));
    }
    return [...alerts, ...this.tick([replica], now)];
  }

  /** Between looks: any replica now past its RPO. */
  tick(replicas: readonly Replica[], now: number): Alert[] {
    const alerts: Alert[] = [];
    for (const replica of replicas) {
      const s = this.#of(replica.name);
      if (s.breached || !this.#late(replica, s, now)) continue;
      s.breached = true;
      alerts.push(this.#alert('rpo-breached', replica, s, now, `replica ${replica.name} is past its RPO of ${formatDuration(replica.policy.rpoMs!)}: ${this.#age(s, now)}`, s.failing));
    }
    return alerts;
  }

  /** Replicas no longer watched are forgotten. */
  keep(names: ReadonlySet<string>): void {
    for (const name of [...this.#standing.keys()]) if (!names.has(name)) this.#standing.delete(name);
  }

  #late(replica: Replica, s: Standing, now: number): boolean {
    return replica.policy.rpoMs !== undefined && s.asOf !== undefined && now - s.asOf > replica.policy.rpoMs;
  }

  #age(s: Standing, now: number): string {
    return s.asOf === undefined ? 'no consistent copy yet' : `its copy is ${formatDuration(now - s.asOf)} old (consistent as of ${new Date(s.asOf).toISOString()})`;
  }

  #of(name: string): Standing {
    let s = this.#standing.get(name);
    if (!s) this.#standing.set(name, (s = { breached: false }));
    return s;
  }

  #alert(alert: AlertKind, replica: Replica, s: Standing, now: number, message: string, error?: { code: string; message: string }): Alert {
    return {
      type: 'rmm.alert',
      alert,
      replica: replica.name,
      origin: replica.origin.name,
      target: replica.target.endpoint.address,
      at: new Date(now).toISOString(),
      message,
      lastConsistentAt: s.asOf === undefined ? null : new Date(s.asOf).toISOString(),
      rpoMs: replica.policy.rpoMs ?? null,
      ...(error ? { error: { code: error.code, message: error.message } } : {}),
    };
  }
}
