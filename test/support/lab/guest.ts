/**
 * The test guest from TypeScript: a thin, typed wrapper around `lab/guest.sh` (a Debian virtual
 * machine under qemu with an LVM volume group, for what the namespace lab cannot do). Needs root.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { LabError, runLabScript } from './lab.js';

/** The guest's LVM layout: a volume group with one mounted logical volume and free extents for snapshots. */
export interface GuestLvm {
  vg: string;
  lv: string;
  mountPoint: string;
  /** Filesystem on the logical volume (xfs: mount a snapshot of it with `-o nouuid`). */
  fstype: string;
}

/** guest.json, written by `guest.sh up` into its state directory. */
export interface Guest {
  version: 1;
  /** Where the guest's sshd is reached from this machine (qemu forwards the port; always 127.0.0.1). */
  address: string;
  port: number;
  stateDir: string;
  /** Private key (OpenSSH format, ed25519) authorised for root and `rmm`. */
  clientKey: string;
  /** known_hosts with the guest's host keys as `[127.0.0.1]:port`, unhashed. */
  knownHosts: string;
  /** Users that accept clientKey: root, and `rmm` with passwordless sudo. */
  users: string[];
  lvm: GuestLvm;
  /** Cached, read-only base image the guest's overlays are on. */
  image: string;
  /** The guest's console output. */
  serialLog: string;
  /** The qemu process. */
  pid: number;
}

export interface GuestOptions {
  /**
   * The guest's state directory (RMM_GUEST_DIR); default `$RMM_LAB_DIR-guest`, i.e. /run/rmm-lab-guest.
   * Beside the namespace lab's state directory, not in it: `lab.sh up` and `down` remove all of that.
   */
  dir?: string;
  /** Image cache (RMM_LAB_CACHE); default /var/cache/rmm-lab. */
  cache?: string;
  /** TCP port on 127.0.0.1 forwarded to the guest's sshd (RMM_GUEST_PORT); default 2222. */
  port?: number;
  /** Kill guest.sh after this long; default 45 min for `up` (may build the image), else 2 min. */
  timeoutMs?: number;
}

/** Absolute path of guest.sh (one level below the project root, like src/ and dist/). */
export const guestScript: string = fileURLToPath(new URL('../../../lab/guest.sh', import.meta.url));

const DEFAULT_LAB_DIR = '/run/rmm-lab';
const SHORT_TIMEOUT_MS = 120_000;
const UP_TIMEOUT_MS = 45 * 60_000;

function guestDir(options: GuestOptions): string {
  const labDir = (process.env['RMM_LAB_DIR'] ?? DEFAULT_LAB_DIR).replace(/\/+$/, '');
  return (options.dir ?? process.env['RMM_GUEST_DIR'] ?? `${labDir}-guest`).replace(/\/+$/, '');
}

function guestEnv(options: GuestOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.dir !== undefined) env['RMM_GUEST_DIR'] = options.dir;
  if (options.cache !== undefined) env['RMM_LAB_CACHE'] = options.cache;
  if (options.port !== undefined) env['RMM_GUEST_PORT'] = String(options.port);
  return env;
}

function runScript(args: string[], options: GuestOptions, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return runLabScript(guestScript, args, guestEnv(options), timeoutMs, 'GUEST_FAILED');
}

/** Stop a guest left running, build or reuse the image, boot the guest and wait for ssh; returns guest.json. */
export async function guestUp(options: GuestOptions = {}): Promise<Guest> {
  await runScript(['up'], options, options.timeoutMs ?? UP_TIMEOUT_MS);
  return readGuest(options);
}

/** Stop the guest and remove its overlays and state (idempotent; the cached image stays). */
export async function guestDown(options: GuestOptions = {}): Promise<void> {
  await runScript(['down'], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Parse guest.json of a running guest. */
export async function readGuest(options: GuestOptions = {}): Promise<Guest> {
  const file = join(guestDir(options), 'guest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new LabError('GUEST_NOT_UP', `the guest is not up: cannot read ${file} (run lab/guest.sh up)`, {}, { cause });
  }
  let guest: unknown;
  try {
    guest = JSON.parse(text);
  } catch (cause) {
    throw new LabError('GUEST_FAILED', `${file} is not valid JSON`, {}, { cause });
  }
  if (!isGuest(guest)) throw new LabError('GUEST_FAILED', `${file} is not a version 1 guest description`);
  return guest;
}

function isGuest(value: unknown): value is Guest {
  if (typeof value !== 'object' || value === null) return false;
  const guest = value as Partial<Guest>;
  if (guest.version !== 1 || typeof guest.address !== 'string' || typeof guest.port !== 'number') return false;
  if (typeof guest.clientKey !== 'string' || typeof guest.knownHosts !== 'string' || typeof guest.pid !== 'number') return false;
  if (!Array.isArray(guest.users) || !guest.users.every((u) => typeof u === 'string')) return false;
  const lvm = guest.lvm as Partial<GuestLvm> | undefined;
  return typeof lvm?.vg === 'string' && typeof lvm.lv === 'string' && typeof lvm.mountPoint === 'string';
}
