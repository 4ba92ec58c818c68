import { hostname } from 'node:os';
import { lockReplica } from '../../apply/lock.js';
import { endpointSession } from '../../apply/sessions.js';
import { RmmError } from '../../errors.js';
import { discoverOrigin } from '../../observe/origin.js';
import { parseRecord, RecordError } from '../../record/record.js';
import { originOfDamaged, rebuildRecord } from '../../record/rebuild.js';
import { EXIT, FILE_HELP, FILE_OPTION, OUTPUT_HELP, writeJson, type Command } from '../command.js';
import { confirm, YES_HELP, YES_OPTION } from '../confirm.js';
import { openReplicaTarget, TRUST_HELP, TRUST_OPTION } from './replica-target.js';

export const repairCommand: Command = {
  name: 'repair',
  summary: "rebuild a damaged replica record from the recovery points on the target",
  usage: 'rmm repair REPLICA -f FILE [--yes] [-o json]',
  details: [
    FILE_HELP,
    YES_HELP,
    OUTPUT_HELP,
    TRUST_HELP,
    '',
    "When a replica's record is damaged (plan and status say so), rmm neither syncs nor prunes it. repair",
    "lists the recovery points' folders on the target, shows the record it would write from them, and after",
    'asking keeps the damaged record aside (record.json.damaged-TIME) and writes the new one. The rebuilt',
    'points carry no snapshot or manifest facts: the next sync copies a delta against the newest one.',
    '',
    'Exit codes: 0 repaired or nothing to repair, 1 not repaired, 2 invalid input.',
  ].join('\n'),
  options: { ...FILE_OPTION, ...YES_OPTION, ...TRUST_OPTION },
  positionals: 1,
  async run(ctx) {
    const { replica, pool, host, driver, trustNewHostKeys } = await openReplicaTarget(ctx);
    const say = (facts: Record<string, unknown>, text: string): void => {
      if (ctx.output === 'json') writeJson(ctx, { formatVersion: 1, replica: replica.name, host: host.info.host, ...facts });
      else ctx.stdout.write(`${text}\n`);
    };
    const now = new Date();
    const runId = `repair-${now.toISOString().replace(/[-:.]/g, '')}`;
    const lock = await lockReplica(host, driver.lockFile, replica.name, `rmm repair pid ${process.pid} on ${hostname()} since ${now.toISOString()}`, replica.target.endpoint.heartbeatTimeoutMs).catch(async (err: unknown) => {
      await pool.closeAll();
      throw err;
    });
    try {
      const inventory = await driver.inventory();
      const where = `${host.info.host}:${replica.target.path ?? ''}`;
      if (inventory.recordText !== undefined) {
        try {
          parseRecord(inventory.recordText, where);
          say({ repaired: false, reason: 'record is not damaged' }, `the record of replica '${replica.name}' on ${host.info.host} is not damaged; nothing to repair`);
          return EXIT.ok;
        } catch (err) {
          if (!(err instanceof RecordError) || err.code !== 'record.damaged') throw err;
          if (ctx.output === 'text') ctx.stdout.write(`${err.message}\n`);
        }
      }
      const origin = originOfDamaged(inventory.recordText) ?? (await askOrigin());
      const rebuilt = rebuildRecord({ replica: replica.name, origin, inventory, now, runId });
      const points = rebuilt.record?.points.map((p) => p.id) ?? [];
      if (points.length === 0 && inventory.recordText === undefined) {
        say({ repaired: false, reason: 'no record and no recovery point' }, `replica '${replica.name}' on ${host.info.host} has no record and no recovery point; the next apply makes a first copy`);
        return EXIT.ok;
      }
      const plan = [
        points.length > 0 ? `write a record of ${points.length} recovery point(s): ${points.join(', ')} (newest is current)` : 'remove the record (no recovery point is on the target; the next apply makes a first copy)',
        ...(rebuilt.repointCurrent ? [`point current at points/${rebuilt.repointCurrent}`] : []),
        ...(rebuilt.unused.length > 0 ? [`leave alone points newer than current: ${rebuilt.unused.join(', ')}`] : []),
        ...(rebuilt.ignored.length > 0 ? [`leave alone folders named like points whose time is impossible or in the future: ${rebuilt.ignored.join(', ')}`] : []),
        ...(inventory.recordText !== undefined ? ['keep the damaged record beside it as record.json.damaged-TIME'] : []),
      ];
      if (ctx.output === 'text') ctx.stdout.write(`repair of replica '${replica.name}' on ${host.info.host} would:\n${plan.map((l) => `  - ${l}\n`).join('')}`);
      if (!(await confirm(ctx, 'Repair the record?'))) {
        say({ repaired: false, reason: 'declined', plan }, 'not repaired; nothing was changed');
        return EXIT.error;
      }
      lock.assertHeld();
      const kept = await driver.replaceRecord(rebuilt.record, rebuilt.repointCurrent, runId.slice('repair-'.length));
      say({ repaired: true, points, ...(rebuilt.repointCurrent ? { current: rebuilt.repointCurrent } : {}), damagedRecordKeptAt: kept }, `repaired: ${points.length} recovery point(s) recorded; the damaged record is kept at ${kept}`);
      return EXIT.ok;
    } finally {
      await lock.release().catch(() => {});
      await pool.closeAll();
    }

    async function askOrigin() {
      try {
        const session = await endpointSession(pool, replica.origin.endpoint, trustNewHostKeys);
        const facts = await discoverOrigin(session, replica.origin.root);
        return { name: replica.origin.name, hostname: facts.hostname, machineId: facts.machineId };
      } catch (err) {
        throw new RmmError('repair.origin_unknown', `the damaged record does not say which server replica '${replica.name}' copies, and its origin ${replica.origin.endpoint.address} did not answer (${(err as Error).message}); try again when the origin is reachable`);
      }
    }
  },
};
