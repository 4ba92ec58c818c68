// btrfs onto btrfs without rsync: what `btrfs send -p LAST NEW | ssh target btrfs receive` costs
// for the re-sync change set, against the bench's baseline (rsync --delete into an up-to-date copy)
// on the same change, in one run. The origin keeps its last read-only snapshot between rounds (the
// parent of the next send); the target keeps what it received and makes a writable snapshot of it,
// as a recovery point would be. Nothing of rmm runs: this measures the transport a btrfs-onto-btrfs
// path would use, with the bench's data and machine.
//   node bench/run.mjs --setup-only
//   node bench/experiments/btrfs-send.mjs [runs] [every]     (every=100: 1% of the files; 10: 10%)
import { BenchLab } from '../lib/lab.mjs';
import { dataParams, modify, restoreData } from '../lib/data.mjs';
import { measure, median } from '../lib/measure.mjs';
import { q, rsyncCopy, sshArgv } from '../lib/baselines.mjs';
import { removeOnTarget } from '../scenarios/common.mjs';

const [runsArg = '3', everyArg = '100'] = process.argv.slice(2);
const runs = Number(runsArg);
const every = Number(everyArg);
const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
lab.setupCpuAccounting();
const params = dataParams();
const source = '/bench/btrfs';
const rsyncDest = '/srv/snapshots/exp-rsync';
const sendDest = '/srv/snapshots/exp-send';
const log = (m) => process.stderr.write(`${m}\n`);
const target = `root@${lab.address('target')}`;

/** On the origin: a read-only snapshot NEW, sent whole or against PARENT; on the target: received, then a writable snapshot of it as point NEW. */
function sendScript(parent, snap) {
  const receive = `set -e; btrfs receive ${q(`${sendDest}/received`)} && btrfs subvolume snapshot ${q(`${sendDest}/received/${snap}`)} ${q(`${sendDest}/points/${snap}`)} >/dev/null`;
  return [
    'set -eo pipefail',
    `cd ${q(source)}`,
    `btrfs subvolume snapshot -r . ${q(snap)} >/dev/null`,
    `btrfs send -q ${parent ? `-p ${q(parent)} ` : ''}${q(snap)} | ${[...sshArgv(), target, receive].map(q).join(' ')}`,
    // The old parent is no longer needed on either side once the new one is received.
    parent ? `btrfs subvolume delete ${q(parent)} >/dev/null` : 'true',
  ].join('\n');
}

async function sh(host, script) {
  const r = await lab.exec(host, ['bash', '-c', script]);
  return r.stdout;
}

/** Removes every snapshot and copy the experiment made, on both hosts. */
async function removeAll() {
  await sh('origin', `shopt -s nullglob; cd ${q(source)} && for s in .exp-*; do btrfs subvolume delete "$s" >/dev/null; done; true`);
  for (const d of [rsyncDest, sendDest]) {
    await sh('target', `shopt -s dotglob nullglob; for s in ${q(d)}/points/* ${q(d)}/received/*; do btrfs subvolume delete "$s" >/dev/null; done; true`);
    removeOnTarget(lab, d);
  }
}

const rsyncOnce = () => rsyncCopy(lab, { source, dest: rsyncDest, excludes: ['/.exp-*'], del: true });
const sendOnce = (parent, snap) => measure(lab, lab.inCgroupArgv('origin', lab.execArgv('origin', ['bash', '-c', sendScript(parent, snap)])), { inOrigin: true });

try {
  await removeAll();
  // Deleted subvolumes free their space in the background: wait, or the copies below may not fit.
  await sh('target', `btrfs subvolume sync /srv/snapshots && mkdir -p ${q(`${sendDest}/received`)} ${q(`${sendDest}/points`)}`);
  log('first copies: rsync, then a full send');
  await rsyncOnce();
  let parent = '.exp-0';
  const first = await sendOnce(undefined, parent);
  log(`  full send: ${first.wall.toFixed(2)} s (code ${first.code})`);
  const out = { rsync: [], send: [] };
  for (let r = 1; r <= runs; r++) {
    log(`round ${r}: changed ${modify(lab.stateDir, 'btrfs', lab.hostPath('origin', source), params, 200 + r, every).files} files`);
    const snap = `.exp-${r}`;
    const order = r % 2 ? ['rsync', 'send'] : ['send', 'rsync'];
    for (const who of order) {
      const m = who === 'rsync' ? await rsyncOnce() : await sendOnce(parent, snap);
      if (m.code !== 0) throw new Error(`${who} failed (${m.code}): ${m.stderr}`);
      out[who].push(m);
      log(`  ${who}: ${m.wall.toFixed(2)} s (cpu origin ${m.cpu.origin}, target ${m.cpu.target})`);
    }
    parent = snap;
  }
  // The received point must equal the live origin (the change is finished before each send).
  const diff = await lab.exec('origin', ['bash', '-c', `rsync -naHAXSi --numeric-ids --delete --exclude='/.exp-*' -e ${q(sshArgv().join(' '))} ${q(`${source}/`)} ${q(`${target}:${sendDest}/points/${parent}/`)} | head -20`]);
  console.log(`differences between the origin and the last received point (rsync -n -i): ${diff.stdout.trim() === '' ? 'none' : `\n${diff.stdout}`}`);
  const rs = median(out.rsync.map((m) => m.wall));
  const se = median(out.send.map((m) => m.wall));
  console.log(
    `every ${every}: rsync --delete median ${rs.toFixed(2)} s (${out.rsync.map((m) => m.wall.toFixed(2)).join(', ')}); send -p | receive + snapshot median ${se.toFixed(2)} s (${out.send.map((m) => m.wall.toFixed(2)).join(', ')}): ${(se / rs).toFixed(2)}x`,
  );
} finally {
  restoreData(lab.stateDir, 'btrfs', lab.hostPath('origin', source), params);
  await removeAll().catch(() => {});
  lab.releaseCpuAccounting();
}
