import { breakLock, inspectLock, isStuck } from '../../apply/lock.js';
import { RmmError } from '../../errors.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, writeJson, type Command } from '../command.js';
import { confirm, YES_HELP, YES_OPTION } from '../confirm.js';
import { openReplicaTarget, TRUST_HELP, TRUST_OPTION } from './replica-target.js';

export const unlockCommand: Command = {
  name: 'unlock',
  summary: "show who holds a replica's lock, and break it when its holder is stuck",
  usage: 'rmm unlock REPLICA -f FILE [--yes] [-o json]',
  details: [
    FILE_HELP,
    YES_HELP,
    OUTPUT_HELP,
    TRUST_HELP,
    '',
    "A lock's holder on the target ends by itself within the replica's heartbeatTimeout once rmm is gone, so",
    'a lock whose holder still hears its rmm belongs to a run that is alive: unlock refuses it. Only a holder',
    'silent for longer than its timeout (a stopped or hung process) is ended, after asking.',
    '',
    'Exit codes: 0 the lock is free (or was broken), 1 it is held by a live run or was not broken, 2 invalid input.',
  ].join('\n'),
  options: { ...FILE_OPTION, ...YES_OPTION, ...TRUST_OPTION },
  positionals: 1,
  async run(ctx) {
    const { replica, pool, host, driver } = await openReplicaTarget(ctx);
    const say = (facts: Record<string, unknown>, text: string): void => {
      if (ctx.output === 'json') writeJson(ctx, { formatVersion: 1, replica: replica.name, host: host.info.host, ...facts });
      else ctx.stdout.write(`${text}\n`);
    };
    try {
      const lock = await inspectLock(host, driver.lockFile);
      if (lock.state === 'free') {
        say({ lock: 'free', ...(lock.lastHolder ? { lastHolder: lock.lastHolder } : {}) }, `replica '${replica.name}' is not locked on ${host.info.host}${lock.lastHolder ? ` (last held by ${lock.lastHolder})` : ''}`);
        return EXIT.ok;
      }
      const heard = Number.isFinite(lock.silentFor) ? `${lock.silentFor} s ago` : 'at an unknown time';
      const facts = { holder: lock.holder, pid: lock.pid, silentForSeconds: lock.silentFor, heartbeatTimeoutSeconds: lock.timeout, process: lock.process };
      if (!isStuck(lock)) {
        throw new RmmError(
          'lock.alive',
          `replica '${replica.name}' is locked on ${host.info.host} by ${lock.holder || 'an unnamed holder'}, which heard its rmm ${heard} (heartbeat timeout ${lock.timeout} s): that run is alive; stop it where it runs, or wait: its lock ends within ${lock.timeout} s of losing rmm`,
        );
      }
      const question = `replica '${replica.name}' is locked on ${host.info.host} by ${lock.holder || 'an unnamed holder'} (pid ${lock.pid}, state ${lock.process || 'unknown'}), silent for ${lock.silentFor} s, past its ${lock.timeout} s timeout. Break the lock?`;
      if (!(await confirm(ctx, question))) {
        say({ lock: 'held', broken: false, ...facts }, 'not broken; nothing was changed');
        return EXIT.error;
      }
      await breakLock(host, driver.lockFile, replica.name, lock);
      say({ lock: 'free', broken: true, ...facts }, `broke the lock of replica '${replica.name}' on ${host.info.host} (held by ${lock.holder || 'an unnamed holder'}); the next apply syncs it`);
      return EXIT.ok;
    } finally {
      await pool.closeAll();
    }
  },
};
