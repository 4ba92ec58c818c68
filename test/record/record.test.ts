import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseRecord, PATTERN_MEANINGS, POINT_ID, pointDir, RecordError, type RecoveryPoint, type ReplicaRecord } from '../../src/record/record.js';

const root = path.resolve(import.meta.dirname, '../..');
const where = 'backup-01:/srv/replicas/web-dr/.rmm/record.json';

// `satisfies Required<…>`: a field added to the interfaces must be added here, and then to the schema,
// or every record rmm writes would be refused as damaged on the next read.
const older = {
  id: '20261123T093000Z',
  specHash: '0123456789abcdef',
  startedAt: '2026-11-23T09:30:00.000Z',
  finishedAt: '2026-11-23T09:41:07.250Z',
  snapshots: { '/': 'btrfs', '/srv/data': 'fsfreeze' },
  pointInTime: true,
  stats: { files: 120_000, filesTransferred: 310, bytesTotal: 8_000_000_000, bytesSent: 52_000_000, bytesReceived: 91_000 },
  manifests: { '/': 'a'.repeat(64), '/srv/data': '0123456789abcdef'.repeat(4) },
  verifiedAt: '2026-11-23T21:30:00.000Z',
  fixups: { hash: '0123456789abcdef', files: ['/etc/network/interfaces', '/etc/sysconfig/network-scripts/ifcfg-eth0 -> /etc/sysconfig/network-scripts/ifcfg-ens3'] },
} satisfies Required<RecoveryPoint>;
const newer: RecoveryPoint = { id: '20261124T093000Z', specHash: '0123456789abcdef', startedAt: '2026-11-24T09:30:00.000Z', snapshots: { '/': 'none' }, pointInTime: false };
const pending: RecoveryPoint = { id: '20261124T113000Z', specHash: '0123456789abcdef', startedAt: '2026-11-24T11:30:00.000Z', snapshots: {}, pointInTime: false };
const valid = {
  schemaVersion: 1,
  replica: 'web-dr',
  origin: { name: 'web', hostname: 'web-01', machineId: '4c4c4544004e3510804cb2c04f4e4d32' },
  specHash: '0123456789abcdef',
  state: 'failed',
  runId: 'mfx2k1a9c3f0e1',
  updatedAt: '2026-11-24T11:31:02.004Z',
  pending,
  points: [older, newer],
  pruning: ['20261120T010000Z'],
  error: 'rsync: connection unexpectedly closed',
  rebuiltAt: '2026-11-24T11:31:02.004Z',
} satisfies Required<ReplicaRecord>;

/** The valid record with `change` applied to a copy of it. */
function record(change: (r: any) => void = () => {}): unknown {
  const copy = structuredClone(valid);
  change(copy);
  return copy;
}

function failure(text: string): RecordError {
  try {
    parseRecord(text, where);
  } catch (err) {
    if (err instanceof RecordError) return err;
    throw err;
  }
  throw new Error('parseRecord accepted it');
}

function damage(value: unknown): string {
  const err = failure(JSON.stringify(value));
  expect(err.code).toBe('record.damaged');
  const prefix = `the replica record ${where} is damaged: `;
  expect(err.message.startsWith(prefix)).toBe(true);
  return err.message.slice(prefix.length);
}

