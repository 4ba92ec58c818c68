import type { ClientChannel } from 'ssh2';
import { ConnectError } from './errors.js';
import type { SshSession } from './session.js';

import type { ReverseTunnel } from './host.js';

/**
 * Asks the origin's sshd to listen on 127.0.0.1 (a port it picks) and carries every connection
 * to it over to the target's sshd, through the two sessions rmm holds. The origin and the target
 * never need a route to each other.
 */
export async function openReverseTunnel(origin: SshSession, target: SshSession, targetPort: number, targetAddress = target.info.host): Promise<ReverseTunnel> {
  const client = origin.sshClient();
  const port = await new Promise<number>((resolve, reject) => {
    client.forwardIn('127.0.0.1', 0, (err, bound) => {
      if (err) reject(new ConnectError({ host: origin.info.host, port: origin.info.port, reason: 'other', detail: `the origin's sshd refused a reverse forward (AllowTcpForwarding?): ${err.message}` }));
      else resolve(bound);
    });
  });
  const open = new Set<ClientChannel>();
  const onConnection = (
    info: { destIP: string; destPort: number; srcIP: string; srcPort: number },
    accept: () => ClientChannel,
    reject: () => void,
  ): void => {
    if (info.destPort !== port) return; // another tunnel's connection
    target.sshClient().forwardOut(info.srcIP, info.srcPort, targetAddress, targetPort, (err, remote) => {
      if (err) {
        reject();
        return;
      }
      const local = accept();
      open.add(local).add(remote);
      local.pipe(remote).pipe(local);
      const done = (): void => {
        open.delete(local);
        open.delete(remote);
        local.destroy();
        remote.destroy();
      };
      local.once('close', done);
      remote.once('close', done);
    });
  };
  client.on('tcp connection', onConnection);
  return {
    port,
    close: async () => {
      client.off('tcp connection', onConnection);
      for (const ch of open) ch.destroy();
      await new Promise<void>((resolve) => {
        try {
          client.unforwardIn('127.0.0.1', port, () => resolve());
        } catch {
          resolve(); // the connection is already gone, and the listener with it
        }
      });
    },
  };
}
