import type { Replica } from '../config/spec.js';
import type { RecoveryPoint } from '../record/record.js';

/** Which points to keep: the newest N, minus those older than maxAge; the newest is always kept. */
export function retain(points: readonly RecoveryPoint[], retention: Replica['policy']['retention'], now: Date): { kept: RecoveryPoint[]; dropped: RecoveryPoint[] } {
  const newestFirst = [...points].reverse();
  const kept = newestFirst.filter((p, i) => i === 0 || (i < retention.recoveryPoints && (retention.maxAgeMs === undefined || now.getTime() - Date.parse(p.startedAt) <= retention.maxAgeMs)));
  const dropped = newestFirst.filter((p) => !kept.includes(p));
  return { kept: kept.reverse(), dropped };
}
