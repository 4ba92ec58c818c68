import { existsSync } from 'node:fs';
import { Cron } from 'croner';
import { parseCidr, parseIp, cidrsOverlap, type Cidr } from '../net/ip.js';
import { showValue, type Diagnostic } from './diagnostics.js';
import { describeLocation, diagnosticAt, type Declared, type Estate } from './estate.js';
import { resolveLocalPath } from './paths.js';
import type { Auth, Exclusions, HookStep, Hooks, IpRemap, PolicySpec, ReplicaDocument, TargetHost } from './schema-types.js';
import { didYouMean } from './suggest.js';
import { parseDuration } from './units.js';

type Path = (string | number)[];
type Report = (path: Path, message: string, severity?: Diagnostic['severity']) => void;

/** Checks that need more than one field or document: references, networks, conflicts, schedules. */
export function checkEstate(estate: Estate): Diagnostic[] {
  const out: Diagnostic[] = [];
  const reporter =
    (where: Declared<unknown>): Report =>
    (path, message, severity = 'error') =>
      out.push(diagnosticAt(where, path, message, severity));

  if (estate.defaults) {
    const report = reporter(estate.defaults);
    const spec = estate.defaults.doc.spec;
    checkConnection(spec.connection?.auth, ['spec', 'connection', 'auth'], report);
    checkDuration(spec.connection?.connectTimeout, ['spec', 'connection', 'connectTimeout'], report);
    checkExclusions(spec.exclude, ['spec', 'exclude'], report);
    checkHooks(spec.hooks, ['spec', 'hooks'], estate.defaults, report);
    if (spec.policy !== undefined && dangling(estate, 'Policy', spec.policy, estate.policies))
      report(['spec', 'policy'], `no Policy named '${spec.policy}'${didYouMean(spec.policy, namesOf(estate, 'Policy', estate.policies))}`);
  }
  for (const origin of estate.origins.values()) {
    const report = reporter(origin);
    const spec = origin.doc.spec;
    checkConnection(spec.connection?.auth, ['spec', 'connection', 'auth'], report);
    checkDuration(spec.connection?.connectTimeout, ['spec', 'connection', 'connectTimeout'], report);
    checkExclusions(spec.exclude, ['spec', 'exclude'], report);
  }
  for (const env of estate.environments.values()) {
    const report = reporter(env);
    const spec = env.doc.spec;
    const hostNames = new Map<string, number>();
    spec.hosts.forEach((host, i) => {
      const at: Path = ['spec', 'hosts', i];
      const first = hostNames.get(host.name);
      if (first !== undefined) report([...at, 'name'], `duplicate host name '${host.name}'; it is also host ${first}`);
      else hostNames.set(host.name, i);
      checkConnection(host.connection?.auth, [...at, 'connection', 'auth'], report);
      checkDuration(host.connection?.connectTimeout, [...at, 'connection', 'connectTimeout'], report);
      if (host.path === '/') report([...at, 'path'], "'/' would put replicas over the landing host's own root; use a folder such as /srv/replicas");
      if ((spec.targetKind ?? 'directory') === 'disks' && host.path !== undefined)
        report([...at, 'path'], 'path is for directory targets; this environment has targetKind: disks');
    });
    spec.network?.subnets?.forEach((s, i) => checkCidr(s, ['spec', 'network', 'subnets', i], report));
    checkIp(spec.network?.gateway, ['spec', 'network', 'gateway'], report);
    spec.network?.dns?.forEach((d, i) => checkIp(d, ['spec', 'network', 'dns', i], report));
    checkIpRemap(spec.ipRemap, ['spec', 'ipRemap'], report);
    if (spec.ipRemap?.hostname !== undefined)
      report(['spec', 'ipRemap', 'hostname'], 'a hostname belongs to one replica; set it in the Replica ipRemap');
  }
  for (const policy of estate.policies.values()) checkPolicy(policy.doc.spec, reporter(policy));
  checkReplicas(estate, reporter);
  return out;
}

/** A reference is dangling when nothing of that kind and name was written, valid or not. */
function dangling(estate: Estate, kind: string, name: string, known: ReadonlyMap<string, unknown>): boolean {
  return !known.has(name) && !estate.invalidNames.has(`${kind}/${name}`);
}