describe('parseRecord', () => {
  it('accepts a record with every field, and the shapes rmm writes', () => {
    expect(parseRecord(JSON.stringify(valid, null, 2), where)).toEqual(valid);
    const first = { ...valid, state: 'in-progress', points: [], error: undefined };
    expect(parseRecord(JSON.stringify(first), where)).toEqual({ ...first, error: undefined });
    // As test/plan/plan.test.ts builds one: whole seconds, no stats, no manifests.
    const plain = { ...valid, state: 'consistent', pending: undefined, error: undefined, updatedAt: '2026-11-24T11:30:00Z', points: [{ ...newer, startedAt: '2026-11-24T09:30:00Z', finishedAt: '2026-11-24T09:30:00Z' }] };
    expect(parseRecord(JSON.stringify(plain), where).points).toHaveLength(1);
  });

  it.each([
    ['../../../victim'],
    ['../../victim-sibling'],
    [''],
    ['.'],
    ['..'],
    ['a/b'],
    ['.partial'],
    ['20261124T093000Z/../../x'],
    ['20261124T093000Z\n'],
  ])('refuses the point id %j', (id) => {
    expect(damage(record((r) => (r.points[1].id = id)))).toBe(`points[1].id ${JSON.stringify(id)} is not a recovery point id`);
    expect(damage(record((r) => (r.pending.id = id)))).toBe(`pending.id ${JSON.stringify(id)} is not a recovery point id`);
  });

  it.each<[string, (r: any) => void, string]>([
    ['a null point', (r) => (r.points[0] = null), 'points[0] is null, not an object'],
    ['a point that is a path', (r) => (r.points[0] = '/etc'), 'points[0] is the string "/etc", not an object'],
    ['points that are not an array', (r) => (r.points = { 0: older }), 'points is an object, not an array'],
    ['no points', (r) => delete r.points, 'points is missing'],
    ['a current field', (r) => (r.current = '/etc'), 'the record has an unknown field "current"'],
    ['an unknown field in a point', (r) => (r.points[0].path = '/etc'), 'points[0] has an unknown field "path"'],
    ['an updatedAt in words', (r) => (r.updatedAt = 'yesterday'), 'updatedAt "yesterday" is not a UTC time such as 2026-11-24T11:30:00.000Z'],
    ['a timestamp with an offset', (r) => (r.points[0].startedAt = '2026-11-23T09:30:00+02:00'), 'points[0].startedAt "2026-11-23T09:30:00+02:00" is not a UTC time such as 2026-11-24T11:30:00.000Z'],
    ['a day that does not exist', (r) => (r.points[0].finishedAt = '2026-02-30T00:00:00Z'), 'points[0].finishedAt "2026-02-30T00:00:00Z" is not a time that exists'],
    ['an hour that does not exist', (r) => (r.pending.startedAt = '2026-11-24T24:00:00Z'), 'pending.startedAt "2026-11-24T24:00:00Z" is not a time that exists'],
    ['a number for a time', (r) => (r.points[0].verifiedAt = 0), 'points[0].verifiedAt is the number 0, not a string'],
    ['no runId', (r) => delete r.runId, 'runId is missing'],
    ['a point without startedAt', (r) => delete r.points[0].startedAt, 'points[0].startedAt is missing'],
    ['an origin without machineId', (r) => delete r.origin.machineId, 'origin.machineId is missing'],
    ['a string for a boolean', (r) => (r.points[0].pointInTime = 'yes'), 'points[0].pointInTime is the string "yes", not a boolean'],
    ['a negative count', (r) => (r.points[0].stats.bytesSent = -1), 'points[0].stats.bytesSent -1 is less than 0'],
    ['a fractional count', (r) => (r.points[0].stats.files = 1.5), 'points[0].stats.files is the number 1.5, not an integer'],
    ['an unknown state', (r) => (r.state = 'done'), 'state "done" is not one of "in-progress", "consistent", "inconsistent", "failed", "interrupted"'],
    ['an unknown provider', (r) => (r.points[0].snapshots['/'] = 'zfs'), 'points[0].snapshots["/"] "zfs" is not one of "lvm", "btrfs", "fsfreeze", "none"'],
    ['a relative mount point', (r) => (r.points[0].snapshots = { srv: 'btrfs' }), 'points[0].snapshots has a key "srv" that is not an absolute path'],
    ['a manifest that is not a digest', (r) => (r.points[0].manifests['/'] = '$(reboot)'), 'points[0].manifests["/"] "$(reboot)" is not a SHA-256 digest in hex'],
    ['a replica name that climbs', (r) => (r.replica = '../etc'), 'replica "../etc" is not a name (a DNS label)'],
    ['schemaVersion as a string', (r) => (r.schemaVersion = '1'), 'schemaVersion "1" is not 1'],
    ['schemaVersion 0', (r) => (r.schemaVersion = 0), 'schemaVersion 0 is not 1'],
    ['a repeated id', (r) => r.points.push({ ...r.points[1], startedAt: '2026-11-24T09:30:00.500Z' }), 'points[2].id "20261124T093000Z" is also the id of points[1]'],
    ['points newest first', (r) => r.points.reverse(), 'points[1] started before points[0], but points are kept oldest first'],
    ['a pending point that is kept', (r) => (r.pending = r.points[1]), 'pending.id "20261124T093000Z" is the id of points[1], a kept point'],
  ])('refuses %s', (_, change, problem) => {
    expect(damage(record(change))).toBe(problem);
  });

  it('refuses what is not a record at all', () => {
    expect(damage(null)).toBe('the record is null, not an object');
    expect(damage([valid])).toBe('the record is an array, not an object');
    const err = failure('{"schemaVersion": 1, \u001b[2J');
    expect(err.code).toBe('record.damaged');
    expect(err.message).toMatch(/is damaged: it is not valid JSON: /);
    expect(err.message).not.toMatch(/\u001b/);
  });

  it('shows planted values escaped, on one line', () => {
    expect(damage(record((r) => (r.points[0].id = '\u001b]0;owned\u0007\u009b2J')))).toBe('points[0].id "\\u001b]0;owned\\u0007\\u009b2J" is not a recovery point id');
  });

  it('refuses a record of a newer rmm by both versions, whatever its shape', () => {
    for (const text of [JSON.stringify({ ...valid, schemaVersion: 2 }), JSON.stringify({ schemaVersion: 2, points: 'anything' })]) {
      const err = failure(text);
      expect(err.code).toBe('record.newer');
      expect(err.message).toBe(`the replica record ${where} was written by a newer rmm: record schema version 2, this rmm reads 1`);
    }
  });
});

