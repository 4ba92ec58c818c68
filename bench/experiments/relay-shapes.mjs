// Relay shapes, hosts cut, first copy of /bench/SET (small|large): rmm relay and rmm direct next to
// two OpenSSH pipelines through this machine: the reverse forward rmm relay uses (ssh -R, the
// origin's rsync connects back through it to the target's sshd), and an exec pipe (the origin's
// rsync uses a bridge to its own session as its remote shell; the target runs rsync --server in
// another session; this machine pipes one into the other: one cipher layer per hop).
//   node bench/run.mjs --setup-only && node bench/experiments/relay-shapes.mjs large 3
import { BenchLab } from '../lib/lab.mjs';
import { Rmm } from '../lib/rmm.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { q, sshArgv } from '../lib/baselines.mjs';
import { measure, median } from '../lib/measure.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { countTree, removeOnTarget, rounds } from '../scenarios/common.mjs';
import { REPO } from '../lib/lab.mjs';
import path from 'node:path';

const set = process.argv[2] ?? 'large';
const runs = Number(process.argv[3] ?? 3);
const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
lab.setupCpuAccounting();
const info = lab.info;
const target = lab.address('target');
const origin = lab.address('origin');
const DEST = '/srv/replicas/bench-baseline';
const rmm = new Rmm({ lab, cli: path.join(REPO, 'bench/.work/rmm/dist/cli/main.js') });
const estates = path.join(REPO, 'bench/.work/estates');
const ssh = (host, cmd) => `ssh -i ${info.clientKey} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${info.knownHosts} -c aes128-gcm@openssh.com root@${host} '${cmd}'`;
// The bridge: rsync's remote shell, joined to the session's own stdin (fd 5) and stdout (fd 6). It
// must end when its peer ends (rsync waits for its remote shell); a background job's stdin is
// /dev/null unless saved first (fd 7).
const client = `exec 5<&0 6>&1 </dev/null >/dev/null; rsync -aHAXS --numeric-ids -e "sh -c \\"exec 7<&0; cat <&7 >&6 & cat <&5; kill \\\\$! 2>/dev/null\\"" /bench/${set}/ x:${DEST}/`;
// The server's arguments, as the client's rsync prints them to a fake remote shell (3.2.7, -aHAXS --numeric-ids, push).
const server = `mkdir -p ${DEST} && rsync --server -lHogDtpAXrSe.iLsfxCIvu --numeric-ids . ${DEST}/`;
const pipeScript = `set -e; d=$(mktemp -d); mkfifo $d/p; ${ssh(origin, client)} < $d/p | ${ssh(target, server)} > $d/p; rm -rf $d`;
const fromHere = (extra, command) => ['ssh', '-i', info.clientKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${info.knownHosts}`, '-c', 'aes128-gcm@openssh.com', ...extra, `root@${origin}`, command];
const fwdLine = ['rsync', '-aHAXS', '--numeric-ids', '-e', [...sshArgv(), '-p', '2222', '-o', `HostKeyAlias=${target}`].join(' '), `/bench/${set}/`, `root@127.0.0.1:${DEST}/`].map(q).join(' ');
const direct = writeEstate(estates, lab, { replica: `x-${set}-direct`, root: `/bench/${set}` });
const relay = writeEstate(estates, lab, { replica: `x-${set}-relay`, root: `/bench/${set}`, transfer: 'relay' });
const subjects = [
  { id: 'openssh-exec-pipe', run: () => lab.whileCut(() => measure(lab, ['timeout', '600', 'bash', '-c', pipeScript])), dest: DEST },
  { id: 'openssh-reverse-forward', run: () => lab.whileCut(() => measure(lab, fromHere(['-R', `127.0.0.1:2222:${target}:22`], fwdLine))), dest: DEST },
  { id: 'rmm-relay', run: () => lab.whileCut(() => rmm.apply(relay)), dest: `/srv/replicas/x-${set}-relay/current` },
  { id: 'rmm-direct', run: () => rmm.apply(direct), dest: `/srv/replicas/x-${set}-direct/current` },
];
const clean = () => {
  for (const d of [DEST, `/srv/replicas/x-${set}-relay`, `/srv/replicas/x-${set}-direct`]) removeOnTarget(lab, d);
};
const checked = subjects.map((s) => ({
  ...s,
  run: async () => {
    const m = await s.run();
    const c = countTree(lab, s.dest);
    m.note = `${c.files} files, ${c.bytes} bytes`;
    clean();
    return m;
  },
}));
const ms = await rounds(runs, checked, { log: (m) => console.error(m), before: async () => { clean(); await dropCaches(); } });
for (const [k, v] of Object.entries(ms)) {
  const cpu = (x) => median(v.map((m) => m.cpu[x])).toFixed(1);
  console.log(`${set} ${k}: median ${median(v.map((m) => m.wall)).toFixed(2)} s [${v.map((m) => m.wall.toFixed(1)).join(' ')}]; cpu s: here ${cpu('local')} origin ${cpu('origin')} target ${cpu('target')}`);
}
