import { describe, expect, it } from 'vitest';
import { originOfDamaged, rebuildRecord, type TargetInventory } from '../../src/record/rebuild.js';
import { parseRecord } from '../../src/record/record.js';

const origin = { name: 'web', hostname: 'web-01', machineId: '4c4c4544004e3510804cb2c04f4e4d32' };
const now = new Date('2026-12-06T11:00:00.000Z');
const rebuild = (inventory: TargetInventory) => rebuildRecord({ replica: 'web-dr', origin, inventory, now, runId: 'repair-1' });

describe('rebuildRecord', () => {
  it('records the point folders oldest first, the newest current, claiming nothing about how they were taken', () => {
    const out = rebuild({ folders: ['20261206T100000Z', '20261205T100000Z'], current: 'points/20261206T100000Z' });
    expect(out.repointCurrent).toBeUndefined();
    expect(out.unused).toEqual([]);
    const record = parseRecord(JSON.stringify(out.record), 'test');
    expect(record.points).toEqual([
      { id: '20261205T100000Z', specHash: '', startedAt: '2026-12-05T10:00:00.000Z', snapshots: {}, pointInTime: false },
      { id: '20261206T100000Z', specHash: '', startedAt: '2026-12-06T10:00:00.000Z', snapshots: {}, pointInTime: false },
    ]);
    expect(record).toMatchObject({ state: 'consistent', specHash: '', rebuiltAt: now.toISOString(), origin });
  });

  it('stops at the point current names, leaving newer ones alone, and repoints a current that names no point', () => {
    const older = rebuild({ folders: ['20261205T100000Z', '20261206T100000Z'], current: 'points/20261205T100000Z' });
    expect(older.record!.points.map((p) => p.id)).toEqual(['20261205T100000Z']);
    expect(older.unused).toEqual(['20261206T100000Z']);
    for (const current of ['', 'points/../../etc', '/etc', 'points/20261101T000000Z']) {
      const out = rebuild({ folders: ['20261205T100000Z', '20261206T100000Z'], current });
      expect(out.repointCurrent).toBe('20261206T100000Z');
      expect(out.record!.points.length).toBe(2);
    }
  });

  it('leaves alone folders whose names are no real time or lie in the future', () => {
    const out = rebuild({ folders: ['20261205T100000Z', '20261399T000000Z', '20260230T000000Z', '99991231T235959Z', '20261206T110500Z'], current: 'points/99991231T235959Z' });
    expect(out.record!.points.map((p) => p.id)).toEqual(['20261205T100000Z', '20261206T110500Z']);
    expect(out.ignored).toEqual(['20260230T000000Z', '20261399T000000Z', '99991231T235959Z']);
    expect(out.repointCurrent).toBe('20261206T110500Z');
  });

  it('makes no record when no folder is a point', () => {
    expect(rebuild({ folders: [], current: '' })).toEqual({ unused: [], ignored: [] });
    expect(rebuild({ folders: ['../x', '.partial', 'notes'], current: '' }).record).toBeUndefined();
  });
});

describe('originOfDamaged', () => {
  it('takes the origin from a damaged record only when it says so plainly', () => {
    expect(originOfDamaged(JSON.stringify({ origin, points: 'broken' }))).toEqual(origin);
    for (const text of [undefined, '{not json', '{}', JSON.stringify({ origin: { ...origin, name: 'Bad Name' } }), JSON.stringify({ origin: { ...origin, hostname: 'a\nb' } })])
      expect(originOfDamaged(text)).toBeUndefined();
  });
});
