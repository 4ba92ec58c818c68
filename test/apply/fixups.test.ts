/**
 * Fixups on a directory replica that asks for them, on real lab hosts: the plan shows each file's
 * diff, apply writes exactly those bytes into the new copy before it becomes current, never into the
 * origin nor into an older recovery point (the copy shares inodes with it), the record notes them,
 * and a file that changed after the plan is refused. Needs root.
 */
import { readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/plan.js';
import type { ReplicaRecord } from '../../src/record/record.js';
import { rmm } from '../support/cli.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { applyInProcess, MOSTLY_DATA } from '../support/replica-lab.js';

const isRoot = process.getuid?.() === 0;
const REPLICA = 'adapted';
// /etc comes along: the fixups' files are there.
const EXCLUDE = { ...MOSTLY_DATA, paths: MOSTLY_DATA.paths.filter((p) => p !== '/etc/*') };
const INTERFACES = `# The lab origin's network, as its installer wrote it
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
\taddress 10.0.2.15/24
\tgateway 10.0.2.1
\tdns-nameservers 10.0.2.3 110.0.2.3
`;

describe.skipIf(!isRoot)('fixups on a directory replica (needs root)', () => {
  let lab: Lab;
  let originRoot: string;
  let replicaDir: string;
  const specFor = (to: string) =>
    writeLabSpec(lab, {
      replica: REPLICA,
      exclude: EXCLUDE,
      connection: { heartbeatTimeout: '10s' },
      policy: { retention: { recoveryPoints: 3 } },
      environment: { ipRemap: { networks: [{ from: '10.0.2.0/24', to }] } },
      replicaSpec: { fixups: { enabled: true } },
    });
  const record = () => JSON.parse(readFileSync(path.join(replicaDir, '.rmm/record.json'), 'utf8')) as ReplicaRecord;
  const inCurrent = (file: string) => readFileSync(path.join(replicaDir, readlinkSync(path.join(replicaDir, 'current')), file), 'utf8');
  const planned = async (spec: string) => (JSON.parse((await rmm('plan', '-f', spec, '--sync-now', 'all', '-o', 'json')).out) as Plan).actions[0]!.sync!.fixups!;

  beforeAll(async () => {
    lab = await labUp();
    originRoot = lab.hosts.origin.root;
    replicaDir = path.join(lab.hosts.target.root, 'srv/replicas', REPLICA);
    writeFileSync(path.join(originRoot, 'etc/network/interfaces'), INTERFACES);
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('shows the diff at plan time and writes exactly it into the copy, never into the origin', async () => {
    const spec = specFor('10.9.2.0/24');
    const plan = await rmm('plan', '-f', spec);
    expect(plan.code, plan.out + plan.err).toBe(3);
    expect(plan.out).toContain('fixups (the copy only; the origin is never changed):');
    expect(plan.out).toContain('      -\taddress 10.0.2.15/24\n      -\tgateway 10.0.2.1\n      -\tdns-nameservers 10.0.2.3 110.0.2.3\n      +\taddress 10.9.2.15/24\n      +\tgateway 10.9.2.1\n      +\tdns-nameservers 10.9.2.3 110.0.2.3');
    const fixups = await planned(spec);
    const file = fixups.files.find((f) => f.path === '/etc/network/interfaces')!;

    const apply = await rmm('apply', '-f', spec, '--yes');
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(inCurrent('etc/network/interfaces')).toBe(file.text);
    expect(readFileSync(path.join(originRoot, 'etc/network/interfaces'), 'utf8')).toBe(INTERFACES);
    const point = record().points.at(-1)!;
    expect(point.fixups).toEqual({ hash: fixups.hash, files: fixups.files.map((f) => f.path) });
    // Owner and mode kept.
    const copy = statSync(path.join(replicaDir, 'current/etc/network/interfaces'));
    const origin = statSync(path.join(originRoot, 'etc/network/interfaces'));
    expect([copy.uid, copy.gid, copy.mode]).toEqual([origin.uid, origin.gid, origin.mode]);

    // Nothing changed on the origin and the same fixups: the point is verified, not copied again.
    const again = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('unchanged since recovery point');
  });

  it('copies again when the remap changes, and the older point keeps its own fixups', async () => {
    const before = record().points.at(-1)!;
    // One second apart: point ids are the second a sync started.
    await new Promise((r) => setTimeout(r, 1100));
    const spec = specFor('10.7.2.0/24');
    const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
    expect(plan.out).toContain('      +\taddress 10.7.2.15/24');
    const apply = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(record().points.at(-1)!.id).not.toBe(before.id);
    expect(inCurrent('etc/network/interfaces')).toContain('\taddress 10.7.2.15/24');
    // The new copy was linked to the older point's file; the fixup replaced it, it did not write through it.
    expect(readFileSync(path.join(replicaDir, 'points', before.id, 'etc/network/interfaces'), 'utf8')).toContain('\taddress 10.9.2.15/24');
  });

  it('refuses to rewrite a file the origin changed after the plan, keeping the last point, and converges', async () => {
    const spec = specFor('10.7.2.0/24');
    const before = record();
    const edited = INTERFACES.replace('10.0.2.1\n', '10.0.2.254\n');
    try {
      const { result, events } = await applyInProcess(spec, { onStep: (step) => step === 'snapshot /' && writeFileSync(path.join(originRoot, 'etc/network/interfaces'), edited) });
      expect(result.failed).toHaveLength(1);
      expect(events.find((e) => e.type === 'replica.failed')).toMatchObject({ step: 'fixup', code: 'fixup.changed' });
      expect(result.failed[0]!.error).toContain('the fixup of /etc/network/interfaces in the copy failed: it is not the text the plan read (the origin changed it after the plan; plan again to see its new diff)');
      expect(record().points).toEqual(before.points);
      const plan = await rmm('plan', '-f', spec, '--sync-now', 'all');
      expect(plan.out).toContain('      +\tgateway 10.7.2.254');
      const next = await rmm('apply', '-f', spec, '--yes', '--sync-now', 'all');
      expect(next.code, next.out + next.err).toBe(0);
      expect(inCurrent('etc/network/interfaces')).toBe(edited.replace(/(?<![0-9])10\.0\.2\./g, '10.7.2.'));
    } finally {
      writeFileSync(path.join(originRoot, 'etc/network/interfaces'), INTERFACES);
    }
  });
});
