/**
 * The boot lab from TypeScript: a thin, typed wrapper around `lab/boot.sh` (qemu machines for the
 * "boot test" of disks targets: an origin that boots from its own disk, a landing with blank disks,
 * and the replica: the landing's disks booted alone on other hardware). Needs root.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { LabError, runLabScript, type LabExecResult } from './lab.js';

export type BootMachineName = 'origin' | 'landing' | 'replica';

/** One disk of a machine. */
export interface BootDisk {
  /** origin: system, lvm, asm; landing: system, target1, target2; replica: sda, sdb. */
  role: string;
  /** The qcow2 file qemu writes (an overlay, or the landing's blank disk). */
  path: string;
  /** What the overlay is on ('' for the landing's blank disks): the cached image, or the landing's disk. */
  base: string;
  /** The disk's name inside the machine: /dev/vda… on the pc machines, /dev/sda… on the replica. */
  device: string;
  sizeBytes: number;
}

/** One machine in boot.json. */
export interface BootMachine {
  name: BootMachineName;
  /** Where its sshd is reached from this machine (qemu forwards the port; always 127.0.0.1). */
  host: string;
  sshPort: number;
  /** Users that accept clientKey: root, and `rmm` with passwordless sudo. */
  users: string[];
  clientKey: string;
  /**
   * known_hosts with the machine's host keys as `[127.0.0.1]:port`, unhashed. The replica's is
   * learnt on first contact (its keys are whatever the copy gave it): see hostKeysFromOrigin.
   */
  knownHosts: string;
  /** app01, landing; '' for the replica (whatever the copy says). */
  hostname: string;
  /** The qemu user network the machine is on, its gateway and DNS (.2 and .3). */
  network: string;
  gateway: string;
  dns: string;
  /** The address qemu forwards the ssh port to. */
  guestAddress: string;
  /** qemu machine type: pc (origin, landing) or q35 (replica). */
  machine: 'pc' | 'q35';
  /** The origin's is 'uefi' when `up origin --firmware uefi` started it (OVMF, its own image). */
  firmware: 'bios' | 'uefi';
  /** disk: the machine's own bootloader; kernel: qemu's -kernel/-initrd (the landing). */
  boot: 'disk' | 'kernel';
  /** The NIC; name is the interface name the guest gives it (ens3 on pc/virtio, enp0s3 on q35/e1000e). */
  nic: { model: string; mac: string; pciAddress: string; name: string };
  disks: BootDisk[];
  serialLog: string;
  /** The qemu process; null once `poweroff` stopped it (its disks stay). */
  pid: number | null;
  /** Replica only: whether `boot-replica` waited for ssh and it answered. */
  sshAnswered?: boolean;
  /** Replica only: whether its ssh host key is the origin's. */
  hostKeysFromOrigin?: boolean;
}

/** boot.json, written into the state directory by every boot.sh command that changes a machine. */
export interface BootLab {
  version: 1;
  stateDir: string;
  /**
   * Cached, read-only base image directory the overlays are on (it holds the client key). A UEFI
   * origin's disks are on an image of their own ($RMM_LAB_CACHE/boot-uefi-<hash>): see their base.
   */
  image: string;
  /** Private key (OpenSSH format, ed25519) authorised for root and `rmm` on every machine. */
  clientKey: string;
  machines: Partial<Record<BootMachineName, BootMachine>>;
}

export interface BootOptions {
  /** State directory (RMM_BOOT_DIR); default /var/tmp/rmm-boot. */
  dir?: string;
  /** Image cache (RMM_LAB_CACHE); default /var/cache/rmm-lab. */
  cache?: string;
  /** Kill boot.sh after this long; default 45 min for `up` (may build the image), 15 min for boot-replica and poweroff, else 2 min. */
  timeoutMs?: number;
}

