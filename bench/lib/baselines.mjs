// The baselines, run inside the lab origin as root and pushing to the lab target's root over
// OpenSSH with aes128-gcm (rmm's first cipher): rsync -aHAXS --numeric-ids, and tar | ssh | tar.
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { measure } from './measure.mjs';

const KEY = '/root/.ssh/bench_key';
const KNOWN_HOSTS = '/root/.ssh/bench_known_hosts';

/** Gives the origin's root the lab's client key (authorized for root on the target) and known_hosts. */
export function prepareBaselines(lab) {
  const info = lab.info;
  mkdirSync(lab.hostPath('origin', '/root/.ssh'), { recursive: true, mode: 0o700 });
  copyFileSync(info.clientKey, lab.hostPath('origin', KEY));
  chmodSync(lab.hostPath('origin', KEY), 0o600);
  copyFileSync(info.knownHosts, lab.hostPath('origin', KNOWN_HOSTS));
}

export function sshArgv() {
  return ['ssh', '-i', KEY, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${KNOWN_HOSTS}`, '-c', 'aes128-gcm@openssh.com'];
}

export const RSYNC_OPTIONS = ['-aHAXS', '--numeric-ids'];

/**
 * rsync SOURCE/ root@target:DEST/ from the origin; `del` adds --delete (re-syncs). `flush`: the
 * target then writes the copy to disk (sync -f over a second ssh), as rmm does before it records a
 * copy consistent; a reference, not a baseline. Returns the measurement and rsync's --stats.
 */
export async function rsyncCopy(lab, { source, dest, excludes = [], del = false, flush = false }) {
  const target = `root@${lab.address('target')}`;
  const rsync = ['rsync', ...RSYNC_OPTIONS, '--stats', ...(del ? ['--delete'] : []), ...excludes.map((e) => `--exclude=${e}`), '-e', sshArgv().join(' '), `${source.replace(/\/$/, '')}/`, `${target}:${dest}/`];
  const argv = flush ? ['sh', '-c', `"$@" && ${[...sshArgv(), target, `sync -f ${q(dest)}`].map(q).join(' ')}`, 'rsync-flushed', ...rsync] : rsync;
  const m = await measure(lab, lab.inCgroupArgv('origin', lab.execArgv('origin', argv)), { inOrigin: true });
  return { ...m, stdout: undefined, stats: parseStats(m.stdout) };
}

/**
 * tar -c SOURCE | ssh target tar -x -C DEST, with ACLs, xattrs and numeric owners like rsync -AX
 * --numeric-ids. `flush`: the target then writes the copy to disk (sync -f), as rmm does before it
 * records a copy consistent; a reference, not a baseline.
 */
export async function tarCopy(lab, { source, dest, excludes = [], flush = false }) {
  const { create, extract } = tarCommands({ source, dest, excludes, flush });
  const script = `set -o pipefail; ${create} | ${sshArgv().map(q).join(' ')} root@${lab.address('target')} ${q(extract)}`;
  const m = await measure(lab, lab.inCgroupArgv('origin', lab.execArgv('origin', ['bash', '-c', script])), { inOrigin: true });
  return { ...m, stdout: undefined };
}

/**
 * The tar baseline relayed by OpenSSH through this machine, as rmm relays: `ssh -R` from here to the
 * origin forwards a port on the origin's loopback to the target's sshd, and the origin's ssh to the
 * target goes through it. Run while the lab is cut: what the relay's shape costs in C, without rmm.
 */
export async function tarRelayed(lab, { source, dest }) {
  const info = lab.info;
  const target = lab.address('target');
  const PORT = 2222;
  const { create, extract } = tarCommands({ source, dest });
  const inner = [...sshArgv(), '-p', String(PORT), '-o', `HostKeyAlias=${target}`, 'root@127.0.0.1', extract].map(q).join(' ');
  const script = `set -o pipefail; ${create} | ${inner}`;
  const outer = ['ssh', '-i', info.clientKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${info.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-c', 'aes128-gcm@openssh.com', '-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${PORT}:${target}:22`, `root@${lab.address('origin')}`, `bash -c ${q(script)}`];
  const m = await measure(lab, outer);
  return { ...m, stdout: undefined };
}

/** The two ends of the tar baseline: the origin's `tar -c` and the target's shell command that unpacks. */
function tarCommands({ source, dest, excludes = [], flush = false }) {
  const tarOpts = '--numeric-owner --acls --xattrs';
  const ex = excludes.map((e) => ` --exclude=${q(`.${e}`)}`).join('');
  return {
    create: `tar -C ${q(source)}${ex} ${tarOpts} -cf - .`,
    extract: `mkdir -p ${q(dest)} && tar -C ${q(dest)} ${tarOpts} -xpf -${flush ? ` && sync -f ${q(dest)}` : ''}`,
  };
}

/** A remote command over OpenSSH from the origin (for reference figures such as handshakes). */
export function sshFromOrigin(lab, user, command) {
  return [...sshArgv(), `${user}@${lab.address('target')}`, command];
}

/** A word for a POSIX shell: as it is when it holds no special character, else in single quotes. */
export function q(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** rsync --stats: the numbers the comparison needs. */
export function parseStats(text) {
  const num = (label) => {
    const m = new RegExp(`^${label}: ([\\d,.]+)`, 'm').exec(text);
    return m ? Number(m[1].replace(/,/g, '')) : NaN;
  };
  return {
    files: num('Number of files'),
    filesTransferred: num('Number of regular files transferred'),
    bytesTotal: num('Total file size'),
    bytesSent: num('Total bytes sent'),
    bytesReceived: num('Total bytes received'),
  };
}
