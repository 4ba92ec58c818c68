import type { ApplyEvent } from '../../apply/events.js';
import type { ReconcileOutcome } from '../../apply/reconcile.js';
import { formatDuration } from '../../config/units.js';
import type { WatchEvent } from '../../watch/controller.js';
import { textEvents } from './apply.js';

const OUTCOME: Record<ReconcileOutcome, string> = {
  synced: 'synced',
  verified: 'verified: the origin had not changed',
  'fixed-up': 'fixups run again',
  'rolled-back': 'rolled back to its recovery point',
  'up-to-date': 'up to date',
  suspended: 'suspended (spec.suspend)',
  blocked: 'blocked',
  failed: 'FAILED',
};

/**
 * `rmm watch` as text: a line per look at a replica, with when the next one comes; of each sync, its
 * copies (progress, what was copied) and anything that failed or was undone. `verbose` adds every
 * step and note, as apply shows them, and the command behind a failure.
 */
export function watchTextEvents(out: NodeJS.WritableStream, verbose = false, now: () => number = Date.now): ((e: ApplyEvent | WatchEvent) => void) & { close(): void } {
  const sync = textEvents(out, verbose);
  const view = (e: ApplyEvent | WatchEvent): void => {
    switch (e.type) {
      case 'watch.start':
        out.write(`rmm watch: ${e.replicas.length} replica${e.replicas.length === 1 ? '' : 's'} (${e.replicas.join(', ')}) from ${e.files.join(', ')}; the files are read again when they change; Ctrl-C stops\n`);
        if (e.metrics) out.write(`rmm watch: metrics at ${e.metrics}/metrics, status page at ${e.metrics}/\n`);
        break;
      case 'watch.reload': {
        const parts = [...(e.added.length ? [`added ${e.added.join(', ')}`] : []), ...(e.changed.length ? [`changed ${e.changed.join(', ')}`] : []), ...(e.removed.length ? [`removed ${e.removed.join(', ')}`] : [])];
        out.write(`rmm watch: the configuration changed: ${parts.join('; ') || 'no replica changed'}\n`);
        break;
      }
      case 'watch.invalid':
        for (const p of e.problems) out.write(`${p}\n`);
        out.write(`rmm watch: ${e.message}\n`);
        break;
      case 'watch.result': {
        const next = e.nextAt === null ? 'no next look' : `next look at ${e.nextAt.slice(11, 19)} UTC (in ${formatDuration(Math.max(0, Date.parse(e.nextAt) - now()))})`;
        const what = e.error ? `${OUTCOME[e.outcome]}: ${e.error.message}` : e.outcome === 'blocked' && e.reason ? `blocked: ${e.reason}` : OUTCOME[e.outcome];
        out.write(`${e.replica}: ${what}; ${next}\n`);
        break;
      }
      case 'watch.alert':
        out.write(`${e.replica}: alert ${e.alert} ${e.delivered ? 'posted to' : 'NOT delivered to'} ${e.to}${e.problem ? ` (${e.problem})` : ''}\n`);
        break;
      case 'watch.stop':
        out.write(`rmm watch: stopped (${e.reason})\n`);
        break;
      default:
        // A look every few seconds must not fill the log: its steps show only when they fail.
        if (!verbose && (e.type === 'note' || (e.type === 'step' && (e.status === 'start' || e.status === 'done' || e.status === 'skipped')))) break;
        sync(e);
    }
  };
  view.close = () => sync.close();
  return view;
}
