/**
 * The test lab from TypeScript: a thin, typed wrapper around `lab/lab.sh` (network namespaces with
 * an sshd chrooted into a real Debian root on loop-backed btrfs/xfs). Needs root.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { RmmError } from '../../../src/errors.js';

/** One lab host, as described in lab.json. */
export interface LabHost {
  address: string;
  port: number;
  /** Network namespace the host's sshd runs in. */
  netns: string;
  /** Host's "/" as seen from the rmm host (the sshd's chroot). */
  root: string;
  sshdLog: string;
  /** Mount point inside the host → filesystem type, root first. */
  mounts: Record<string, string>;
}

/** lab.json, written by `lab.sh up` into the state directory. */
export interface Lab {
  version: 1;
  /** Bridge in the root namespace; the rmm host is its address. */
  bridge: string;
  rmmAddress: string;
  stateDir: string;
  /** Private key (OpenSSH format, ed25519) authorised for root and `rmm` on every host. */
  clientKey: string;
  /** known_hosts with every host key of every host, by address, unhashed. */
  knownHosts: string;
  /** Users that accept clientKey: root, and `rmm` with passwordless sudo. */
  users: string[];
  hosts: { origin: LabHost; target: LabHost; [name: string]: LabHost };
}

export interface LabOptions {
  /** State directory (RMM_LAB_DIR); default /run/rmm-lab. */
  dir?: string;
  /** Image cache (RMM_LAB_CACHE); default /var/cache/rmm-lab. */
  cache?: string;
  /** Kill lab.sh after this long; default 30 min for `up` (may build the image), else 2 min. */
  timeoutMs?: number;
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
}

/** lab.sh failed, or the command run inside a host exited non-zero. */
export class LabError extends RmmError {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(
    code: string,
    message: string,
    facts: { exitCode?: number | null; stdout?: string; stderr?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.exitCode = facts.exitCode ?? null;
    this.stdout = facts.stdout ?? '';
    this.stderr = facts.stderr ?? '';
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), exitCode: this.exitCode, stderr: this.stderr };
  }
}

/** Absolute path of lab.sh (one level below the project root, like src/ and dist/). */
export const labScript: string = fileURLToPath(new URL('../../../lab/lab.sh', import.meta.url));

const DEFAULT_DIR = '/run/rmm-lab';
const SHORT_TIMEOUT_MS = 120_000;
const UP_TIMEOUT_MS = 30 * 60_000;

function labDir(options: LabOptions): string {
  // RMM_LAB_ID picks one of several labs that may run side by side (see lab.sh).
  const id = process.env['RMM_LAB_ID'];
  return options.dir ?? process.env['RMM_LAB_DIR'] ?? (id && id !== '0' ? `${DEFAULT_DIR}${id}` : DEFAULT_DIR);
}

function labEnv(options: LabOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.dir !== undefined) env['RMM_LAB_DIR'] = options.dir;
  if (options.cache !== undefined) env['RMM_LAB_CACHE'] = options.cache;
  return env;
}

function runScript(args: string[], options: LabOptions, timeoutMs: number): Promise<LabExecResult> {
  return runLabScript(labScript, args, labEnv(options), timeoutMs, 'LAB_FAILED');
}

/** Runs one of the lab's scripts (lab.sh, guest.sh); a failure says which subcommand and how, with its stderr. */
export function runLabScript(script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, code: string): Promise<LabExecResult> {
  return new Promise((resolve, reject) => {
    execFile(script, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (!error) {
        resolve({ stdout, stderr });
        return;
      }
      const exitCode = typeof error.code === 'number' ? error.code : null;
      const how = error.killed
        ? `was killed after ${timeoutMs} ms`
        : exitCode !== null
          ? `exited with ${exitCode}`
          : `failed (${error.signal ?? error.code ?? error.message})`;
      const detail = stderr.trim() === '' ? '' : `:\n${stderr.trim()}`;
      const name = script.split('/').pop();
      reject(new LabError(code, `${name} ${args.join(' ')} ${how}${detail}`, { exitCode, stdout, stderr }, { cause: error }));
    });
  });
}

/** Tear down whatever is left of a lab, build or reuse the image, start the hosts; returns lab.json. */
export async function labUp(options: LabOptions = {}): Promise<Lab> {
  await runScript(['up'], options, options.timeoutMs ?? UP_TIMEOUT_MS);
  return readLab(options);
}

/** Remove everything of the lab (processes, mounts, loop devices, namespaces, links, state). */
export async function labDown(options: LabOptions = {}): Promise<void> {
  await runScript(['down'], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Partition the hosts from each other; each still reaches the rmm host and is reached by it. */
export async function labCut(options: LabOptions = {}): Promise<void> {
  await runScript(['cut'], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Undo labCut. */
export async function labJoin(options: LabOptions = {}): Promise<void> {
  await runScript(['join'], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Run argv inside a host (its network namespace, hostname, mounts and root); throws on non-zero exit. */
export async function labExec(host: string, argv: string[], options: LabOptions = {}): Promise<LabExecResult> {
  if (argv.length === 0) throw new LabError('LAB_FAILED', 'labExec needs a command');
  return runScript(['exec', host, '--', ...argv], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Parse lab.json of a running lab. */
export async function readLab(options: LabOptions = {}): Promise<Lab> {
  const file = join(labDir(options), 'lab.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new LabError('LAB_NOT_UP', `the lab is not up: cannot read ${file} (run lab/lab.sh up)`, {}, { cause });
  }
  let lab: unknown;
  try {
    lab = JSON.parse(text);
  } catch (cause) {
    throw new LabError('LAB_FAILED', `${file} is not valid JSON`, {}, { cause });
  }
  if (!isLab(lab)) throw new LabError('LAB_FAILED', `${file} is not a version 1 lab description`);
  return lab;
}

function isLab(value: unknown): value is Lab {
  if (typeof value !== 'object' || value === null) return false;
  const lab = value as Partial<Lab>;
  if (lab.version !== 1 || typeof lab.clientKey !== 'string' || typeof lab.knownHosts !== 'string') return false;
  if (typeof lab.hosts !== 'object' || lab.hosts === null) return false;
  return ['origin', 'target'].every((name) => {
    const host = (lab.hosts as Record<string, Partial<LabHost> | undefined>)[name];
    return typeof host?.address === 'string' && typeof host.port === 'number' && typeof host.root === 'string';
  });
}
