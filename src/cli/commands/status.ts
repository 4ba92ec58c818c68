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
    const rows = run.spec.replicas.map((r) => {
      const seen = run.observed.replicas.get(r.name)!;
      const record = 'record' in seen.target ? seen.target.record : undefined;
      const point = currentPoint(record);
      const { ageMs, withinRpo } = rpoStanding(r, record, now);
      return {
        replica: r.name,
        state: 'error' in seen.target ? `unreachable: ${seen.target.error}` : (record?.state ?? 'none'),
        lastConsistent: point?.startedAt ?? null,
        verifiedAt: point?.verifiedAt ?? null,
        ageMs: ageMs ?? null,
        rpoMs: r.policy.rpoMs ?? null,
        withinRpo,
        bytes: point?.stats?.bytesTotal ?? null,
        recoveryPoints: record?.points.map((p) => p.id) ?? [],
      };
    });
    if (ctx.output === 'json') writeJson(ctx, rows);
    else {
      for (const row of rows) {
        const age = row.ageMs === null ? 'never synced' : `${formatDuration(row.ageMs)} old`;
        const rpo = row.rpoMs === null ? 'no RPO' : `RPO ${formatDuration(row.rpoMs)}${row.withinRpo ? '' : ' EXCEEDED'}`;
        ctx.stdout.write(`${row.replica}: ${row.state}, ${age}, ${rpo}, ${row.bytes ?? 0} bytes, ${row.recoveryPoints.length} recovery point(s)\n`);
      }
    }
    return rows.every((r) => r.withinRpo) ? EXIT.ok : EXIT.error;
  },
};
