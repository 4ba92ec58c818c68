import { loadSpec } from '../../config/load.js';
import { discoverOrigin } from '../../observe/origin.js';
import type { OriginFacts } from '../../observe/facts.js';
import { createSessionPool } from '../../transport/index.js';
import { endpointSession } from '../../apply/sessions.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, fileArgs, writeJson, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { ENGINE_OPTIONS } from './engine.js';
import { didYouMean } from '../../config/suggest.js';

export const discoverCommand: Command = {
  name: 'discover',
  summary: 'read an origin: OS, disks, LVM, filesystems, free space, network files, tools; flag what needs attention',
  usage: 'rmm discover ORIGIN -f FILE [-o json]',
  details: [FILE_HELP, OUTPUT_HELP, '  --trust-new-host-keys   add an unknown host key to the known_hosts file'].join('\n'),
  options: { ...FILE_OPTION, ...ENGINE_OPTIONS },
  async run(ctx) {
    const name = ctx.positionals[0];
    if (!name) throw new UsageError('discover needs the name of an Origin');
    if (fileArgs(ctx).length === 0) throw new UsageError('discover needs -f FILE to know how to reach the origin');
    const { spec } = await loadSpec(fileArgs(ctx));
    const replica = spec.replicas.find((r) => r.origin.name === name);
    if (!replica) throw new UsageError(`no replica of an origin named '${name}'${didYouMean(name, spec.replicas.map((r) => r.origin.name))}`);
    const pool = createSessionPool();
    try {
      const session = await endpointSession(pool, replica.origin.endpoint, ctx.values['trust-new-host-keys'] === true);
      const facts = await discoverOrigin(session, replica.origin.root);
      const attention = needsAttention(facts, replica.policy.snapshot.minFreePercent);
      if (ctx.output === 'json') writeJson(ctx, { origin: name, facts, attention });
      else ctx.stdout.write(renderFacts(name, facts, attention));
      return EXIT.ok;
    } finally {
      await pool.closeAll();
    }
  },
};

export function needsAttention(facts: OriginFacts, minFreePercent: number): string[] {
  const notes: string[] = [];
  for (const fs of facts.filesystems) {
    const free = fs.sizeBytes > 0 ? (fs.availableBytes / fs.sizeBytes) * 100 : 100;
    if (free < minFreePercent) notes.push(`${fs.mountPoint}: ${free.toFixed(1)}% free, below the ${minFreePercent}% a snapshot needs`);
    if (fs.usedBytes > 1024 ** 4) notes.push(`${fs.mountPoint}: ${(fs.usedBytes / 1024 ** 4).toFixed(1)} TiB used; a first copy will take long`);
  }
  for (const tool of ['rsync', 'flock', 'ssh', 'ssh-keygen']) if (!facts.tools[tool]) notes.push(`missing tool: ${tool}`);
  return notes;
}

function renderFacts(name: string, f: OriginFacts, attention: readonly string[]): string {
  const gib = (b: number): string => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  const lines = [
    `${name}: ${f.hostname} (${f.os.prettyName}, kernel ${f.kernel} ${f.arch})`,
    `machine-id ${f.machineId}`,
    'filesystems:',
    ...f.filesystems.map((fs) => `  ${fs.mountPoint.padEnd(16)} ${fs.fsType.padEnd(6)} ${fs.source}${fs.lvmName ? ` (LVM ${fs.lvmName})` : ''}  ${gib(fs.usedBytes)} used, ${gib(fs.availableBytes)} free of ${gib(fs.sizeBytes)}`),
    'block devices:',
    ...f.blockDevices.map((d) => `  ${d.path} ${d.type} ${gib(d.sizeBytes)}${d.fsType ? ` ${d.fsType}` : ''}${d.mountPoint ? ` on ${d.mountPoint}` : ''}`),
    `network config: ${f.networkConfigFiles.join(', ') || 'none found'}`,
    `tools: ${Object.entries(f.tools).map(([t, ok]) => `${t}${ok ? '' : ' (missing)'}`).join(', ')}`,
    attention.length ? 'needs attention:' : 'needs attention: nothing',
    ...attention.map((a) => `  ! ${a}`),
  ];
  return `${lines.join('\n')}\n`;
}
