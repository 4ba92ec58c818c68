import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';

export class MissingToolError extends RmmError {
  constructor(readonly facts: { host: string; tool: string; hint: string }) {
    super('tool.missing', `${facts.host} has no ${facts.tool}; ${facts.hint}`);
  }
}

/** The package manager command that installs `pkg` on an OS, by its os-release ID (and ID_LIKE). */
export function installCommand(osId: string, pkg: string): string[] | undefined {
  const id = osId.toLowerCase();
  if (/debian|ubuntu|raspbian|linuxmint/.test(id)) return ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', pkg];
  if (/rhel|centos|fedora|rocky|almalinux|ol|amzn/.test(id)) return ['sh', '-c', 'command -v dnf >/dev/null && exec dnf install -y "$1" || exec yum install -y "$1"', 'rmm-install', pkg];
  if (/sles|suse/.test(id)) return ['zypper', '--non-interactive', 'install', pkg];
  if (/alpine/.test(id)) return ['apk', 'add', pkg];
  return undefined;
}

/** The package manager an install command runs, for messages. */
function managerOf(command: readonly string[]): string {
  if (command.includes('apt-get')) return 'apt-get';
  if (command.includes('zypper')) return 'zypper';
  if (command.includes('apk')) return 'apk';
  return 'dnf (or yum)';
}

/** Makes sure a host has rsync: installs it when the policy allows, or says how to. */
export async function ensureRsync(session: RemoteHost, autoInstall: boolean): Promise<'present' | 'installed'> {
  const found = await session.exec(['sh', '-c', 'command -v rsync'], { allowFailure: true });
  if (found.exitCode === 0) return 'present';
  const host = session.info.host;
  if (!autoInstall) throw new MissingToolError({ host, tool: 'rsync', hint: 'install it, or set the policy autoInstallPackages: true' });
  const osRelease = await session.exec(['sh', '-c', '. /etc/os-release 2>/dev/null; echo "$ID $ID_LIKE"'], { allowFailure: true });
  const command = installCommand(osRelease.stdout.trim(), 'rsync');
  if (!command) throw new MissingToolError({ host, tool: 'rsync', hint: `rmm does not know the package manager of '${osRelease.stdout.trim()}'; install rsync by hand` });
  const res = await session.exec(command, { sudo: true, allowFailure: true, timeoutMs: 600_000 });
  if (res.exitCode !== 0) {
    const why = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-2).join(' | ') || `exit ${res.exitCode}`;
    throw new MissingToolError({ host, tool: 'rsync', hint: `${managerOf(command)} could not install the package rsync (exit ${res.exitCode}): ${why}; install it by hand` });
  }
  return 'installed';
}
