import { loadSpec } from '../../config/load.js';
import { discoverOrigin } from '../../observe/origin.js';
import { readDiskLayout, type DiskLayout, type FsInfo } from '../../observe/layout.js';
import type { OriginFacts } from '../../observe/facts.js';
import { cliSessionPool } from './replica-target.js';
import { endpointSession } from '../../apply/sessions.js';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CIPHERS, type Endpoint } from '../../config/spec.js';
import { MANUAL_POLICY } from '../../config/resolve.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, fileArgs, writeJson, type Command, type CommandContext } from '../command.js';
import { UsageError } from '../errors.js';
import { ENGINE_OPTIONS } from './engine.js';
import { didYouMean } from '../../config/suggest.js';

export const discoverCommand: Command = {
  name: 'discover',
  summary: 'read a host: OS, disks (partition tables, firmware), LVM, filesystems, free space, network files, tools; flag what needs attention',
  usage: 'rmm discover ORIGIN|LANDING-HOST -f FILE | rmm discover [USER@]ADDRESS[:PORT] [-i KEY] [--known-hosts FILE] [--sudo]  [-o json]',
  details: [
    '  ORIGIN|LANDING-HOST     the name of an Origin, or of an environment\'s landing host, of the files given with -f',
    '  [USER@]ADDRESS[:PORT]   or any host, reached with the options below (user root, port 22 by default)',
    FILE_HELP,
    '  -i, --identity KEY      private key file (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)',
    '  --known-hosts FILE      known_hosts to verify the host key against (default ~/.ssh/known_hosts)',
    '  --sudo                  run the discovery commands with sudo -n',
    '  --trust-new-host-keys   add an unknown host key to the known_hosts file',
    OUTPUT_HELP,
  ].join('\n'),
  positionals: 1,
  options: {
    ...FILE_OPTION,
    ...ENGINE_OPTIONS,
    identity: { type: 'string', short: 'i' },
    'known-hosts': { type: 'string' },
    sudo: { type: 'boolean' },
  },
  async run(ctx) {
    const name = ctx.positionals[0];
    if (!name) throw new UsageError('discover needs an Origin name or [USER@]ADDRESS[:PORT]');
    const { endpoint, root, minFreePercent } = await resolveHost(ctx, name);
    const pool = cliSessionPool(ctx);
    try {
      const session = await endpointSession(pool, endpoint, ctx.values['trust-new-host-keys'] === true);
      const facts = await discoverOrigin(session, root);
      // The disks as a layout sees them: what a disks target lays out from, or onto.
      const layout = await readDiskLayout(session).catch((err: unknown) => ({ error: (err as Error).message }));
      const attention = needsAttention(facts, minFreePercent);
      if (ctx.output === 'json') writeJson(ctx, { formatVersion: 1, origin: name, facts, layout, attention });
      else ctx.stdout.write(renderFacts(name, facts, attention) + renderLayout(layout));
      return EXIT.ok;
    } finally {
      await pool.closeAll();
    }
  },
};

