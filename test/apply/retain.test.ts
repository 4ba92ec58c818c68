import { describe, expect, it } from 'vitest';
import { retain } from '../../src/policy/retention.js';
import type { RecoveryPoint } from '../../src/record/record.js';

const point = (id: string, startedAt: string): RecoveryPoint => ({ id, specHash: 'h', startedAt, snapshots: {}, pointInTime: true });
const points = ['2026-11-01', '2026-11-10', '2026-11-20', '2026-11-24'].map((d, i) => point(`p${i}`, `${d}T00:00:00Z`));
const now = new Date('2026-11-24T12:00:00Z');

describe('retention of recovery points', () => {
  it('keeps the newest N', () => {
    const { kept, dropped } = retain(points, { recoveryPoints: 2 }, now);
    expect(kept.map((p) => p.id)).toEqual(['p2', 'p3']);
    expect(dropped.map((p) => p.id)).toEqual(['p1', 'p0']);
  });

  it('also drops points older than maxAge, but never the newest', () => {
    expect(retain(points, { recoveryPoints: 10, maxAgeMs: 7 * 86400_000 }, now).kept.map((p) => p.id)).toEqual(['p2', 'p3']);
    expect(retain(points, { recoveryPoints: 10, maxAgeMs: 1000 }, now).kept.map((p) => p.id)).toEqual(['p3']);
  });
});

