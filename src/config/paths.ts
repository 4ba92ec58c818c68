import os from 'node:os';
import path from 'node:path';
import { showValue } from './diagnostics.js';

/** Resolves a path written in a YAML file: `~` is the home directory, relative is relative to the file. */
export function resolveLocalPath(value: string, baseDir: string): string {
  if (value === '~') return os.homedir();
  if (value.startsWith('~/')) return path.join(os.homedir(), value.slice(2));
  return path.resolve(baseDir, value);
}

/** Double and trailing slashes removed; `.` and `..` are refused by landingFolderProblem, not resolved here. */
export function normalizeFolder(folder: string): string {
  const normal = path.posix.normalize(folder);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

/** Folders of the operating system that must never hold a replica, the folder itself. */
const SYSTEM_FOLDERS = new Set(['/var', '/root', '/home']);
/**
 * The same, with everything below them. /bin, /sbin, /lib and /lib64 are links into /usr on
 * merged-/usr systems, so what lies below them lies below /usr.
 */
const SYSTEM_TREES = ['/usr', '/etc', '/boot', '/proc', '/sys', '/dev', '/run', '/bin', '/sbin', '/lib', '/lib64'];

/**
 * Why a folder on a landing host cannot hold replicas (`holder`: what it would hold, for the
 * message), or undefined when it can. The folder ends up in remote commands, in `rm -rf` of old
 * recovery points and in logs, so it must name one place plainly.
 */
export function landingFolderProblem(folder: string, holder: string): string | undefined {
  const shown = showValue(folder);
  const control = /[\x00-\x1f\x7f]/.exec(folder);
  if (control) return `${shown} holds a control character (0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')}); a folder name must be printable`;
  if (!folder.startsWith('/')) return `${shown} is not an absolute path`;
  const dots = folder.split('/').find((part) => part === '.' || part === '..');
  if (dots) return `${shown} has a '${dots}' component; write the folder itself, without '.' or '..'`;
  const normal = normalizeFolder(folder);
  const hint = 'use a folder such as /srv/replicas';
  if (normal === '/') return `'/' would put ${holder} over the landing host's own root; ${hint}`;
  if (SYSTEM_FOLDERS.has(normal) || SYSTEM_TREES.includes(normal)) return `${shown} is a system folder of the landing host; ${hint}`;
  const tree = SYSTEM_TREES.find((t) => normal.startsWith(`${t}/`));
  if (tree) return `${shown} is inside ${tree}, a system folder of the landing host; ${hint}`;
  return undefined;
}
