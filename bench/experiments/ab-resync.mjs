// Two builds of rmm on the same re-sync, interleaved in one run: what a change to the delta path
// gains, where run-to-run noise on a shared machine (±0.5 s between bench runs) hides it from two
// separate bench runs. Each build keeps its own replica of /bench/FS on the xfs target; every
// round changes the data once (1% or 10% of the files, and 1 MiB inside a large file) and both
// builds copy that change, in alternating order.
//   node bench/run.mjs --setup-only
//   git worktree add /tmp/rmm-base BASE && (cd /tmp/rmm-base && npm ci && npx tsc -p .)
//   node bench/experiments/ab-resync.mjs /tmp/rmm-base/dist [runs] [xfs|btrfs] [every] [target path]
// COLD=1: every cache dropped before each run (as after a day of other work). UNCHANGED=1: no change at all (a verification).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { BenchLab, REPO } from '../lib/lab.mjs';
import { Rmm } from '../lib/rmm.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { dataParams, modify, restoreData } from '../lib/data.mjs';
import { median } from '../lib/measure.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { medianPhases, phaseLine, removeOnTarget } from '../scenarios/common.mjs';

const [baseDist, runsArg = '5', fs = 'xfs', everyArg = '100', targetPath = '/srv/replicas'] = process.argv.slice(2);
if (!baseDist) {
  process.stderr.write('usage: node bench/experiments/ab-resync.mjs BASE_DIST [runs] [xfs|btrfs] [every] [target path]\n');
  process.exit(2);
}
const runs = Number(runsArg);
const every = Number(everyArg);
const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
lab.setupCpuAccounting();
const params = dataParams();
const source = `/bench/${fs}`;
const estates = path.join(REPO, 'bench/.work/estates');
const subjects = [
  { id: 'base', cli: path.resolve(baseDist, 'cli/main.js') },
  { id: 'this', cli: path.join(REPO, 'dist/cli/main.js') },
].map((s) => {
  const replica = `ab-${s.id}-${fs}`;
  return { ...s, replica, dir: `${targetPath}/${replica}`, rmm: new Rmm({ lab, cli: s.cli }), estate: writeEstate(estates, lab, { replica, root: source, targetPath }) };
});
const log = (m) => process.stderr.write(`${m}\n`);

try {
  for (const s of subjects) {
    removeOnTarget(lab, s.dir);
    await s.rmm.apply(s.estate);
  }
  const out = Object.fromEntries(subjects.map((s) => [s.id, []]));
  for (let r = 0; r < runs; r++) {
    if (process.env.UNCHANGED === '1') log(`round ${r + 1}: nothing changed`);
    else log(`round ${r + 1}: changed ${modify(lab.stateDir, fs, lab.hostPath('origin', source), params, 100 + r, every).files} files`);
    for (let k = 0; k < subjects.length; k++) {
      const s = subjects[(r + k) % subjects.length];
      if (process.env.COLD === '1') await dropCaches();
      const m = await s.rmm.apply(s.estate);
      out[s.id].push(m);
      log(`  ${s.id}: ${m.wall.toFixed(2)} s`);
    }
  }
  for (const s of subjects) {
    const ms = out[s.id];
    console.log(`${s.id}: median ${median(ms.map((m) => m.wall)).toFixed(2)} s (${ms.map((m) => m.wall.toFixed(2)).join(', ')}); phases ${phaseLine(medianPhases(ms))}`);
  }
  const ratio = median(out.this.map((m) => m.wall)) / median(out.base.map((m) => m.wall));
  console.log(`this / base: ${ratio.toFixed(2)}x`);
  // The space each replica's points take on the target: what its removal frees.
  const used = async () => Number((await lab.exec('target', ['df', '-B1', '--output=used', targetPath])).stdout.trim().split('\n').pop());
  for (const s of subjects) {
    const before = await used();
    const points = readdirSync(lab.hostPath('target', `${s.dir}/points`)).filter((n) => /^\d{8}T\d{6}Z$/.test(n)).length;
    removeOnTarget(lab, s.dir);
    await lab.exec('target', ['sync', '-f', targetPath]);
    console.log(`${s.id}: its ${points} point(s) take ${((before - (await used())) / 2 ** 20).toFixed(0)} MiB on the target`);
  }
} finally {
  restoreData(lab.stateDir, fs, lab.hostPath('origin', source), params);
  for (const s of subjects) removeOnTarget(lab, s.dir);
  lab.releaseCpuAccounting();
}
