// 2. Re-sync of a whole bench filesystem (small and large files together), on an xfs origin
// filesystem (rmm: fsfreeze) and on a btrfs one (rmm: btrfs snapshot): with nothing changed, with
// 1% of the files rewritten plus 1 MiB inside a large file, and with 10%. rmm (a new recovery point
// at every sync, the last one kept until it is whole) against rsync --delete into a copy it keeps
// up to date itself, both into the xfs target; the btrfs origin also into a btrfs target, where rmm's
// points are subvolume snapshots. What a directory target does after rmm exits (AFTER_RUN) ends
// before the next subject starts, and is shown as a phase of its own.
import { rsyncCopy } from '../lib/baselines.mjs';
import { modify, restoreData } from '../lib/data.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { medianPhases, phaseLine, profiled, removeOnTarget, rounds, runDetail, summary } from './common.mjs';

export const name = 'resync';

export async function run(ctx) {
  for (const fs of ['xfs', 'btrfs']) await resync(ctx, fs);
}

async function resync(ctx, fs) {
  const { lab, rmm, results, params } = ctx;
  const source = `/bench/${fs}`;
  const bytesOf = (s) => s.bytesSent + s.bytesReceived;
  // Each pair copies into one target filesystem: the xfs /srv/replicas (points as hard-link farms),
  // and for the btrfs origin also the btrfs /srv/snapshots (points as subvolume snapshots).
  const targets = [{ suffix: '', path: '/srv/replicas', fs: 'xfs' }, ...(fs === 'btrfs' ? [{ suffix: '-onto-btrfs', path: '/srv/snapshots', fs: 'btrfs' }] : [])];
  const replicas = [];
  const subjects = targets.flatMap((t) => {
    // Each replica its own name: an estate file is named after it.
    const name = `rs-${fs}${t.suffix}`;
    const replica = `${t.path}/${name}`;
    const baseDest = `${t.path}/${name}-rsync`;
    replicas.push(replica, baseDest);
    const estate = writeEstate(ctx.estates, lab, { replica: name, root: source, targetPath: t.path });
    return [
      {
        id: `rmm${t.suffix}`,
        label: `rmm apply --sync-now (${fs === 'btrfs' ? 'btrfs snapshot' : 'fsfreeze'}, a new recovery point${t.fs === 'btrfs' ? ': a snapshot of the last on a btrfs target' : ''})`,
        run: async (_r, profileDir) => {
          const m = await rmm.apply(estate, { profileDir });
          // A verified point copied nothing: its stats are the copy that made it. The SSH commands of
          // a verification carry a few KB, not counted, as rsync's figure counts no SSH overhead either.
          const stats = m.verified ? { files: 0, filesTransferred: 0, bytesSent: 0, bytesReceived: 0 } : rmm.record(replica).points.at(-1).stats;
          return { ...m, stats, bytes: bytesOf(stats) };
        },
      },
      {
        id: `rsync${t.suffix}`,
        label: `rsync -aHAXS --numeric-ids --delete (baseline${t.fs === 'btrfs' ? ', into a btrfs target' : ''})`,
        run: async () => {
          const m = await rsyncCopy(lab, { source, dest: baseDest, del: true });
          return { ...m, bytes: bytesOf(m.stats) };
        },
      },
    ];
  });
  const before = async () => {
    if (ctx.opts.coldResync) await dropCaches();
  };

  ctx.log(`re-sync on ${fs} (${source}): first copies (not timed)`);
  for (const dir of replicas) removeOnTarget(lab, dir);
  // The target volume holds one re-sync's two copies: a failed scenario must not leave them to the next.
  try {
    for (const s of subjects) await s.run(0);

    ctx.log(`re-sync on ${fs}, nothing changed`);
    const unchanged = await rounds(ctx.runs, subjects, { log: ctx.log, before });
    // One change set per round, made before the round's first subject; both copy the same one.
    const changing = (every, offset) => ({
      log: ctx.log,
      before: async (s, r) => {
        if (s === firstOfRound(subjects, r)) {
          const c = modify(lab.stateDir, fs, lab.hostPath('origin', source), params, offset + r, every);
          ctx.log(`  changed ${c.files} files (${(c.bytes / 2 ** 20).toFixed(1)} MiB)`);
        }
        await before();
      },
    });
    ctx.log(`re-sync on ${fs}, 1% of files changed and 1 MiB inside a large file`);
    const changed = await rounds(ctx.runs, subjects, changing(100, 0));
    ctx.log(`re-sync on ${fs}, 10% of files changed and 1 MiB inside a large file`);
    const changed10 = await rounds(ctx.runs, subjects, changing(10, ctx.runs + 1));

    for (const [kind, ms] of [['unchanged', unchanged], ['changed-1pct', changed], ['changed-10pct', changed10]]) {
      for (const s of subjects) {
        const list = ms[s.id];
        const phases = list[0].phases ? medianPhases(list) : undefined;
        results.add(`resync/${fs}/${kind}/${s.id}`, {
          label: s.label,
          values: list.map((m) => m.wall),
          runs: list.map(runDetail),
          extra: { summary: `${summary(list)}${phases ? `; phases: ${phaseLine(phases)}` : ''}`, ...(phases ? { medianPhases: phases } : {}) },
        });
        results.add(`resync/${fs}/${kind}/${s.id}/bytes`, { label: `${s.id}: bytes on the wire (sent + received)`, unit: 'bytes', values: list.map((m) => m.bytes), extra: { summary: `sent ${list.map((m) => m.stats.bytesSent).join(' ')}; files transferred ${list.map((m) => m.stats.filesTransferred).join(' ')}` } });
      }
    }
    const t = (kind, who) => results.median(`resync/${fs}/${kind}/${who}`);
    const limit = fs === 'btrfs' ? 0.5 : 1.0;
    results.check(`re-sync, nothing changed, ${fs}: rmm time <= ${limit}x rsync`, { value: t('unchanged', 'rmm') / t('unchanged', 'rsync'), op: '<=', limit, basis: `${t('unchanged', 'rmm').toFixed(2)} s / ${t('unchanged', 'rsync').toFixed(2)} s` });
    results.check(`re-sync, 1% changed, ${fs}: rmm bytes on the wire <= 1.1x rsync`, { value: t('changed-1pct', 'rmm/bytes') / t('changed-1pct', 'rsync/bytes'), op: '<=', limit: 1.1, basis: `${t('changed-1pct', 'rmm/bytes')} B / ${t('changed-1pct', 'rsync/bytes')} B` });
    for (const [kind, pct] of [['changed-1pct', '1%'], ['changed-10pct', '10%']]) {
      results.check(`re-sync, ${pct} changed, ${fs}: rmm time <= 1x rsync`, { value: t(kind, 'rmm') / t(kind, 'rsync'), op: '<=', limit: 1.0, basis: `${t(kind, 'rmm').toFixed(2)} s / ${t(kind, 'rsync').toFixed(2)} s` });
    }
    results.check(`re-sync, 10% changed, ${fs}: rmm bytes on the wire <= 1.1x rsync`, { value: t('changed-10pct', 'rmm/bytes') / t('changed-10pct', 'rsync/bytes'), op: '<=', limit: 1.1, basis: `${t('changed-10pct', 'rmm/bytes')} B / ${t('changed-10pct', 'rsync/bytes')} B` });
    if (fs === 'btrfs') {
      const b = (kind, who, figure = '') => results.median(`resync/btrfs/${kind}/${who}-onto-btrfs${figure}`);
      for (const [kind, pct, limit] of [['unchanged', 'nothing', 0.5], ['changed-1pct', '1%', 0.5], ['changed-10pct', '10%', 1.0]]) {
        results.check(`re-sync, ${pct} changed, btrfs origin onto a btrfs target: rmm time <= ${limit}x rsync`, { value: b(kind, 'rmm') / b(kind, 'rsync'), op: '<=', limit, basis: `${b(kind, 'rmm').toFixed(2)} s / ${b(kind, 'rsync').toFixed(2)} s` });
      }
      results.check('re-sync, 1% changed, btrfs origin onto a btrfs target: rmm bytes on the wire <= 1.1x rsync', { value: b('changed-1pct', 'rmm', '/bytes') / b('changed-1pct', 'rsync', '/bytes'), op: '<=', limit: 1.1, basis: `${b('changed-1pct', 'rmm', '/bytes')} B / ${b('changed-1pct', 'rsync', '/bytes')} B` });
    }

    if (ctx.opts.profile) {
      await profiled(ctx, `resync/${fs}/unchanged/rmm`, (dir) => subjects[0].run(0, dir));
      await profiled(ctx, `resync/${fs}/unchanged/rsync`, () => subjects[1].run(0));
      // A change set of its own (after the timed rounds' ones), copied by both.
      modify(lab.stateDir, fs, lab.hostPath('origin', source), params, 2 * ctx.runs + 2);
      await profiled(ctx, `resync/${fs}/changed-1pct/rmm`, (dir) => subjects[0].run(0, dir));
      await profiled(ctx, `resync/${fs}/changed-1pct/rsync`, () => subjects[1].run(0));
    }
  } finally {
    restoreData(lab.stateDir, fs, lab.hostPath('origin', source), params);
    for (const dir of replicas) removeOnTarget(lab, dir);
  }
}

function firstOfRound(subjects, r) {
  return subjects[r % subjects.length];
}