/** Names a misspelt reference could have meant: valid documents of that kind and invalid ones too. */
function namesOf(estate: Estate, kind: string, known: ReadonlyMap<string, unknown>): string[] {
  const invalid = [...estate.invalidNames].filter((n) => n.startsWith(`${kind}/`)).map((n) => n.slice(kind.length + 1));
  return [...known.keys(), ...invalid];
}

function checkReplicas(estate: Estate, reporter: (where: Declared<unknown>) => Report): void {
  const places = new Map<string, { where: Declared<ReplicaDocument>; path: Path; place: string }[]>();
  for (const replica of estate.replicas.values()) {
    const report = reporter(replica);
    const spec = replica.doc.spec;
    if (dangling(estate, 'Origin', spec.origin, estate.origins))
      report(['spec', 'origin'], `no Origin named '${spec.origin}'${didYouMean(spec.origin, namesOf(estate, 'Origin', estate.origins))}`);
    if (spec.policy !== undefined && dangling(estate, 'Policy', spec.policy, estate.policies))
      report(['spec', 'policy'], `no Policy named '${spec.policy}'${didYouMean(spec.policy, namesOf(estate, 'Policy', estate.policies))}`);
    checkExclusions(spec.exclude, ['spec', 'exclude'], report);
    checkHooks(spec.hooks, ['spec', 'hooks'], replica, report);
    checkIpRemap(spec.ipRemap, ['spec', 'ipRemap'], report);

    const env = estate.environments.get(spec.environment);
    if (!env) {
      if (dangling(estate, 'Environment', spec.environment, estate.environments))
        report(['spec', 'environment'], `no Environment named '${spec.environment}'${didYouMean(spec.environment, namesOf(estate, 'Environment', estate.environments))}`);
      continue;
    }
    const hosts = env.doc.spec.hosts;
    let host: TargetHost | undefined;
    if (spec.host !== undefined) {
      host = hosts.find((h) => h.name === spec.host);
      if (!host)
        report(['spec', 'host'], `environment '${spec.environment}' has no host '${spec.host}'${didYouMean(spec.host, hosts.map((h) => h.name))}`);
    } else if (hosts.length === 1) {
      host = hosts[0];
    } else {
      report(['spec'], `missing required field 'host': environment '${spec.environment}' has ${hosts.length} hosts (${hosts.map((h) => h.name).join(', ')})`);
    }
    if (!host) continue;

    const hostKey = `${host.address}:${host.connection?.port ?? estate.defaults?.doc.spec.connection?.port ?? 22}`;
    const kind = env.doc.spec.targetKind ?? 'directory';
    if (kind === 'directory') {
      if (spec.disks) report(['spec', 'disks'], `disks is for disks targets; environment '${env.doc.metadata.name}' has targetKind: directory`);
      const path = spec.path ?? (host.path !== undefined ? `${host.path.replace(/\/+$/, '')}/${replica.doc.metadata.name}` : undefined);
      if (path === undefined) {
        report(['spec'], `missing required field 'path': landing host '${host.name}' has no path for replicas`);
        continue;
      }
      if (normalize(path) === '/') {
        report(['spec', 'path'], "'/' would put the replica over the landing host's own root");
        continue;
      }
      addPlace(places, hostKey, { where: replica, path: spec.path ? ['spec', 'path'] : ['spec', 'environment'], place: normalize(path) });
    } else {
      if (spec.path !== undefined) report(['spec', 'path'], `path is for directory targets; environment '${env.doc.metadata.name}' has targetKind: disks`);
      if (!spec.disks) {
        report(['spec'], "missing required field 'disks': a disks target needs to know which disk receives which origin disk");
        continue;
      }
      spec.disks.forEach((map, i) => {
        if (host.disks && !host.disks.includes(map.target))
          report(['spec', 'disks', i, 'target'], `landing host '${host.name}' lists no disk '${map.target}'${didYouMean(map.target, host.disks)}`);
        addPlace(places, hostKey, { where: replica, path: ['spec', 'disks', i, 'target'], place: `disk:${map.target}` });
      });
    }
  }
  reportConflicts(places, reporter);
}

