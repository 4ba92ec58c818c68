import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadSpec } from '../../config/load.js';
import type { Replica } from '../../config/spec.js';
import { didYouMean } from '../../config/suggest.js';
import { endpointSession } from '../../apply/sessions.js';
import { targetDriver, type TargetDriver } from '../../target/index.js';
import { createSessionPool, hostPort, type RemoteHost, type SessionPool } from '../../transport/index.js';
import { fileArgs, type CommandContext } from '../command.js';
import { UsageError } from '../errors.js';

export const TRUST_OPTION = { 'trust-new-host-keys': { type: 'boolean' } } as const;
export const TRUST_HELP = '  --trust-new-host-keys   add unknown host keys to the known_hosts file (a changed key is always refused)';

/**
 * The run's sessions; each host key --trust-new-host-keys adds is said on stderr with its
 * fingerprint (under -o json as a JSON line, `{"notice": "ssh.host_key_trusted", ...}`).
 */
export function cliSessionPool(ctx: CommandContext): SessionPool {
  return createSessionPool(undefined, {
    onNewHostKey: ({ host, port, fingerprint, knownHostsFile }) =>
      ctx.stderr.write(
        ctx.output === 'json'
          ? `${JSON.stringify({ notice: 'ssh.host_key_trusted', host, port, keyType: fingerprint.keyType, sha256: fingerprint.sha256, knownHostsFile })}\n`
          : `rmm: trusted the new host key of ${hostPort(host, port)}: ${fingerprint.keyType} ${fingerprint.sha256}, added to ${knownHostsFile}\n`,
      ),
  });
}

/** The replica a command names, with a session to its target; the caller closes `pool`. */
export async function openReplicaTarget(ctx: CommandContext): Promise<{ replica: Replica; pool: SessionPool; host: RemoteHost; driver: TargetDriver; trustNewHostKeys: boolean }> {
  const name = ctx.positionals[0];
  if (name === undefined) throw new UsageError('needs the name of a replica');
  const args = fileArgs(ctx);
  if (args.length === 0) throw new UsageError('needs at least one -f FILE');
  const { spec, warnings } = await loadSpec(args);
  if (ctx.output === 'text') for (const w of warnings) ctx.stderr.write(`${formatDiagnostic(w)}\n`);
  const replica = spec.replicas.find((r) => r.name === name);
  if (!replica) throw new UsageError(`no replica named '${name}'${didYouMean(name, spec.replicas.map((r) => r.name))} in ${args.join(', ')} (there are: ${spec.replicas.map((r) => r.name).join(', ') || 'none'})`);
  const trustNewHostKeys = ctx.values['trust-new-host-keys'] === true;
  const pool = cliSessionPool(ctx);
  try {
    const host = await endpointSession(pool, replica.target.endpoint, trustNewHostKeys);
    return { replica, pool, host, driver: targetDriver(replica, host), trustNewHostKeys };
  } catch (err) {
    await pool.closeAll();
    throw err;
  }
}
