import { formatDuration } from '../../config/units.js';
import { currentPoint, rpoStanding } from '../../policy/schedule.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, writeJson, type Command } from '../command.js';
import { ENGINE_HELP, ENGINE_OPTIONS, loadObservePlan } from './engine.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'show each replica as its target records it: last consistent sync, age against RPO, recovery points',
  usage: 'rmm status -f FILE [-o json]',
  details: [FILE_HELP, OUTPUT_HELP, ENGINE_HELP, '', 'Exit codes: 0 every replica within its RPO, 1 otherwise or on error, 2 invalid input.'].join('\n'),
  options: { ...FILE_OPTION, ...ENGINE_OPTIONS },
  async run(ctx) {
    const run = await loadObservePlan(ctx);
    await run.pool.closeAll();
    const now = new Date();
    const rows = run.spec.replicas.map((r): StatusRow => {
      const seen = run.observed.replicas.get(r.name)!;
      const record = 'record' in seen.target ? seen.target.record : undefined;
      const point = currentPoint(record);
      const { ageMs, withinRpo } = rpoStanding(r, record, now);
      // A target rmm could not read says nothing about the replica: unknown (or damaged), with the cause, never invented facts.
      if ('error' in seen.target) {
        const damaged = seen.target.code?.startsWith('record.') || seen.target.code === 'target.symlink';
        return { replica: r.name, state: damaged ? 'damaged' : 'unknown', cause: seen.target.error, lastConsistent: null, verifiedAt: null, ageMs: null, rpoMs: r.policy.rpoMs ?? null, withinRpo: false, bytes: null, recoveryPoints: [], fixups: null };
      }
      return {
        replica: r.name,
        state: record?.state ?? 'none',
        lastConsistent: point?.startedAt ?? null,
        verifiedAt: point?.verifiedAt ?? null,
        ageMs: ageMs ?? null,
        rpoMs: r.policy.rpoMs ?? null,
        withinRpo,
        bytes: point?.stats?.bytesTotal ?? null,
        recoveryPoints: record?.points.map((p) => p.id) ?? [],
        fixups: point?.fixups ? (point.fixups.rewriting ? 'being rewritten' : 'applied') : null,
      };
    });
    if (ctx.output === 'json') writeJson(ctx, { formatVersion: 1, replicas: rows });
    else {
      for (const row of rows) {
        if (row.cause !== undefined) {
          ctx.stdout.write(`${row.replica}: ${row.state}: ${row.cause}\n`);
          continue;
        }
        const age = row.ageMs === null ? 'never synced' : `${formatDuration(row.ageMs)} old`;
        const rpo = row.rpoMs === null ? 'no RPO' : `RPO ${formatDuration(row.rpoMs)}${row.withinRpo ? '' : ' EXCEEDED'}`;
        const fixups = row.fixups === 'being rewritten' ? ', its fixups being rewritten (a re-run did not finish: rmm apply finishes it)' : '';
        ctx.stdout.write(`${row.replica}: ${row.state}, ${age}, ${rpo}, ${row.bytes ?? 0} bytes, ${row.recoveryPoints.length} recovery point(s)${fixups}\n`);
      }
    }
    return rows.every((r) => r.withinRpo) ? EXIT.ok : EXIT.error;
  },
};

interface StatusRow {
  readonly replica: string;
  /** The record's state, `none` without one, `unknown` when the target could not be read, `damaged` when its record is. */
  readonly state: string;
  readonly cause?: string;
  readonly lastConsistent: string | null;
  readonly verifiedAt: string | null;
  readonly ageMs: number | null;
  readonly rpoMs: number | null;
  readonly withinRpo: boolean;
  readonly bytes: number | null;
  readonly recoveryPoints: readonly string[];
  /** The current point's fixups: applied, or being rewritten by a re-run that did not finish; null without. */
  readonly fixups: 'applied' | 'being rewritten' | null;
}
