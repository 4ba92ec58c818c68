// 1. First copy of "many small files" and "few large files": rmm direct, rmm relay (lab cut), and
// the baselines rsync -aHAXS --numeric-ids and tar | ssh | tar (and, for reference, each made
// durable), each from the data set's own xfs filesystem on the origin (/bench/small, /bench/large:
// the Origin's root, nothing excluded) to the target's /srv/replicas. Caches are dropped and the
// target copy removed before every run.
import { rsyncCopy, tarCopy, tarRelayed } from '../lib/baselines.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { countTree, cpuFloor, medianPhases, phaseLine, profiled, removeOnTarget, rounds, runDetail, summary } from './common.mjs';

export const name = 'first-copy';
const BASE_DEST = '/srv/replicas/bench-baseline';

export async function run(ctx) {
  const { params } = ctx;
  for (const set of ['small', 'large']) {
    const expected = set === 'small' ? { files: params.small.files, bytes: params.small.bytes } : { files: params.large.files, bytes: params.large.files * params.large.bytes };
    ctx.log(`first copy, ${set === 'small' ? 'many small files' : 'few large files'}: ${expected.files} files, ${(expected.bytes / 2 ** 20).toFixed(0)} MiB`);
    await copySet(ctx, set, expected);
  }
}

async function copySet(ctx, set, expected) {
  const { lab, rmm, results } = ctx;
  const SOURCE = `/bench/${set}`;
  const canPin = lab.canKeepHostsOffLastCore();
  const estate = (transfer, streams) =>
    writeEstate(ctx.estates, lab, { replica: `fc-${set}-${transfer}${streams ? `-s${streams}` : ''}`, root: SOURCE, transfer, ...(streams ? { parallelStreams: streams } : {}) });
  // ownCore: the hosts kept off the last core, rmm pinned to it (BenchLab.withHostsOffLastCore).
  const rmmSubject = (id, transfer, streams, ownCore = false) => {
    const file = estate(transfer, streams);
    const replica = `/srv/replicas/fc-${set}-${transfer}${streams ? `-s${streams}` : ''}`;
    return {
      id,
      dest: `${replica}/current`,
      clean: () => removeOnTarget(lab, replica),
      run: async (_r, profileDir) => {
        const apply = async (cpu) => ({ ...(await rmm.apply(file, { profileDir, cpu })), stats: rmm.record(replica).points.at(-1).stats });
        const copy = () => (ownCore ? lab.withHostsOffLastCore(apply) : apply());
        return transfer === 'relay' ? lab.whileCut(copy) : copy();
      },
    };
  };
  const subjects = [
    { id: 'rsync', dest: BASE_DEST, clean: () => removeOnTarget(lab, BASE_DEST), run: () => rsyncCopy(lab, { source: SOURCE, dest: BASE_DEST }) },
    { id: 'rsync-flushed', dest: BASE_DEST, clean: () => removeOnTarget(lab, BASE_DEST), run: () => rsyncCopy(lab, { source: SOURCE, dest: BASE_DEST, flush: true }) },
    { id: 'tar', dest: BASE_DEST, clean: () => removeOnTarget(lab, BASE_DEST), run: () => tarCopy(lab, { source: SOURCE, dest: BASE_DEST }) },
    { id: 'tar-flushed', dest: BASE_DEST, clean: () => removeOnTarget(lab, BASE_DEST), run: () => tarCopy(lab, { source: SOURCE, dest: BASE_DEST, flush: true }) },
    { id: 'tar-relayed', dest: BASE_DEST, clean: () => removeOnTarget(lab, BASE_DEST), run: () => lab.whileCut(() => tarRelayed(lab, { source: SOURCE, dest: BASE_DEST })) },
    rmmSubject('rmm-direct', 'direct'),
    rmmSubject('rmm-relay', 'relay'),
    ...(ctx.opts.streams > 1 ? [rmmSubject(`rmm-direct-${ctx.opts.streams}-streams`, 'direct', ctx.opts.streams)] : []),
    // Reference: the relay where rmm does not share its core with the hosts (its own machine in life).
    ...(canPin ? [rmmSubject('rmm-direct-own-core', 'direct', undefined, true), rmmSubject('rmm-relay-own-core', 'relay', undefined, true)] : []),
  ];
  const verified = new Set();
  const wrapped = subjects.map((s) => ({
    ...s,
    run: async (r) => {
      const m = await s.run(r);
      if (!verified.has(s.id)) {
        // Each subject's first copy is checked: every file, every byte.
        const got = countTree(lab, s.dest);
        if (got.files !== expected.files || got.bytes !== expected.bytes) throw new Error(`${s.id}: the target holds ${got.files} files, ${got.bytes} bytes; expected ${expected.files}, ${expected.bytes}`);
        verified.add(s.id);
        m.note = `checked: ${got.files} files, ${got.bytes} bytes`;
      }
      s.clean();
      return m;
    },
  }));
  const ms = await rounds(ctx.runs, wrapped, {
    log: ctx.log,
    before: async (s) => {
      s.clean();
      await dropCaches();
    },
  });

  const id = (s) => `first-copy/${set}/${s}`;
  const labels = { rsync: 'rsync -aHAXS --numeric-ids over ssh (baseline)', 'rsync-flushed': 'rsync, then sync -f on the target (reference: the baseline made durable, as rmm does)', tar: 'tar | ssh | tar (baseline)', 'tar-flushed': 'tar | ssh | tar, then sync -f on the target (reference: the baseline made durable, as rmm does)', 'tar-relayed': 'tar | ssh | tar relayed by OpenSSH through this machine (ssh -R), hosts cut (reference)', 'rmm-direct': 'rmm apply, direct', 'rmm-relay': 'rmm apply, relay (hosts cut)', 'rmm-direct-own-core': 'rmm apply, direct, rmm on the last core, the hosts on the others (reference)', 'rmm-relay-own-core': 'rmm apply, relay, rmm on the last core, the hosts on the others (reference)' };
  for (const s of subjects) {
    const list = ms[s.id];
    const phases = list[0].phases ? medianPhases(list) : undefined;
    results.add(id(s.id), {
      label: labels[s.id] ?? `rmm apply, direct, policy parallelStreams ${ctx.opts.streams}`,
      values: list.map((m) => m.wall),
      runs: list.map(runDetail),
      extra: { summary: `${summary(list)}${phases ? `; phases: ${phaseLine(phases)}` : ''}`, ...(phases ? { medianPhases: phases } : {}) },
    });
  }
  const rsync = results.median(id('rsync'));
  const tar = results.median(id('tar'));
  const direct = results.median(id('rmm-direct'));
  const relay = results.median(id('rmm-relay'));
  const what = set === 'small' ? 'many small files' : 'few large files';
  results.check(`first copy, ${what}: rmm direct >= 1.0x the faster of rsync and tar (speed)`, { value: Math.min(rsync, tar) / direct, op: '>=', limit: 1.0, basis: `${Math.min(rsync, tar).toFixed(2)} s / ${direct.toFixed(2)} s` });
  if (set === 'small') results.check(`first copy, ${what}: rmm direct >= 1.5x one rsync (speed)`, { value: rsync / direct, op: '>=', limit: 1.5, basis: `${rsync.toFixed(2)} s / ${direct.toFixed(2)} s` });
  results.check(`first copy, ${what}: relay >= 0.9x rmm direct (speed)`, { value: direct / relay, op: '>=', limit: 0.9, basis: `${direct.toFixed(2)} s / ${relay.toFixed(2)} s` });

  const tarRelay = results.median(id('tar-relayed'));
  const tarFlushed = results.median(id('tar-flushed'));
  const rsyncFlushed = results.median(id('rsync-flushed'));
  results.note(`first copy, ${what}: rsync made durable (then sync -f) ${rsyncFlushed.toFixed(2)} s vs rsync ${rsync.toFixed(2)} s; rmm direct ${direct.toFixed(2)} s = ${(rsyncFlushed / direct).toFixed(2)}x the durable rsync`);
  results.note(`first copy, ${what}: tar made durable (then sync -f) ${tarFlushed.toFixed(2)} s vs tar ${tar.toFixed(2)} s; rmm direct ${direct.toFixed(2)} s = ${(tarFlushed / direct).toFixed(2)}x the durable tar`);
  results.note(`first copy, ${what}: the relay's shape in OpenSSH, tar relayed through this machine ${tarRelay.toFixed(2)} s vs tar direct ${tar.toFixed(2)} s = ${(tar / tarRelay).toFixed(2)}x (rmm relay vs direct: ${(direct / relay).toFixed(2)}x)`);

  if (canPin) {
    const [d, r] = [results.median(id('rmm-direct-own-core')), results.median(id('rmm-relay-own-core'))];
    results.note(`first copy, ${what}: with rmm on a core of its own (the hosts on the others, as when rmm runs on its own machine): relay ${r.toFixed(2)} s vs direct ${d.toFixed(2)} s = ${(d / r).toFixed(2)}x (sharing every core: ${(direct / relay).toFixed(2)}x)`);
  } else {
    results.note(`first copy, ${what}: relay with rmm on a core of its own not measured (needs a writable v1 cpuset hierarchy of its own, two CPUs or more, and taskset)`);
  }

  // What the cores allow: each subject's machine-wide CPU work, and the ratio it could reach at best.
  const floor = (s) => cpuFloor(ms[s]);
  const [fDirect, fRelay] = [floor('rmm-direct'), floor('rmm-relay')];
  if (fDirect && fRelay) {
    const line = (label, f) => `${label} ${f.coreSeconds.toFixed(1)} core-s (>= ${f.seconds.toFixed(2)} s on ${f.cores} cores)`;
    results.note(
      `first copy, ${what}: CPU floor (machine-wide core-seconds, median): ${line('rmm direct', fDirect)}, ${line('rmm relay', fRelay)}, ` +
        `${line('rsync', floor('rsync'))}, ${line('tar', floor('tar'))}; at best, with every core busy: ` +
        `direct ${(Math.min(rsync, tar) / fDirect.seconds).toFixed(2)}x the faster baseline, ${(rsync / fDirect.seconds).toFixed(2)}x rsync; relay ${(direct / fRelay.seconds).toFixed(2)}x direct`,
    );
  }

  if (ctx.opts.profile) {
    for (const s of [...subjects.filter((x) => x.id.startsWith('rmm') && !x.id.endsWith('own-core')), subjects[0]]) {
      s.clean();
      await dropCaches();
      await profiled(ctx, id(s.id), (dir) => s.run(0, s.id.startsWith('rmm') ? dir : undefined));
      s.clean();
    }
  }
}
