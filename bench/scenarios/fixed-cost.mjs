// 3. The fixed cost of `rmm apply --sync-now` on an unchanged replica of tiny data (20 files on a
// btrfs filesystem): connect, observe, lock, snapshot, compare, switch, record, prune. As root,
// and as a user with sudo (every remote command then goes through sudo -n). The reference is one
// rsync of the same data, over OpenSSH, from the origin.
import { rsyncCopy } from '../lib/baselines.mjs';
import { ensureTinyData } from '../lib/data.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { medianPhases, phaseLine, profiled, removeOnTarget, rounds, runDetail, summary, traced } from './common.mjs';

export const name = 'fixed-cost';
const SOURCE = '/bench/tiny';

export async function run(ctx) {
  const { lab, rmm, results } = ctx;
  ensureTinyData(lab.hostPath('origin', SOURCE), ctx.params.seed);
  const rmmSubject = (id, user, sudo) => {
    const replica = `/srv/replicas/${id}`;
    const file = writeEstate(ctx.estates, lab, { replica: id, root: SOURCE, user, sudo });
    return { id, replica, file, run: (_r, profileDir) => rmm.apply(file, { profileDir }) };
  };
  const subjects = [
    rmmSubject('fixed-root', 'root', false),
    rmmSubject('fixed-sudo', 'rmm', true),
    { id: 'rsync', run: () => rsyncCopy(lab, { source: SOURCE, dest: '/srv/replicas/fixed-rsync', del: true }) },
  ];
  ctx.log('fixed cost: first copies (not timed)');
  for (const s of subjects) {
    removeOnTarget(lab, s.replica ?? '/srv/replicas/fixed-rsync');
    await s.run(0);
  }
  const runs = Math.max(ctx.runs, ctx.opts.quick ? 2 : 5);
  const ms = await rounds(runs, subjects, { log: ctx.log });
  const labels = { 'fixed-root': 'rmm apply --sync-now, unchanged tiny replica, as root', 'fixed-sudo': 'the same as user rmm with sudo', rsync: 'rsync --delete of the same data (reference)' };
  for (const s of subjects) {
    const list = ms[s.id];
    const phases = list[0].phases ? medianPhases(list) : undefined;
    results.add(`fixed-cost/${s.id}`, {
      label: labels[s.id],
      values: list.map((m) => m.wall),
      runs: list.map(runDetail),
      extra: { summary: `${summary(list)}${phases ? `; phases: ${phaseLine(phases)}` : ''}`, ...(phases ? { medianPhases: phases } : {}) },
    });
  }
  for (const id of ['fixed-root', 'fixed-sudo']) {
    const v = results.median(`fixed-cost/${id}`);
    results.check(`fixed cost of apply --sync-now per replica (${id === 'fixed-root' ? 'root' : 'sudo user'}) <= 2 s`, { value: v, op: '<=', limit: 2, unit: 's', basis: `rsync alone ${results.median('fixed-cost/rsync').toFixed(2)} s` });
  }
  if (ctx.opts.profile) {
    await profiled(ctx, 'fixed-cost/fixed-root', (dir) => subjects[0].run(0, dir));
    await profiled(ctx, 'fixed-cost/fixed-sudo', (dir) => subjects[1].run(0, dir));
    for (const s of subjects.slice(0, 2)) await traced(ctx, `fixed-cost/${s.id}`, ['apply', '-f', s.file, '--yes', '--sync-now', 'all']);
  }
  for (const s of subjects) removeOnTarget(lab, s.replica ?? '/srv/replicas/fixed-rsync');
}