export interface ReplicaOptions extends BootOptions {
  firmware?: 'bios' | 'uefi';
  /** The replica's user network (default 10.0.4.0/24). */
  net?: string;
  /** The address ssh is forwarded to (default .15 of net). */
  address?: string;
  /** TCP port on 127.0.0.1 (default RMM_BOOT_REPLICA_PORT or 2233). */
  port?: number;
  mac?: string;
  /** Start it and return at once, without waiting for ssh. */
  noWait?: boolean;
  /** Per landing disk: the byte range the replica sees as its whole disk (a logical volume's extents), or the whole disk. */
  slices?: readonly ({ offset: number; size: number } | undefined)[];
}

/** Absolute path of boot.sh (one level below the project root, like src/ and dist/). */
export const bootScript: string = fileURLToPath(new URL('../../../lab/boot.sh', import.meta.url));

const DEFAULT_DIR = '/var/tmp/rmm-boot';
const SHORT_TIMEOUT_MS = 120_000;
const MEDIUM_TIMEOUT_MS = 15 * 60_000;
const UP_TIMEOUT_MS = 45 * 60_000;

function bootDir(options: BootOptions): string {
  return (options.dir ?? process.env['RMM_BOOT_DIR'] ?? DEFAULT_DIR).replace(/\/+$/, '');
}

function bootEnv(options: BootOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.dir !== undefined) env['RMM_BOOT_DIR'] = options.dir;
  if (options.cache !== undefined) env['RMM_LAB_CACHE'] = options.cache;
  return env;
}

/** Runs boot.sh with the options' environment; a failure is a LabError with code BOOT_FAILED. */
export function runBootScript(args: string[], options: BootOptions = {}, timeoutMs = options.timeoutMs ?? SHORT_TIMEOUT_MS): Promise<LabExecResult> {
  return runLabScript(bootScript, args, bootEnv(options), timeoutMs, 'BOOT_FAILED');
}

/** Build the cached image if needed; returns its directory (firmware 'uefi': the UEFI origin's, built after the BIOS image). */
export async function bootImage(options: BootOptions & { firmware?: 'bios' | 'uefi' } = {}): Promise<string> {
  const args = ['image', ...(options.firmware !== undefined ? ['--firmware', options.firmware] : [])];
  const { stdout } = await runBootScript(args, options, options.timeoutMs ?? UP_TIMEOUT_MS);
  return stdout.trim().split('\n').pop() ?? '';
}

export interface UpOptions extends BootOptions {
  /** landing only: start the powered-off landing again on the disks it had. */
  keepDisks?: boolean;
  /**
   * origin only: 'uefi' starts the UEFI origin (OVMF with fresh variables, vda GPT with the ESP
   * vda1 on /boot/efi and root on vda2; its own cached image, built on first use); default 'bios'.
   */
  firmware?: 'bios' | 'uefi';
}

/** (Re)start origin or landing on fresh overlays (and blank disks), wait for ssh; returns its description. */
export async function bootUp(name: 'origin' | 'landing', options: UpOptions = {}): Promise<BootMachine> {
  const args = ['up', name];
  if (options.keepDisks === true) args.push('--keep-disks');
  if (options.firmware !== undefined) args.push('--firmware', options.firmware);
  await runBootScript(args, options, options.timeoutMs ?? UP_TIMEOUT_MS);
  return machine(await readBoot(options), name);
}

/** Clean shutdown from inside, then wait for qemu to exit (the machine's disks stay). */
export async function bootPoweroff(name: BootMachineName, options: BootOptions = {}): Promise<void> {
  await runBootScript(['poweroff', name], options, options.timeoutMs ?? MEDIUM_TIMEOUT_MS);
}

/**
 * Sync inside, then stop the machine's CPUs (qemu flushes its disks first): it answers and writes
 * nothing until bootResume. A paused landing's disks can be booted as the replica, which saves its
 * shutdown and its next boot.
 */
export async function bootPause(name: 'origin' | 'landing', options: BootOptions = {}): Promise<void> {
  await runBootScript(['pause', name], options, options.timeoutMs ?? MEDIUM_TIMEOUT_MS);
}

/** Run a paused machine again; returns once its ssh answers. */
export async function bootResume(name: 'origin' | 'landing', options: BootOptions = {}): Promise<void> {
  await runBootScript(['resume', name], options, options.timeoutMs ?? MEDIUM_TIMEOUT_MS);
}