function addPlace(
  places: Map<string, { where: Declared<ReplicaDocument>; path: Path; place: string }[]>,
  hostKey: string,
  entry: { where: Declared<ReplicaDocument>; path: Path; place: string },
): void {
  const list = places.get(hostKey) ?? [];
  list.push(entry);
  places.set(hostKey, list);
}

/** Two replicas must never write to the same folder (or one inside the other) or the same disk of one host. */
function reportConflicts(
  places: Map<string, { where: Declared<ReplicaDocument>; path: Path; place: string }[]>,
  reporter: (where: Declared<unknown>) => Report,
): void {
  for (const [hostKey, list] of places) {
    // Sorted, a folder sits right before the folders inside it, so neighbours are enough to find overlaps.
    const sorted = [...list].sort((a, b) => (a.place < b.place ? -1 : a.place > b.place ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1]!;
      const b = sorted[i]!;
      const overlap = a.place === b.place || (!a.place.startsWith('disk:') && b.place.startsWith(`${a.place}/`));
      if (!overlap || a.where === b.where) continue;
      const [first, second] = order(a, b);
      const what = second.place.startsWith('disk:') ? `disk ${second.place.slice(5)}` : second.place;
      reporter(second.where)(
        second.path,
        `replica '${second.where.doc.metadata.name}' writes to ${what} on ${hostKey}, where replica '${first.where.doc.metadata.name}' (${describeLocation(first.where)}) also writes`,
      );
    }
  }
}

/** The one written first keeps its place; the error goes to the later one. */
function order<T extends { where: Declared<unknown> }>(a: T, b: T): [T, T] {
  const key = (x: T): [string, number] => [x.where.parsed.source.name, x.where.parsed.index];
  const [fa, ia] = key(a);
  const [fb, ib] = key(b);
  return fa < fb || (fa === fb && ia <= ib) ? [a, b] : [b, a];
}

function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return `/${parts.join('/')}`;
}

function checkConnection(auth: Auth | undefined, at: Path, report: Report): void {
  if (!auth) return;
  const chosen = (['keyFile', 'keyEnv', 'agent'] as const).filter((k) => auth[k] !== undefined);
  if (chosen.length === 0) report(at, 'auth needs one of keyFile, keyEnv or agent');
  if (chosen.length > 1) report([...at, chosen[1]!], `auth takes one of keyFile, keyEnv or agent, not both ${chosen.join(' and ')}`);
  if (auth.agent !== undefined && auth.passphraseEnv !== undefined)
    report([...at, 'passphraseEnv'], 'passphraseEnv is for key files; an agent holds unlocked keys');
}

function checkDuration(value: string | undefined, at: Path, report: Report): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) return undefined; // the schema already reported the shape
  if (ms === 0) report(at, `must be longer than ${value}`);
  return ms;
}

function checkCidr(value: string | undefined, at: Path, report: Report): Cidr | undefined {
  if (value === undefined) return undefined;
  const { cidr, problem } = parseCidr(value);
  if (problem) report(at, `${showValue(value)} is not a valid network: ${problem}`);
  return cidr;
}

function checkIp(value: string | undefined, at: Path, report: Report): void {
  if (value !== undefined && !parseIp(value)) report(at, `${showValue(value)} is not a valid IP address`);
}

function checkIpRemap(remap: IpRemap | undefined, at: Path, report: Report): void {
  if (!remap) return;
  const froms: { cidr: Cidr; index: number }[] = [];
  remap.networks?.forEach((pair, i) => {
    const from = checkCidr(pair.from, [...at, 'networks', i, 'from'], report);
    const to = checkCidr(pair.to, [...at, 'networks', i, 'to'], report);
    if (!from || !to) return;
    if (from.family !== to.family) report([...at, 'networks', i, 'to'], `maps an IPv${from.family} network to an IPv${to.family} network`);
    else if (from.prefix !== to.prefix)
      report([...at, 'networks', i, 'to'], `prefix /${to.prefix} differs from the /${from.prefix} it replaces; a network remap keeps each host part, so both sides need the same prefix length`);
    const clash = froms.find((f) => cidrsOverlap(f.cidr, from));
    if (clash) report([...at, 'networks', i, 'from'], `${pair.from} overlaps networks[${clash.index}].from; an address must match one rule only`);
    froms.push({ cidr: from, index: i });
  });
  const seen = new Map<string, number>();
  remap.addresses?.forEach((pair, i) => {
    const from = parseIp(pair.from);
    const to = parseIp(pair.to);
    if (!from) report([...at, 'addresses', i, 'from'], `${showValue(pair.from)} is not a valid IP address`);
    if (!to) report([...at, 'addresses', i, 'to'], `${showValue(pair.to)} is not a valid IP address`);
    if (from && to && from.family !== to.family) report([...at, 'addresses', i, 'to'], `maps an IPv${from.family} address to an IPv${to.family} address`);
    if (from) {
      const key = `${from.family}:${from.value}`;
      const first = seen.get(key);
      if (first !== undefined) report([...at, 'addresses', i, 'from'], `${pair.from} is already remapped by addresses[${first}]`);
      else seen.set(key, i);
    }
  });
  checkIp(remap.gateway, [...at, 'gateway'], report);
  remap.dns?.forEach((d, i) => checkIp(d, [...at, 'dns', i], report));
}