/** An Origin of the files, or an ad hoc `[user@]address[:port]` reached with the command's options. */
async function resolveHost(ctx: CommandContext, name: string): Promise<{ endpoint: Endpoint; root: string; minFreePercent: number }> {
  if (fileArgs(ctx).length > 0) {
    const { spec } = await loadSpec(fileArgs(ctx));
    const replica = spec.replicas.find((r) => r.origin.name === name);
    if (replica) return { endpoint: replica.origin.endpoint, root: replica.origin.root, minFreePercent: replica.policy.snapshot.minFreePercent };
    const landing = spec.replicas.find((r) => r.target.endpoint.name === name);
    if (landing) return { endpoint: landing.target.endpoint, root: '/', minFreePercent: landing.policy.snapshot.minFreePercent };
    const names = [...new Set(spec.replicas.flatMap((r) => [r.origin.name, r.target.endpoint.name]))];
    throw new UsageError(`no origin or landing host of a replica named '${name}'${didYouMean(name, names)}`);
  }
  const m = /^(?:([a-z_][a-z0-9_.-]*)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(name);
  if (!m) throw new UsageError(`'${name}' is neither [USER@]ADDRESS[:PORT] nor, without -f, an Origin name`);
  const identity = ctx.values.identity;
  const knownHosts = ctx.values['known-hosts'];
  return {
    endpoint: {
      name,
      address: m[2]!.replace(/^\[|\]$/g, ''),
      port: Number(m[3] ?? 22),
      user: m[1] ?? 'root',
      sudo: ctx.values.sudo === true,
      auth: typeof identity === 'string' ? { kind: 'keyFile', path: path.resolve(identity) } : { kind: 'default' },
      knownHostsFile: typeof knownHosts === 'string' ? path.resolve(knownHosts) : path.join(os.homedir(), '.ssh/known_hosts'),
      ciphers: DEFAULT_CIPHERS,
      connectTimeoutMs: 15_000,
      heartbeatTimeoutMs: 30_000,
    },
    root: '/',
    minFreePercent: MANUAL_POLICY.snapshot.minFreePercent,
  };
}

export function needsAttention(facts: OriginFacts, minFreePercent: number): string[] {
  const notes: string[] = [];
  for (const fs of facts.filesystems) {
    const free = fs.sizeBytes > 0 ? (fs.availableBytes / fs.sizeBytes) * 100 : 100;
    if (free < minFreePercent) notes.push(`${fs.mountPoint}: ${free.toFixed(1)}% free, below the ${minFreePercent}% a snapshot needs`);
    if (fs.usedBytes > 1024 ** 4) notes.push(`${fs.mountPoint}: ${(fs.usedBytes / 1024 ** 4).toFixed(1)} TiB used; a first copy will take long`);
  }
  for (const tool of ['rsync', 'flock', 'ssh', 'ssh-keygen']) if (!facts.tools[tool]) notes.push(`missing tool: ${tool}`);
  // systemd writes `uninitialized` while first boot has not set it.
  if (facts.machineId === '' || facts.machineId === 'uninitialized') {
    notes.push(
      'machine-id is blank (/etc/machine-id): rmm tells a server from another at the same address by it, so a target holding ' +
        "another server's copy would not be refused, and a replica that boots makes a new one of its own; run systemd-machine-id-setup on it",
    );
  }
  return notes;
}

/** The disks as the layout reads them: firmware, each disk's size and what it holds. */
function renderLayout(layout: DiskLayout | { error: string }): string {
  if ('error' in layout) return `disks: not read (${layout.error})\n`;
  const size = (b: number): string => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(b / 1024 ** 2)} MiB`);
  const fs = (f: FsInfo | undefined): string => (f ? ` ${f.type}${f.label ? ` "${f.label}"` : ''}${f.mountPoint ? ` on ${f.mountPoint}` : ''}` : '');
  const lines = [`firmware: ${layout.firmware === 'uefi' ? 'UEFI' : 'BIOS'}`, 'disks:'];
  for (const d of layout.disks) {
    const table = d.table ? `${d.table === 'gpt' ? 'GPT' : 'MBR'}, ${d.partitions.length} partition(s)` : d.holds ? `no partition table,${fs(d.holds)}${d.lvmPv ? ` (LVM ${d.lvmPv})` : ''}` : 'blank';
    lines.push(`  ${d.path} ${size(d.sizeBytes)}${d.model ? ` ${d.model}` : ''}${d.readOnly ? ' read-only' : ''}: ${table}`);
    for (const p of d.partitions) lines.push(`    ${p.path} ${size(p.sizeBytes)}${fs(p.fs)}${p.lvmPv ? ` (LVM ${p.lvmPv})` : ''}`);
  }
  for (const vg of layout.volumeGroups) lines.push(`  volume group ${vg.name} on ${vg.pvs.join(', ')}: ${vg.lvs.map((lv) => `${lv.name} ${size(lv.sizeBytes)}${fs(lv.fs)}`).join('; ') || 'no logical volumes'}, ${size(vg.freeBytes)} free`);
  return `${lines.join('\n')}\n`;
}

function renderFacts(name: string, f: OriginFacts, attention: readonly string[]): string {
  const gib = (b: number): string => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  const lines = [
    `${name}: ${f.hostname} (${f.os.prettyName}, kernel ${f.kernel} ${f.arch})`,
    `machine-id ${f.machineId || '(blank)'}`,
    'filesystems:',
    // In path order, each mount below the one it is in.
    ...[...f.filesystems].sort((a, b) => byPath(a.mountPoint, b.mountPoint)).map((fs) => `  ${fs.mountPoint.padEnd(16)} ${fs.fsType.padEnd(6)} ${fs.source}${fs.lvmName ? ` (LVM ${fs.lvmName})` : ''}  ${gib(fs.usedBytes)} used, ${gib(fs.availableBytes)} free of ${gib(fs.sizeBytes)}`),
    'block devices:',
    ...[...f.blockDevices].sort((a, b) => byPath(a.path, b.path)).map((d) => `  ${d.path} ${d.type} ${gib(d.sizeBytes)}${d.fsType ? ` ${d.fsType}` : ''}${d.mountPoint ? ` on ${d.mountPoint}` : ''}`),
    `network config: ${f.networkConfigFiles.join(', ') || 'none found'}`,
    `tools: ${Object.entries(f.tools).map(([t, ok]) => `${t}${ok ? '' : ' (missing)'}`).join(', ')}`,
    attention.length ? 'needs attention:' : 'needs attention: nothing',
    ...attention.map((a) => `  ! ${a}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Folder by folder (a mount point right before what is mounted below it), numbers as numbers (sda2 before sda10). */
function byPath(a: string, b: string): number {
  const [x, y] = [a.split('/'), b.split('/')];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const order = x[i]!.localeCompare(y[i]!, 'en', { numeric: true });
    if (order !== 0) return order;
  }
  return x.length - y.length;
}
