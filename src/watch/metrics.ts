import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ApplyEvent } from '../apply/events.js';
import type { Replica } from '../config/spec.js';
import { formatDuration } from '../config/units.js';
import type { WatchEvent } from './controller.js';

/** What the status page shows of a replica: its last look. */
interface Row {
  outcome?: string;
  asOf?: number;
  nextAt?: string;
  error?: string;
}

/**
 * What `rmm watch --metrics ADDRESS:PORT` serves, read-only: Prometheus metrics at /metrics
 * (prom-client) and a small status page at /. Both are made from the watch's own events.
 */
export class WatchMetrics {
  readonly #registry = new Registry();
  readonly #rows = new Map<string, Row>();
  #replicas: readonly Replica[] = [];
  readonly #looks = new Counter({ name: 'rmm_replica_looks_total', help: 'Looks at a replica (observe, plan, sync if due), by how they came out.', labelNames: ['replica', 'outcome'], registers: [this.#registry] });
  readonly #bytes = new Counter({ name: 'rmm_replica_sent_bytes_total', help: 'Bytes sent to the target by the syncs of a replica.', labelNames: ['replica'], registers: [this.#registry] });
  readonly #alerts = new Counter({ name: 'rmm_replica_alerts_total', help: 'Alerts posted to webhooks, by kind and whether they were delivered.', labelNames: ['replica', 'alert', 'delivered'], registers: [this.#registry] });
  readonly #duration = new Gauge({ name: 'rmm_replica_last_look_seconds', help: 'How long the last look at a replica took.', labelNames: ['replica'], registers: [this.#registry] });
  readonly #failing = new Gauge({ name: 'rmm_replica_failing', help: '1 while the looks at a replica fail.', labelNames: ['replica'], registers: [this.#registry] });

  constructor(private readonly now: () => number = Date.now) {
    // Ages count at the moment of the scrape, not of the last look.
    this.#atScrape('rmm_replica_consistent_age_seconds', "Age of a replica's current recovery point: since when it is known to equal the origin.", (_r, asOf, now) => (asOf === undefined ? undefined : (now - asOf) / 1000));
    this.#atScrape('rmm_replica_rpo_seconds', "A replica's recovery point objective.", (r) => (r.policy.rpoMs === undefined ? undefined : r.policy.rpoMs / 1000));
    this.#atScrape('rmm_replica_within_rpo', '1 when the replica has a consistent copy younger than its RPO (or has no RPO), else 0.', (r, asOf, now) =>
      asOf !== undefined && (r.policy.rpoMs === undefined || now - asOf <= r.policy.rpoMs) ? 1 : 0,
    );
  }

  /** A gauge per replica, computed when Prometheus asks; `value` undefined leaves the replica out. */
  #atScrape(name: string, help: string, value: (replica: Replica, asOf: number | undefined, now: number) => number | undefined): void {
    const metrics = this;
    new Gauge({
      name,
      help,
      labelNames: ['replica'],
      registers: [this.#registry],
      collect() {
        this.reset();
        for (const r of metrics.#replicas) {
          const v = value(r, metrics.#rows.get(r.name)?.asOf, metrics.now());
          if (v !== undefined) this.set({ replica: r.name }, v);
        }
      },
    });
  }

  /** The replicas watched now: the page and the gauges list these. */
  setReplicas(replicas: readonly Replica[]): void {
    this.#replicas = replicas;
    for (const name of [...this.#rows.keys()]) if (!replicas.some((r) => r.name === name)) this.#rows.delete(name);
  }

  /** Takes each event as it is emitted. */
  observe(e: ApplyEvent | WatchEvent): void {
    if (e.type === 'filesystem.done') this.#bytes.inc({ replica: e.replica }, e.bytesSent);
    else if (e.type === 'watch.alert') this.#alerts.inc({ replica: e.replica, alert: e.alert, delivered: String(e.delivered) });
    else if (e.type === 'watch.result') {
      this.#looks.inc({ replica: e.replica, outcome: e.outcome });
      this.#duration.set({ replica: e.replica }, e.seconds);
      this.#failing.set({ replica: e.replica }, e.error ? 1 : 0);
      const row = this.#rows.get(e.replica) ?? {};
      this.#rows.set(e.replica, {
        outcome: e.outcome,
        ...(e.asOf !== undefined ? { asOf: Date.parse(e.asOf) } : row.asOf !== undefined ? { asOf: row.asOf } : {}),
        ...(e.nextAt ? { nextAt: e.nextAt } : {}),
        ...(e.error ? { error: `${e.error.code}: ${e.error.message}` } : {}),
      });
    }
  }

  /** Serves /metrics and / on the address; resolves with where it listens (`http://HOST:PORT`). */
  async serve(address: string): Promise<{ url: string; close(): Promise<void> }> {
    const { host, port } = parseAddress(address);
    const server: Server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        this.#registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.#registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(this.page());
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    return {
      url: `http://${shown}:${bound.port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  /** The status page: a row per replica, refreshed by the browser every 10 s. */
  page(): string {
    const now = this.now();
    const rows = this.#replicas.map((r) => {
      const row = this.#rows.get(r.name) ?? {};
      const age = row.asOf === undefined ? undefined : now - row.asOf;
      const rpo = r.policy.rpoMs;
      const within = age !== undefined && (rpo === undefined || age <= rpo);
      const cells = [
        r.name,
        row.outcome ?? 'not looked at yet',
        age === undefined ? 'no consistent copy' : `${formatDuration(age)} ago`,
        rpo === undefined ? 'none' : formatDuration(rpo),
        age === undefined ? 'no' : within ? 'yes' : 'NO',
        row.nextAt ?? '',
        row.error ?? '',
      ];
      return `<tr class="${within ? 'ok' : 'late'}">${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
    });
    return [
      '<!doctype html>',
      '<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><title>rmm watch</title>',
      '<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em}tr.late td{background:#fdd}</style></head>',
      `<body><h1>rmm watch</h1><p>${this.#replicas.length} replica(s), as of ${new Date(now).toISOString()}</p>`,
      '<table><thead><tr><th>replica</th><th>last look</th><th>consistent as of</th><th>RPO</th><th>within RPO</th><th>next look</th><th>last error</th></tr></thead>',
      `<tbody>${rows.join('')}</tbody></table></body></html>`,
      '',
    ].join('\n');
  }
}

/** `HOST:PORT`, `[V6]:PORT` or `:PORT` (all addresses: said so). */
export function parseAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error(`'${text}' is not HOST:PORT (such as 127.0.0.1:9464)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
