// 5. (opt-in: --only anatomy) Where a first copy's time goes: the rsync baseline, then the same
// rsync with rmm's options, then with its progress output carried over an SSH channel to this
// machine (as rmm reads it), next to rmm itself; and for relay, the OpenSSH equivalent of rmm's
// reverse tunnel (ssh -R through this machine) next to rmm relay. Two candidate first-copy
// strategies: rsync --inplace --whole-file, and tar | ssh | tar followed by an rsync pass that
// fixes what tar cannot (the time of both). Cold caches before every run.
import { q, rsyncCopy, RSYNC_OPTIONS, sshArgv, tarCopy } from '../lib/baselines.mjs';
import { measure } from '../lib/measure.mjs';
import { dropCaches } from '../lib/proc.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { medianPhases, phaseLine, removeOnTarget, rounds, runDetail, summary } from './common.mjs';

export const name = 'anatomy';
const DEST = '/srv/replicas/bench-baseline';
/** rmm's rsync options (src/sync/rsync.ts RSYNC_BASE and replicate.ts), for a first copy. */
const RMM_OPTIONS = ['-aHAXS', '--numeric-ids', '--one-file-system', '--delete', '--stats', '--info=progress2', ...['trusted.SGI_ACL_*', 'trusted.SGI_CAP_FILE', 'trusted.SGI_DMI_*', 'trusted.SGI_MAC_FILE', 'xfsroot.*'].map((n) => `--filter=-x ${n}`), '--exclude=/.rmm-snap.*', '--mkpath'];

export async function run(ctx) {
  for (const set of ['small', 'large']) await anatomy(ctx, set);
}

async function anatomy(ctx, set) {
  const { lab, rmm, results } = ctx;
  const source = `/bench/${set}`;
  const info = lab.info;
  const target = lab.address('target');
  const rsyncLine = (sshOpts, dest) => ['rsync', ...RMM_OPTIONS, '-e', [...sshArgv(), ...sshOpts].join(' '), `${source}/`, dest].map(q).join(' ');
  const fromHere = (extra, command) => [...['ssh', '-i', info.clientKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${info.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-c', 'aes128-gcm@openssh.com'], ...extra, `root@${lab.address('origin')}`, command];
  const rmmReplica = (transfer) => `/srv/replicas/an-${set}-${transfer}`;
  const estate = (transfer) => writeEstate(ctx.estates, lab, { replica: `an-${set}-${transfer}`, root: source, transfer });
  const subjects = [
    { id: 'rsync', label: 'rsync -aHAXS --numeric-ids (baseline, run in the origin)', run: () => rsyncCopy(lab, { source, dest: DEST }) },
    {
      id: 'rsync-rmm-options',
      label: "the same with rmm's options (--delete --one-file-system --info=progress2 --stats, xattr filters, --mkpath), run in the origin",
      run: () => measure(lab, lab.inCgroupArgv('origin', lab.execArgv('origin', ['sh', '-c', `${rsyncLine([], `root@${target}:${DEST}/`)} > /dev/null`])), { inOrigin: true }),
    },
    {
      id: 'rsync-rmm-options-over-ssh',
      label: 'the same started over OpenSSH from this machine, its progress output read here (as rmm does)',
      run: () => measure(lab, fromHere([], rsyncLine([], `root@${target}:${DEST}/`))),
    },
    {
      id: 'rsync-inplace-whole-file',
      label: 'rsync -aHAXS --numeric-ids --inplace --whole-file (no temporary file and rename per file, no delta)',
      run: () => measure(lab, lab.inCgroupArgv('origin', lab.execArgv('origin', ['rsync', ...RSYNC_OPTIONS, '--inplace', '--whole-file', '-e', sshArgv().join(' '), `${source}/`, `root@${target}:${DEST}/`])), { inOrigin: true }),
    },
    {
      id: 'tar-then-rsync',
      label: 'tar | ssh | tar, then rsync -aHAXS --numeric-ids --delete over the copy (both timed)',
      run: async () => {
        const a = await tarCopy(lab, { source, dest: DEST });
        const b = await rsyncCopy(lab, { source, dest: DEST, del: true });
        const add = (k) => a.cpu[k] + b.cpu[k];
        return { ...b, wall: a.wall + b.wall, cpu: { local: add('local'), origin: add('origin'), target: add('target') }, sessions: { origin: a.sessions.origin + b.sessions.origin, target: a.sessions.target + b.sessions.target }, note: `tar ${a.wall.toFixed(1)} s + rsync ${b.wall.toFixed(1)} s` };
      },
    },
    { id: 'rmm-direct', label: 'rmm apply, direct', run: () => rmm.apply(estate('direct')), clean: () => removeOnTarget(lab, rmmReplica('direct')) },
    {
      id: 'openssh-reverse-forward',
      label: "relay with OpenSSH: ssh -R from this machine to the origin, rsync through it (rmm relay's shape), hosts cut",
      run: () => lab.whileCut(() => measure(lab, fromHere(['-R', `127.0.0.1:2222:${target}:22`], rsyncLine(['-p', '2222', '-o', `HostKeyAlias=${target}`], `root@127.0.0.1:${DEST}/`)))),
    },
    { id: 'rmm-relay', label: 'rmm apply, relay, hosts cut', run: () => lab.whileCut(() => rmm.apply(estate('relay'))), clean: () => removeOnTarget(lab, rmmReplica('relay')) },
  ];
  for (const s of subjects) s.clean ??= () => removeOnTarget(lab, DEST);
  ctx.log(`anatomy of a first copy, ${set}`);
  const ms = await rounds(ctx.runs, subjects.map((s) => ({ ...s, run: async () => { const m = await s.run(); s.clean(); return m; } })), {
    log: ctx.log,
    before: async (s) => {
      s.clean();
      await dropCaches();
    },
  });
  for (const s of subjects) {
    const list = ms[s.id];
    const phases = list[0].phases ? medianPhases(list) : undefined;
    results.add(`anatomy/${set}/${s.id}`, { label: s.label, values: list.map((m) => m.wall), runs: list.map(runDetail), extra: { summary: `${summary(list)}${phases ? `; phases: ${phaseLine(phases)}` : ''}` } });
  }
}