/** Patterns that would exclude the root filesystem, and with it the whole server. */
const WHOLE_ROOT = new Set(['/', '/*', '/**', '/***', '*', '**', '***']);

function checkExclusions(exclude: Exclusions | undefined, at: Path, report: Report): void {
  exclude?.mounts?.forEach((m, i) => {
    if (m === '/' || m === '/**' || m === '**') report([...at, 'mounts', i], `excludes the root filesystem ${showValue(m)}; a replica without / is not a server`);
  });
  exclude?.paths?.forEach((p, i) => {
    if (WHOLE_ROOT.has(p)) report([...at, 'paths', i], `${showValue(p)} excludes every file of the root filesystem`);
  });
}

function checkHooks(hooks: Hooks | undefined, at: Path, where: Declared<unknown>, report: Report): void {
  if (!hooks) return;
  for (const [phase, list] of Object.entries(hooks) as [string, HookStep[] | undefined][]) {
    list?.forEach((hook, i) => {
      const here: Path = [...at, phase, i];
      if ((hook.script === undefined) === (hook.command === undefined)) {
        report(here, 'a hook needs exactly one of script or command');
        return;
      }
      checkDuration(hook.timeout, [...here, 'timeout'], report);
      if (hook.script !== undefined) {
        const file = resolveLocalPath(hook.script, where.parsed.source.baseDir);
        if (!existsSync(file)) report([...here, 'script'], `the script ${showValue(hook.script)} does not exist (looked for ${file})`);
      }
    });
  }
}

function checkPolicy(spec: PolicySpec, report: Report): void {
  const schedule = spec.schedule;
  let intervalMs: number | undefined;
  if (schedule) {
    if ((schedule.interval === undefined) === (schedule.cron === undefined))
      report(['spec', 'schedule'], 'a schedule needs exactly one of interval or cron');
    intervalMs = checkDuration(schedule.interval, ['spec', 'schedule', 'interval'], report);
    if (schedule.timezone !== undefined && !validTimezone(schedule.timezone))
      report(['spec', 'schedule', 'timezone'], `${showValue(schedule.timezone)} is not an IANA timezone (such as UTC or Europe/Paris)`);
    if (schedule.cron !== undefined) {
      try {
        new Cron(schedule.cron, { paused: true, timezone: validTimezone(schedule.timezone ?? 'UTC') ? schedule.timezone : undefined });
      } catch (err) {
        report(['spec', 'schedule', 'cron'], `${showValue(schedule.cron)} is not a valid cron expression: ${(err as Error).message}`);
      }
    }
  }
  const rpo = checkDuration(spec.rpo, ['spec', 'rpo'], report);
  if (rpo !== undefined && intervalMs !== undefined && rpo < intervalMs)
    report(['spec', 'rpo'], `the RPO ${spec.rpo} is shorter than the schedule interval ${schedule?.interval}, so it will be missed between syncs`, 'warning');
  checkDuration(spec.retention?.maxAge, ['spec', 'retention', 'maxAge'], report);
  if (spec.snapshot?.provider === 'none')
    report(['spec', 'snapshot', 'provider'], 'provider none copies the live filesystem: replicas are never marked consistent', 'warning');
}

function validTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
