/**
 * The lab's origin host as an SSH target for transport tests, plus client keys the lab does not
 * make (an encrypted copy of its key, a key nobody authorizes). A lab that is already up is used
 * and left up; otherwise this brings it up and `release` takes it down again.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp, readLab, type Lab } from '../../support/lab/lab.js';
import { parseKnownHosts } from '../../../src/transport/known-hosts.js';

export interface LabTarget {
  host: string;
  port: number;
  users: { root: string; sudoer: string };
  clientKey: string;
  knownHosts: string;
  /** The host's keys by type, as the lab's known_hosts lists them. */
  hostKeys: Map<string, Buffer>;
  encryptedKey: string;
  passphrase: string;
  strangerKey: string;
  /** A scratch directory on the rmm host. */
  dir: string;
  sshdLog(): string;
  release(): Promise<void>;
}

export function labUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (the lab uses network namespaces, loop devices and mounts)';
  return undefined;
}

export async function useLabTarget(): Promise<LabTarget> {
  let lab = await runningLab();
  const broughtUp = !lab;
  lab ??= await labUp();
  const origin = lab.hosts.origin;
  const dir = mkdtempSync(join(tmpdir(), 'rmmt-lab-'));

  const passphrase = 'correct horse battery staple';
  const encryptedKey = join(dir, 'id_encrypted');
  execFileSync('cp', [lab.clientKey, encryptedKey]);
  execFileSync('ssh-keygen', ['-q', '-p', '-N', passphrase, '-f', encryptedKey]);
  const strangerKey = join(dir, 'id_stranger');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]);

  const hostKeys = new Map<string, Buffer>();
  for (const entry of parseKnownHosts(readFileSync(lab.knownHosts, 'utf8'))) {
    if (!entry.hosts.hashed && entry.hosts.patterns.includes(origin.address)) hostKeys.set(entry.keyType, entry.key);
  }

  return {
    host: origin.address,
    port: origin.port,
    users: { root: 'root', sudoer: lab.users.find((u) => u !== 'root') ?? 'rmm' },
    clientKey: lab.clientKey,
    knownHosts: lab.knownHosts,
    hostKeys,
    encryptedKey,
    passphrase,
    strangerKey,
    dir,
    sshdLog: () => readFileSync(origin.sshdLog, 'utf8'),
    release: async () => {
      rmSync(dir, { recursive: true, force: true });
      if (broughtUp) await labDown();
    },
  };
}

/** lab.json of a lab whose origin answers on its SSH port, or undefined. */
async function runningLab(): Promise<Lab | undefined> {
  const lab = await readLab().catch(() => undefined);
  if (!lab) return undefined;
  const { address, port } = lab.hosts.origin;
  const answers = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: address, port, timeout: 2_000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
  return answers ? lab : undefined;
}