describe('pointDir', () => {
  it("is a point's folder under points/", () => {
    expect(pointDir('/srv/replicas/web-dr', '20261124T093000Z')).toBe('/srv/replicas/web-dr/points/20261124T093000Z');
    expect(pointDir('/srv/replicas/web-dr/', '20261124T093000Z')).toBe('/srv/replicas/web-dr/points/20261124T093000Z');
  });

  it.each([['../../../victim'], ['../../victim-sibling'], [''], ['.'], ['..'], ['a/b'], ['.partial'], ['/etc'], ['20261124T093000Z/..']])('refuses %j', (id) => {
    expect(() => pointDir('/srv/replicas/web-dr', id)).toThrow(RecordError);
    expect(() => pointDir('/srv/replicas/web-dr', id)).toThrow(`does not name a point's folder in /srv/replicas/web-dr/points/`);
  });
});

/** Every `pattern` in a schema. */
function patterns(node: unknown): string[] {
  if (typeof node !== 'object' || node === null) return [];
  const own = (node as { pattern?: unknown }).pattern;
  return [...(typeof own === 'string' ? [own] : []), ...Object.values(node).flatMap(patterns)];
}

describe('record schema', () => {
  const schema = JSON.parse(readFileSync(path.join(root, 'schemas/record.schema.json'), 'utf8')) as { $defs: Record<string, { pattern?: string }> };

  it('src/record/schema-validator.ts is what scripts/gen-validators.mjs compiles of it', async () => {
    const run = promisify(execFile)(process.execPath, ['scripts/gen-validators.mjs', '--check'], { cwd: root });
    await expect(run).resolves.toBeDefined();
  });

  it('has the point id pattern that pointDir checks, and a meaning for every pattern', () => {
    expect(schema.$defs.PointId?.pattern).toBe(POINT_ID.source);
    expect(patterns(schema).filter((p) => PATTERN_MEANINGS[p] === undefined)).toEqual([]);
  });
});
