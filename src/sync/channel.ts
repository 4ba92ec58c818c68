import type { Endpoint } from '../config/spec.js';
import { RmmError } from '../errors.js';
import { HOOK_FOLDER_PREFIX } from '../hooks/run.js';
import type { RemoteHost } from '../transport/index.js';
import { ALLOW, checkLines, forcedCommand, GATE, GATE_FOLDER_PREFIX, gateFolder, MAKE_GATE, printedCommand, RSH_PRINTER, rsyncServerLine } from './gate.js';

/**
 * The SSH path rsync takes from the origin to the target for one run: an ephemeral key made on the
 * origin (its private half never leaves it), authorized on the target for this run only, and a
 * known_hosts that pins the target's host keys as rmm itself verified them.
 */
export interface PushChannel {
  /** The `-e` command rsync runs on the origin. */
  readonly rsh: string;
  /** `user@host:` prefix for rsync's destination. */
  readonly destinationPrefix: string;
  /** `user@host` for ssh itself. */
  readonly destination: string;
  /** Whether commands on the target need `sudo -n` (a non-root user with sudo). */
  readonly sudo: boolean;
  /** `--rsync-path` for the target, when the target user needs sudo. */
  readonly rsyncPath?: string;
  /** Whether the origin reaches the target only through rmm (relay). */
  readonly relayed: boolean;
  /** A root-only folder on the origin for this run's files (the key, lists); removed with the channel. */
  readonly workDir: string;
  /**
   * Lets the key run these exact command lines on the target (the key runs nothing else: see
   * src/sync/gate.ts). For commands rmm builds itself, such as the tar streams' extract commands.
   */
  allowCommands(lines: readonly string[]): Promise<void>;
  /**
   * Lets the key run the rsync server that this rsync command (run on the origin, with `-e` this
   * channel's rsh) asks the target for: learnt from the origin's own rsync, refused unless every
   * word is one rmm's options give (GateError).
   */
  allowRsync(argv: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

const HOST_ALIAS = 'rmm-target';

export function ephemeralMarker(replica: string): string {
  return `rmm-ephemeral:${replica}:`;
}

function workDir(replica: string, runId: string): string {
  // /run is a tmpfs: the origin's copied filesystems stay untouched, so their manifests too.
  return `/run/.rmm-${replica}.${runId}`;
}

/** Opens the path; `via` is where the origin reaches the target's sshd (a tunnel for relay). */
export async function openPushChannel(opts: {
  origin: RemoteHost;
  target: RemoteHost;
  targetEndpoint: Endpoint;
  replica: string;
  runId: string;
  via?: { host: string; port: number };
}): Promise<PushChannel> {
  const { origin, target, targetEndpoint, replica, runId } = opts;
  const dir = workDir(replica, runId);
  const gate = gateFolder(replica, runId);
  // Three round trips rather than eight: each host's steps run as one command, both hosts at once.
  const [[hostKeys], publicKey] = await settled(
    revokeEphemeralKeys(target, replica).then(() => settled(readHostKeys(target), target.exec(['sh', '-c', MAKE_GATE, 'rmm-gate', gate, GATE, target.info.user], { sudo: true }))),
    cleanOriginWork(origin, replica).then(() => makeKey(origin, dir, `${ephemeralMarker(replica)}${runId}`)),
  );
  await settled(
    origin.writeFileAtomic(`${dir}/known_hosts`, hostKeys.map((k) => `${HOST_ALIAS} ${k.type} ${k.base64}\n`).join(''), { sudo: true, mode: 0o600 }),
    target.exec(['sh', '-c', AUTHORIZE, 'rmm-authorize', `${keyOptions(target.info.serverIdent, new Date(), forcedCommand(gate))} ${publicKey}`], { sudo: false }),
  );

  const host = opts.via?.host ?? targetEndpoint.address;
  const port = opts.via?.port ?? targetEndpoint.port;
  const rsh = [
    'ssh',
    '-i', `${dir}/key`,
    '-p', String(port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${dir}/known_hosts`,
    '-o', `HostKeyAlias=${HOST_ALIAS}`,
    '-o', `HostKeyAlgorithms=${hostKeys.map((k) => k.type).join(',')}`,
    '-o', `Ciphers=${targetEndpoint.ciphers.filter((c) => !c.endsWith('-cbc')).join(',')}`,
    '-o', 'ServerAliveInterval=10',
    '-o', 'ConnectTimeout=15',
  ].join(' ');
  const needsSudo = targetEndpoint.user !== 'root' && targetEndpoint.sudo;
  const destinationPrefix = `${targetEndpoint.user}@${host.includes(':') ? `[${host}]` : host}:`;
  const allowCommands = async (lines: readonly string[]): Promise<void> => {
    checkLines(lines);
    // Through rmm's own session, as root: the key's holder cannot add to the list.
    await target.exec(['sh', '-c', ALLOW, 'rmm-allow', gate, ...lines], { sudo: true });
  };
  return {
    rsh,
    destinationPrefix,
    destination: `${targetEndpoint.user}@${host}`,
    sudo: needsSudo,
    relayed: opts.via !== undefined,
    workDir: dir,
    ...(needsSudo ? { rsyncPath: 'sudo -n rsync' } : {}),
    allowCommands,
    allowRsync: async (argv) => allowCommands([await rsyncServerCommand(origin, argv, dir, destinationPrefix)]),
    close: () => removeEphemeralAccess(origin, target, replica),
  };
}

/**
 * The line the target's sshd gets for this rsync command: its rsync, run on the origin with a remote
 * shell that prints its arguments instead of connecting, says what it would ask the target to run.
 * The origin may be the attacker the gate is for, so the answer is checked word by word.
 */
async function rsyncServerCommand(origin: RemoteHost, argv: readonly string[], dir: string, destinationPrefix: string): Promise<string> {
  const e = argv.indexOf('-e');
  const destination = argv.at(-1) ?? '';
  if (e < 0 || !destination.startsWith(destinationPrefix)) throw new RangeError('allowRsync takes an rsync command with -e and the target as its last argument');
  // Run by sh, not executed: /run is mounted noexec on systemd hosts (the qemu guest showed it).
  const probe = argv.map((a, i) => (i === e + 1 ? `sh ${dir}/rsh-args` : a));
  const { stderr } = await origin.exec(probe, { sudo: true, allowFailure: true, timeoutMs: 60_000 });
  const reported = printedCommand(stderr);
  // No report: the origin's rsync did not start (gone since the plan, or broken), which is its own failure.
  if (!reported) throw new RmmError('sync.rsync_failed', `rsync did not start on ${origin.info.host}: ${stderr.trim().slice(0, 300) || 'no message'}`);
  return rsyncServerLine(reported, argv, destination.slice(destinationPrefix.length));
}

/** How long a one-run key logs in at most: a copy opens connections until its end, a lost key stops here. */
export const KEY_LIFETIME_MS = 7 * 24 * 3600 * 1000;

/**
 * The authorized_keys options of a one-run key: `restrict` (no terminal, forwarding, agent or
 * ~/.ssh/rc; OpenSSH 7.2 and later, an older sshd skips the key), `command=` the run's gate (sshd
 * runs it whatever the client asks: src/sync/gate.ts), and where the target's sshd reads a UTC time
 * there (OpenSSH 9.1 and later; before, the time is the target's local time, which rmm does not know,
 * and a `Z` makes sshd skip the key), `expiry-time`, so that a key no run and no lock holder removed
 * (the target rebooted mid-copy) stops by itself.
 */
export function keyOptions(serverIdent: string | undefined, now: Date, command: string): string {
  if (/["\\]/.test(command)) throw new RangeError(`a forced command rmm writes has no quote or backslash: ${command}`);
  const base = `restrict,command="${command}"`;
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(serverIdent ?? '');
  const knowsExpiry = m !== null && (Number(m[1]) > 9 || (Number(m[1]) === 9 && Number(m[2]) >= 1));
  if (!knowsExpiry) return base;
  // OpenSSH reads YYYYMMDDHHMMSS, with Z for UTC.
  const expiry = new Date(now.getTime() + KEY_LIFETIME_MS).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${base},expiry-time="${expiry}"`;
}

/**
 * Both results once both have ended: when one host fails, the other's half is done (not still
 * running) by the time the caller cleans up after the failure.
 */
async function settled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

/** Removes every ephemeral key of this replica from the target and its work folders from the origin. */
export async function removeEphemeralAccess(origin: RemoteHost, target: RemoteHost, replica: string): Promise<void> {
  await Promise.all([revokeEphemeralKeys(target, replica), cleanOriginWork(origin, replica)]);
}

async function revokeEphemeralKeys(target: RemoteHost, replica: string): Promise<void> {
  await Promise.all([
    target.exec(['sh', '-c', REVOKE, 'rmm-revoke', ephemeralMarker(replica)], { sudo: false }),
    // The keys' gates, and hook scripts an interrupted run left on the target.
    target.exec(['sh', '-c', CLEAN_HOOKS, 'rmm-clean-hooks', `${HOOK_FOLDER_PREFIX}${replica}.`, gateFolderPrefix(replica)], { sudo: true }),
  ]);
}

/** What every gate folder of the replica's runs starts with (the lock's holder removes them too). */
export function gateFolderPrefix(replica: string): string {
  return `${GATE_FOLDER_PREFIX}${replica}.`;
}

async function cleanOriginWork(origin: RemoteHost, replica: string): Promise<void> {
  // With the replica's lock held, any process still using this replica's work files is a leftover of
  // an interrupted run (its rsync, its ssh to the target): end it before its files go.
  await origin.exec(['sh', '-c', CLEAN_ORIGIN, 'rmm-clean', replica, `${HOOK_FOLDER_PREFIX}${replica}.`], { sudo: true });
}

/** Makes the run's work folder and key pair on the origin; returns the public half. */
async function makeKey(origin: RemoteHost, dir: string, comment: string): Promise<string> {
  return (await origin.exec(['sh', '-c', MAKE_KEY, 'rmm-keygen', dir, comment, RSH_PRINTER], { sudo: true })).stdout.trim();
}

async function readHostKeys(target: RemoteHost): Promise<{ type: string; base64: string }[]> {
  // The session to the target was verified against the operator's known_hosts, so what it reports
  // about its own keys is as trustworthy as that check.
  const { stdout } = await target.exec(['sh', '-c', 'cat /etc/ssh/ssh_host_*_key.pub'], { sudo: false });
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length >= 2 && /^(ssh-|ecdsa-)/.test(p[0]!))
    .map((p) => ({ type: p[0]!, base64: p[1]! }));
}

// $1 replica name, $2 its hook folders' prefix. pkill's pattern is a regex: the replica name has only [a-z0-9-].
const CLEAN_ORIGIN = `pkill -TERM -f -- "/run/\\.rmm-$1\\." || :
rm -rf -- /run/.rmm-"$1".* "$2"*`;

// $1 the prefix of the replica's hook folders, $2 of its gate folders.
const CLEAN_HOOKS = 'rm -rf -- "$1"* "$2"*';

// $1 the work folder, $2 the key's comment, $3 the remote shell that prints its arguments (for
// allowRsync). The private half never leaves the folder.
const MAKE_KEY = `set -e
mkdir -m 700 -- "$1"
ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1/key"
printf '%s' "$3" > "$1/rsh-args"
chmod 700 -- "$1/rsh-args"
cat -- "$1/key.pub"`;

// Run as the target user, so the file keeps its owner. flock: replicas sharing a target run in parallel.
// $1 the authorized_keys line.
const AUTHORIZE = `set -e
umask 077
mkdir -p "$HOME/.ssh"
exec 9>>"$HOME/.ssh/.rmm.lock"
flock 9
printf '%s\\n' "$1" >> "$HOME/.ssh/authorized_keys"`;

// $1 the marker of this replica's keys.
const REVOKE = `set -e
f="$HOME/.ssh/authorized_keys"
[ -f "$f" ] || exit 0
exec 9>>"$HOME/.ssh/.rmm.lock"
flock 9
trap 'rm -f -- "$f.rmm-tmp"' EXIT
# 1: no line left, which is fine; 2: the copy was not written whole, and must not replace the file.
grep -vF -- "$1" "$f" > "$f.rmm-tmp" || [ $? -eq 1 ]
chmod --reference="$f" "$f.rmm-tmp"
mv -f -- "$f.rmm-tmp" "$f"`;