/**
 * The machine's site goes down ('down': its ssh port is no longer forwarded, a connection is
 * refused) or comes back ('up': forwarded again, returns once ssh answers). The machine runs on.
 */
export async function bootLink(name: 'origin' | 'landing', state: 'up' | 'down', options: BootOptions = {}): Promise<void> {
  await runBootScript([`link-${state}`, name], options, options.timeoutMs ?? MEDIUM_TIMEOUT_MS);
}

/** Boot the powered-off (or paused) landing's two data disks alone on q35/AHCI/e1000e; returns the replica's description. */
export async function bootReplica(options: ReplicaOptions = {}): Promise<BootMachine> {
  const args = ['boot-replica'];
  if (options.firmware !== undefined) args.push('--firmware', options.firmware);
  if (options.net !== undefined) args.push('--net', options.net);
  if (options.address !== undefined) args.push('--address', options.address);
  if (options.port !== undefined) args.push('--port', String(options.port));
  if (options.mac !== undefined) args.push('--mac', options.mac);
  if (options.noWait === true) args.push('--no-wait');
  for (const [i, slice] of (options.slices ?? []).entries()) if (slice) args.push(`--slice${i + 1}`, `${slice.offset}:${slice.size}`);
  await runBootScript(args, options, options.timeoutMs ?? MEDIUM_TIMEOUT_MS);
  return machine(await readBoot(options), 'replica');
}

/** Stop machines and remove their disks and state (idempotent; the cached image stays). */
export async function bootDown(name: BootMachineName | 'all' = 'all', options: BootOptions = {}): Promise<void> {
  await runBootScript(['down', name], options, options.timeoutMs ?? SHORT_TIMEOUT_MS);
}

/** Parse boot.json. */
export async function readBoot(options: BootOptions = {}): Promise<BootLab> {
  const file = join(bootDir(options), 'boot.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new LabError('BOOT_NOT_UP', `no boot lab machine is up: cannot read ${file} (run lab/boot.sh up origin)`, {}, { cause });
  }
  let lab: unknown;
  try {
    lab = JSON.parse(text);
  } catch (cause) {
    throw new LabError('BOOT_FAILED', `${file} is not valid JSON`, {}, { cause });
  }
  if (!isBootLab(lab)) throw new LabError('BOOT_FAILED', `${file} is not a version 1 boot lab description`);
  return lab;
}

/** The named machine of boot.json, or a BOOT_NOT_UP error. */
export function machine(lab: BootLab, name: BootMachineName): BootMachine {
  const m = lab.machines[name];
  if (m === undefined) throw new LabError('BOOT_NOT_UP', `${name} is not in ${lab.stateDir}/boot.json`);
  return m;
}

/** Arguments for the real OpenSSH client to reach a machine, strict about its host key (before user@host). */
export function sshArgs(m: BootMachine): string[] {
  return [
    '-F', 'none',
    '-i', m.clientKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${m.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    // It bounds the banner exchange too: a guest under software emulation, busy with a copy while the
    // other boot test's guests share the cores, took more than 10 s to answer (CI, 2026-12-08).
    '-o', 'ConnectTimeout=60',
    '-p', String(m.sshPort),
  ];
}

function isBootLab(value: unknown): value is BootLab {
  if (typeof value !== 'object' || value === null) return false;
  const lab = value as Partial<BootLab>;
  if (lab.version !== 1 || typeof lab.stateDir !== 'string' || typeof lab.clientKey !== 'string') return false;
  if (typeof lab.machines !== 'object' || lab.machines === null) return false;
  return Object.values(lab.machines).every(isMachine);
}

function isMachine(value: unknown): value is BootMachine {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Partial<BootMachine>;
  if (typeof m.name !== 'string' || typeof m.sshPort !== 'number' || typeof m.knownHosts !== 'string') return false;
  if (typeof m.clientKey !== 'string' || !(typeof m.pid === 'number' || m.pid === null)) return false;
  if (!Array.isArray(m.disks) || !m.disks.every((d: Partial<BootDisk>) => typeof d.path === 'string' && typeof d.device === 'string')) return false;
  return typeof m.nic?.name === 'string';
}
