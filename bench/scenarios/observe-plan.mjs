// 4b. Observe + plan (`rmm plan`) for 200 replicas against the real lab hosts: 200 Origin documents
// pointing at the lab origin, each replica with its own folder on the target. The session pool keeps
// one SSH connection per user@host:port, so this runs with one user (2 connections in all) and with
// 200 users on each host (400 connections, as 200 real servers would need). Reference: as many
// OpenSSH logins (`ssh HOST true`, 4 at a time, as rmm's default parallelism).
import { copyFileSync } from 'node:fs';
import { writeManyEstate } from '../lib/estate.mjs';
import { median } from '../lib/measure.mjs';
import { timed } from '../lib/proc.mjs';
import { profiled, runDetail, summary, traced } from './common.mjs';

export const name = 'observe-plan';

export async function run(ctx) {
  const { lab, rmm, results } = ctx;
  const count = ctx.opts.quick ? 20 : 200;
  const runs = Math.max(3, ctx.runs);
  const users = Array.from({ length: count }, (_, i) => `bu${String(i).padStart(3, '0')}`);
  ctx.log(`observe+plan: ${count} users on origin and target (not timed)`);
  for (const host of ['origin', 'target']) await createUsers(lab, host, users);

  const variants = [
    { id: `${count}-replicas-1-user`, label: `rmm plan, ${count} replicas, one user (one connection per host)`, file: writeManyEstate(ctx.estates, lab, { count, root: '/' }) },
    { id: `${count}-replicas-${count}-users`, label: `rmm plan, ${count} replicas, ${count} users (${2 * count} connections)`, file: writeManyEstate(ctx.estates, lab, { count, root: '/', users }) },
    { id: `${count}-replicas-${count}-users-p16`, label: `the same with --parallelism 16`, file: writeManyEstate(ctx.estates, lab, { count, root: '/', users }), parallelism: 16 },
  ];
  for (const v of variants) {
    const ms = [];
    for (let r = 0; r < runs; r++) {
      const m = await rmm.plan(v.file, { parallelism: v.parallelism });
      const sync = m.plan?.actions?.filter((a) => a.kind === 'sync').length;
      if (sync !== count) throw new Error(`rmm plan ${v.id}: ${sync} of ${count} replicas planned to sync; expected all (initial sync)`);
      ms.push(m);
      ctx.log(`  ${v.id} run ${r + 1}/${runs}: ${m.wall.toFixed(2)} s, peak RSS ${(m.maxRssKb / 1024).toFixed(0)} MB`);
    }
    results.add(`observe-plan/${v.id}`, { label: v.label, values: ms.map((m) => m.wall), runs: ms.map(runDetail), extra: { summary: summary(ms) } });
    if (!v.parallelism) results.check(`observe+plan, ${v.id.replace(/-/g, ' ')} < 30 s`, { value: median(ms.map((m) => m.wall)), op: '<', limit: 30, unit: 's' });
    if (ctx.opts.profile) {
      await profiled(ctx, `observe-plan/${v.id}`, (dir) => rmm.plan(v.file, { profileDir: dir, parallelism: v.parallelism }));
      await traced(ctx, `observe-plan/${v.id}`, ['plan', '-f', v.file, '-o', 'json', ...(v.parallelism ? ['--parallelism', String(v.parallelism)] : [])], { all: false });
    }
  }

  // Reference: the logins alone, with OpenSSH from this machine.
  const ssh = `ssh -i ${lab.info.clientKey} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${lab.info.knownHosts} -o StrictHostKeyChecking=yes -c aes128-gcm@openssh.com`;
  const script = `printf '%s\\n' ${users.join(' ')} | xargs -P 4 -I {} ${ssh} {}@${lab.address('origin')} true`;
  const refs = [];
  for (let r = 0; r < runs; r++) refs.push((await timed(['bash', '-c', script])).wall);
  results.add(`observe-plan/openssh-${count}-logins`, { label: `reference: ${count} OpenSSH logins to the origin (ssh U@origin true), 4 at a time`, values: refs });
}

/** Users bu000... with the lab's client key and passwordless sudo (idempotent). */
async function createUsers(lab, host, users) {
  copyFileSync(`${lab.info.clientKey}.pub`, lab.hostPath(host, '/tmp/bench_key.pub'));
  const script = `set -e
getent group benchu >/dev/null || groupadd benchu
echo '%benchu ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/benchu
chmod 0440 /etc/sudoers.d/benchu
for u in "$@"; do
  id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups benchu --password '*' "$u"
  install -d -m 0700 -o "$u" -g "$u" "/home/$u/.ssh"
  install -m 0600 -o "$u" -g "$u" /tmp/bench_key.pub "/home/$u/.ssh/authorized_keys"
done`;
  await lab.exec(host, ['sh', '-c', script, 'bench-users', ...users]);
}
