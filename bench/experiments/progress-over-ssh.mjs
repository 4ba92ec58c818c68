// What rsync's per-file --info=progress2 lines cost when they cross SSH to this machine (as rmm
// reads them): 100,000 files mean 100,000 lines, each its own SSH packet. First copy of
// /bench/small, started over OpenSSH from here: progress per line, thinned on the origin by awk
// (every 500th progress line), and none. Needs the bench lab up with its data:
//   node bench/run.mjs --setup-only && node bench/experiments/progress-over-ssh.mjs [RUNS]
import { BenchLab } from '../lib/lab.mjs';
import { q, sshArgv } from '../lib/baselines.mjs';
import { measure, median } from '../lib/measure.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { rounds, removeOnTarget } from '../scenarios/common.mjs';

const runs = Number(process.argv[2] ?? 3);
const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
lab.setupCpuAccounting();
const info = lab.info;
const target = lab.address('target');
const DEST = '/srv/replicas/bench-baseline';
const OPTS = ['-aHAXS', '--numeric-ids', '--one-file-system', '--delete', '--stats', '--info=progress2', '--mkpath'];
const line = (extra) => ['rsync', ...OPTS, ...extra, '-e', sshArgv().join(' '), '/bench/small/', `root@${target}:${DEST}/`].map(q).join(' ');
const fromHere = (cmd) => ['ssh', '-i', info.clientKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${info.knownHosts}`, '-c', 'aes128-gcm@openssh.com', `root@${lab.address('origin')}`, cmd];
// root's login shell on the lab hosts is bash: pipefail keeps rsync's exit status.
const THIN = `awk 'BEGIN { RS = "[\\r\\n]" } /[0-9]%/ && (++n % 500) { next } { print; fflush() }'`;
const subjects = [
  { id: 'progress-per-line', run: () => measure(lab, fromHere(line([]))) },
  { id: 'progress-thinned-on-origin', run: () => measure(lab, fromHere(`set -o pipefail; ${line([])} | ${THIN}`)) },
  { id: 'no-progress', run: () => measure(lab, fromHere(line(['--info=progress0']))) },
];
const ms = await rounds(runs, subjects, { log: (m) => console.error(m), before: async () => { removeOnTarget(lab, DEST); await dropCaches(); } });
removeOnTarget(lab, DEST);
for (const [k, v] of Object.entries(ms)) {
  const cpu = (x) => median(v.map((m) => m.cpu[x])).toFixed(1);
  console.log(`${k}: median ${median(v.map((m) => m.wall)).toFixed(2)} s [${v.map((m) => m.wall.toFixed(1)).join(' ')}]; cpu s: here ${cpu('local')} origin ${cpu('origin')} target ${cpu('target')}; ${v[0].stdout.length} bytes of output`);
}
