import { statSync } from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { cidrsOverlap, ipProblem, parseCidr, parseIp, type Cidr, type IpAddress } from '../net/ip.js';
import { showValue, type Diagnostic } from './diagnostics.js';
import { describeLocation, diagnosticAt, type Declared, type Estate } from './estate.js';
import { landingFolderProblem, normalizeFolder, resolveLocalPath } from './paths.js';
import type {
  Auth,
  EnvironmentDocument,
  EnvironmentSpec,
  Exclusions,
  Fixups,
  HookStep,
  Hooks,
  IpRemap,
  PolicySpec,
  ReplicaDocument,
  ReplicaSpec,
  TargetHost,
} from './schema-types.js';
import { closest } from './suggest.js';
import { parseDuration } from './units.js';

type Path = (string | number)[];
interface ReportOptions {
  readonly severity?: Diagnostic['severity'];
  /** Point at the key: for fields that should not be there, or that miss something inside. */
  readonly atKey?: boolean;
}
type Report = (path: Path, message: string, options?: ReportOptions) => void;
type Reporter = (where: Declared<unknown>) => Report;

/** Checks that need more than one field or document: references, networks, conflicts, schedules. */
export function checkEstate(estate: Estate): Diagnostic[] {
  const out: Diagnostic[] = [];
  const reporter: Reporter = (where) => (at, message, options = {}) =>
    out.push(diagnosticAt(where, at, message, options.severity ?? 'error', options.atKey ?? false));

  if (estate.defaults) checkDefaults(estate, reporter(estate.defaults));
  for (const origin of estate.origins.values()) {
    const report = reporter(origin);
    const spec = origin.doc.spec;
    checkConnection(spec.connection, ['spec', 'connection'], report);
    checkExclusions(spec.exclude, ['spec', 'exclude'], report);
  }
  for (const env of estate.environments.values()) checkEnvironment(env.doc.spec, reporter(env));
  for (const policy of estate.policies.values()) checkPolicy(policy.doc.spec, reporter(policy));
  checkReplicas(estate, reporter);
  return out;
}

function checkDefaults(estate: Estate, report: Report): void {
  const defaults = estate.defaults!;
  const spec = defaults.doc.spec;
  checkConnection(spec.connection, ['spec', 'connection'], report);
  checkExclusions(spec.exclude, ['spec', 'exclude'], report);
  checkHooks(spec.hooks, ['spec', 'hooks'], defaults, report);
  if (spec.policy !== undefined && dangling(estate, 'Policy', spec.policy, estate.policies))
    report(['spec', 'policy'], noSuch(estate, 'Policy', spec.policy, estate.policies));
}

function checkEnvironment(spec: EnvironmentSpec, report: Report): void {
  const targetKind = spec.targetKind ?? 'directory';
  const hostNames = new Map<string, number>();
  spec.hosts.forEach((host, i) => {
    const at: Path = ['spec', 'hosts', i];
    const first = hostNames.get(host.name);
    if (first !== undefined) report([...at, 'name'], `duplicate host name '${host.name}'; hosts[${first}] has it already`);
    else hostNames.set(host.name, i);
    checkConnection(host.connection, [...at, 'connection'], report);
    const pathProblem = host.path !== undefined ? landingFolderProblem(host.path, 'replicas') : undefined;
    if (pathProblem) report([...at, 'path'], pathProblem);
    if (targetKind === 'disks' && host.path !== undefined)
      report([...at, 'path'], 'path is for directory targets; this environment has targetKind: disks', { atKey: true });
    if (targetKind === 'directory' && host.disks !== undefined)
      report([...at, 'disks'], 'disks is for disks targets; this environment has targetKind: directory', { atKey: true });
  });
  spec.network?.subnets?.forEach((s, i) => checkCidr(s, ['spec', 'network', 'subnets', i], report));
  checkIp(spec.network?.gateway, ['spec', 'network', 'gateway'], report);
  spec.network?.dns?.forEach((d, i) => checkIp(d, ['spec', 'network', 'dns', i], report));
  checkIpRemap(spec.ipRemap, ['spec', 'ipRemap'], report);
  for (const chain of remapChains(remapRules(spec.ipRemap, 'own'))) report([...chain.at, 'to'], chainMessage(chain));
  if (spec.ipRemap?.hostname !== undefined)
    report(['spec', 'ipRemap', 'hostname'], 'a hostname belongs to one replica; set it in the Replica ipRemap', { atKey: true });
}

/** A reference is dangling when nothing of that kind and name was written, valid or not. */
function dangling(estate: Estate, kind: string, name: string, known: ReadonlyMap<string, unknown>): boolean {
  return !known.has(name) && !estate.invalidNames.has(`${kind}/${name}`);
}

/** Names a reference could have meant: valid documents of that kind and invalid ones too. */
function namesOf(estate: Estate, kind: string, known: ReadonlyMap<string, unknown>): string[] {
  const invalid = [...estate.invalidNames].filter((n) => n.startsWith(`${kind}/`)).map((n) => n.slice(kind.length + 1));
  return [...known.keys(), ...invalid];
}

function noSuch(estate: Estate, kind: string, name: string, known: ReadonlyMap<string, unknown>): string {
  return `no ${kind} named '${name}'${hintOrList(name, namesOf(estate, kind, known), `no ${kind} is defined`)}`;
}

/** A did-you-mean when one name is close, else the names themselves when they are few. */
function hintOrList(word: string, candidates: readonly string[], none: string): string {
  const hint = closest(word, candidates);
  if (hint) return ` (did you mean '${hint}'?)`;
  if (candidates.length === 0) return `; ${none}`;
  return candidates.length <= 8 ? ` (defined: ${candidates.join(', ')})` : '';
}

/** Where one replica writes on a landing host: a folder, or one of the host's disks. */
interface Place {
  readonly replica: Declared<ReplicaDocument>;
  /** Position of the replica among all replicas as written: the first written keeps its place. */
  readonly order: number;
  readonly path: Path;
  readonly hostKey: string;
  readonly hostName: string;
  readonly folder?: string;
  readonly derived?: boolean;
  readonly disk?: string;
}

function checkReplicas(estate: Estate, reporter: Reporter): void {
  const places: Place[] = [];
  let order = 0;
  for (const replica of estate.replicas.values()) {
    const report = reporter(replica);
    const spec = replica.doc.spec;
    if (dangling(estate, 'Origin', spec.origin, estate.origins)) report(['spec', 'origin'], noSuch(estate, 'Origin', spec.origin, estate.origins));
    if (spec.policy !== undefined && dangling(estate, 'Policy', spec.policy, estate.policies))
      report(['spec', 'policy'], noSuch(estate, 'Policy', spec.policy, estate.policies));
    checkExclusions(spec.exclude, ['spec', 'exclude'], report);
    checkHooks(spec.hooks, ['spec', 'hooks'], replica, report);
    checkIpRemap(spec.ipRemap, ['spec', 'ipRemap'], report);
    const env = estate.environments.get(spec.environment);
    checkReplicaRemapChains(spec, env, report);
    checkFixups(spec.fixups, env?.doc.spec.targetKind ?? (env ? 'directory' : undefined), report);
    places.push(...targetPlaces(estate, replica, order++, report));
  }
  reportConflicts(places, reporter);
}

/** Checks the replica's target against its environment; returns where it writes, if that is known. */
function targetPlaces(estate: Estate, replica: Declared<ReplicaDocument>, order: number, report: Report): Place[] {
  const spec = replica.doc.spec;
  const env = estate.environments.get(spec.environment);
  if (!env) {
    if (dangling(estate, 'Environment', spec.environment, estate.environments))
      report(['spec', 'environment'], noSuch(estate, 'Environment', spec.environment, estate.environments));
    return [];
  }
  const host = landingHost(spec, env.doc.metadata.name, env.doc.spec.hosts, report);
  if (!host) return [];
  const port = host.connection?.port ?? estate.defaults?.doc.spec.connection?.port ?? 22;
  const base = { replica, order, hostKey: `${host.address}:${port}`, hostName: host.name };
  const envName = env.doc.metadata.name;
  if ((env.doc.spec.targetKind ?? 'directory') === 'directory') {
    if (spec.disks) report(['spec', 'disks'], `disks is for disks targets; environment '${envName}' has targetKind: directory`, { atKey: true });
    const folder = spec.path ?? (host.path !== undefined ? `${host.path.replace(/\/+$/, '')}/${replica.doc.metadata.name}` : undefined);
    if (folder === undefined) {
      report(['spec'], `missing required field 'path': landing host '${host.name}' has no path for replicas either`, { atKey: true });
      return [];
    }
    const derived = spec.path === undefined;
    // A host path that is refused was reported with its Environment; its replicas do not repeat it.
    if (derived && landingFolderProblem(host.path!, 'replicas')) return [];
    const at: Path = derived ? ['spec', 'environment'] : ['spec', 'path'];
    const problem = landingFolderProblem(folder, 'the replica');
    if (problem) {
      report(at, derived ? `${problem} (the host's path plus the replica's name)` : problem);
      return [];
    }
    return [{ ...base, path: at, folder: normalizeFolder(folder), derived }];
  }
  if (spec.path !== undefined) report(['spec', 'path'], `path is for directory targets; environment '${envName}' has targetKind: disks`, { atKey: true });
  if (!spec.disks) {
    report(['spec'], "missing required field 'disks': a disks target needs to know which disk receives which origin disk", { atKey: true });
    return [];
  }
  const used = new Map<string, number>();
  const out: Place[] = [];
  spec.disks.forEach((map, i) => {
    const at: Path = ['spec', 'disks', i, 'target'];
    if (host.disks && !host.disks.includes(map.target))
      report(at, `landing host '${host.name}' lists no disk '${map.target}' (its disks: ${host.disks.join(', ')})`);
    const first = used.get(map.target);
    if (first !== undefined) report(at, `'${map.target}' is already the target of disks[${first}]`);
    else {
      used.set(map.target, i);
      out.push({ ...base, path: at, disk: map.target });
    }
  });
  return out;
}

function landingHost(spec: ReplicaSpec, envName: string, hosts: readonly TargetHost[], report: Report): TargetHost | undefined {
  if (spec.host !== undefined) {
    const host = hosts.find((h) => h.name === spec.host);
    const names = hosts.map((h) => h.name);
    if (!host) report(['spec', 'host'], `environment '${envName}' has no host '${spec.host}'${hintOrList(spec.host, names, 'it has no hosts')}`);
    return host;
  }
  if (hosts.length === 1) return hosts[0];
  const names = hosts.map((h) => h.name).join(', ');
  report(['spec'], `missing required field 'host': environment '${envName}' has ${hosts.length} landing hosts (${names})`, { atKey: true });
  return undefined;
}

/**
 * Two replicas must never write to the same folder of one host, nor one inside the other's, nor to the
 * same disk. The replica written later gets the error; the first written keeps its place.
 */
function reportConflicts(places: readonly Place[], reporter: Reporter): void {
  const byHost = new Map<string, Place[]>();
  for (const p of places) {
    const list = byHost.get(p.hostKey) ?? [];
    list.push(p);
    byHost.set(p.hostKey, list);
  }
  for (const list of byHost.values()) {
    for (const [a, b] of [...folderClashes(list.filter((p) => p.folder !== undefined)), ...diskClashes(list.filter((p) => p.disk !== undefined))]) {
      const [first, later] = a.order < b.order ? [a, b] : [b, a];
      reporter(later.replica)(later.path, clashMessage(later, first));
    }
  }
}

/**
 * Sorted by path segments, the folders inside a folder come right after it; a stack of the open
 * folders finds each folder's nearest enclosing one in O(n log n) overall.
 */
function folderClashes(list: readonly Place[]): [Place, Place][] {
  const segmentsOf = new Map(list.map((p) => [p, p.folder!.split('/').filter(Boolean)]));
  const sorted = [...list].sort((a, b) => compareSegments(segmentsOf.get(a)!, segmentsOf.get(b)!) || a.order - b.order);
  const open: Place[] = [];
  const clashes: [Place, Place][] = [];
  for (const place of sorted) {
    const segments = segmentsOf.get(place)!;
    while (open.length > 0 && !startsWith(segments, segmentsOf.get(open[open.length - 1]!)!)) open.pop();
    const outer = open[open.length - 1];
    if (outer) clashes.push([outer, place]);
    // Of several replicas on one folder, each later one clashes with the first, not with its neighbour.
    if (!outer || outer.folder !== place.folder) open.push(place);
  }
  return clashes;
}

function diskClashes(list: readonly Place[]): [Place, Place][] {
  const owners = new Map<string, Place>();
  const clashes: [Place, Place][] = [];
  for (const place of [...list].sort((a, b) => a.order - b.order)) {
    const owner = owners.get(place.disk!);
    if (owner) clashes.push([owner, place]);
    else owners.set(place.disk!, place);
  }
  return clashes;
}

function compareSegments(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

function startsWith(segments: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= segments.length && prefix.every((s, i) => segments[i] === s);
}

function clashMessage(later: Place, first: Place): string {
  const other = `replica '${first.replica.doc.metadata.name}' (${describeLocation(first.replica)})`;
  const host = `${later.hostKey} (landing host ${later.hostName})`;
  const name = `replica '${later.replica.doc.metadata.name}'`;
  if (later.disk !== undefined) return `${name} writes to disk ${later.disk} of ${host}, as does ${other}`;
  const folder = `${later.folder}${later.derived ? " (the host's path plus the replica's name)" : ''}`;
  if (later.folder === first.folder) return `${name} writes to ${folder} on ${host}, the folder of ${other}`;
  if (later.folder!.startsWith(`${first.folder}/`))
    return `${name} writes to ${folder} on ${host}, inside ${first.folder}, the folder of ${other}`;
  return `${name} writes to ${folder} on ${host}, which holds ${first.folder}, the folder of ${other}`;
}

function checkConnection(connection: { auth?: Auth; connectTimeout?: string; heartbeatTimeout?: string } | undefined, at: Path, report: Report): void {
  checkDuration(connection?.connectTimeout, [...at, 'connectTimeout'], report);
  const heartbeat = checkDuration(connection?.heartbeatTimeout, [...at, 'heartbeatTimeout'], report);
  // rmm sends a heartbeat every 5 s: a shorter timeout would let go of a freeze or a lock rmm still needs.
  if (heartbeat !== undefined && heartbeat < 10_000) report([...at, 'heartbeatTimeout'], `${connection!.heartbeatTimeout} is too short: rmm sends a heartbeat every 5s, so at least 10s`);
  const auth = connection?.auth;
  if (!auth) return;
  const authAt = [...at, 'auth'];
  const chosen = (['keyFile', 'keyEnv', 'agent'] as const).filter((k) => auth[k] !== undefined);
  if (chosen.length === 0) report(authAt, 'auth needs one of keyFile, keyEnv or agent', { atKey: true });
  if (chosen.length > 1)
    report([...authAt, chosen[1]!], `auth takes one of keyFile, keyEnv or agent, not ${chosen.join(' and ')} together`, { atKey: true });
  if (auth.agent !== undefined && auth.passphraseEnv !== undefined)
    report([...authAt, 'passphraseEnv'], 'passphraseEnv is for key files; an agent holds unlocked keys', { atKey: true });
}

function checkDuration(value: string | undefined, at: Path, report: Report): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) return undefined; // the schema already reported the shape
  if (ms === 0) report(at, `must be longer than zero, not ${showValue(value)}`);
  return ms;
}

function checkCidr(value: string | undefined, at: Path, report: Report): Cidr | undefined {
  if (value === undefined) return undefined;
  const { cidr, problem } = parseCidr(value);
  if (problem) report(at, `${showValue(value)} is not a valid network: ${problem}`);
  return cidr;
}

/** Returns the address when it is one, after reporting why not otherwise. */
function checkIp(value: string | undefined, at: Path, report: Report): ReturnType<typeof parseIp> {
  if (value === undefined) return undefined;
  const problem = ipProblem(value);
  if (problem) report(at, `${showValue(value)} is not an IPv4 or IPv6 address (${problem})`);
  return parseIp(value);
}

function checkIpRemap(remap: IpRemap | undefined, at: Path, report: Report): void {
  if (!remap) return;
  const froms: { cidr: Cidr; index: number }[] = [];
  remap.networks?.forEach((pair, i) => {
    const here: Path = [...at, 'networks', i];
    const from = checkCidr(pair.from, [...here, 'from'], report);
    const to = checkCidr(pair.to, [...here, 'to'], report);
    if (!from || !to) return;
    if (from.family !== to.family) report([...here, 'to'], `maps an IPv${from.family} network to an IPv${to.family} network`);
    else if (from.prefix !== to.prefix)
      report([...here, 'to'], `prefix /${to.prefix} differs from the /${from.prefix} it replaces; a network remap keeps each host part, so both sides need the same prefix length`);
    const clash = froms.find((f) => cidrsOverlap(f.cidr, from));
    if (clash)
      report([...here, 'from'], `${showValue(pair.from)} overlaps networks[${clash.index}].from (${showValue(remap.networks![clash.index]!.from)}); an address must match one rule only`);
    froms.push({ cidr: from, index: i });
  });
  const seen = new Map<string, number>();
  remap.addresses?.forEach((pair, i) => {
    const here: Path = [...at, 'addresses', i];
    const from = checkIp(pair.from, [...here, 'from'], report);
    const to = checkIp(pair.to, [...here, 'to'], report);
    if (from && to && from.family !== to.family) report([...here, 'to'], `maps an IPv${from.family} address to an IPv${to.family} address`);
    if (!from) return;
    const key = `${from.family}:${from.value}`;
    const first = seen.get(key);
    if (first !== undefined) report([...here, 'from'], `${showValue(pair.from)} is already remapped by addresses[${first}]`);
    else seen.set(key, i);
  });
  checkIp(remap.gateway, [...at, 'gateway'], report);
  remap.dns?.forEach((d, i) => checkIp(d, [...at, 'dns', i], report));
}

/** One ipRemap rule, parsed, with where it was written: the document being checked (`own`) or its environment. */
interface RemapRule {
  readonly kind: 'network' | 'address';
  readonly index: number;
  readonly at: Path;
  readonly from: Cidr;
  readonly to: Cidr;
  readonly fromText: string;
  readonly toText: string;
  readonly owner: 'own' | 'environment';
}

/** The rules of one ipRemap that parse (the others were reported); an address is a network of one. */
function remapRules(remap: IpRemap | undefined, owner: RemapRule['owner'], kinds: readonly RemapRule['kind'][] = ['network', 'address']): RemapRule[] {
  const rules: RemapRule[] = [];
  const host = (ip: IpAddress | undefined): Cidr | undefined => ip && { family: ip.family, network: ip.value, prefix: ip.family === 4 ? 32 : 128 };
  if (kinds.includes('network'))
    remap?.networks?.forEach((r, index) => {
      const from = parseCidr(r.from).cidr;
      const to = parseCidr(r.to).cidr;
      if (from && to && from.family === to.family && from.prefix === to.prefix)
        rules.push({ kind: 'network', index, at: ['spec', 'ipRemap', 'networks', index], from, to, fromText: r.from, toText: r.to, owner });
    });
  if (kinds.includes('address'))
    remap?.addresses?.forEach((r, index) => {
      const from = host(parseIp(r.from));
      const to = host(parseIp(r.to));
      if (from && to && from.family === to.family)
        rules.push({ kind: 'address', index, at: ['spec', 'ipRemap', 'addresses', index], from, to, fromText: r.from, toText: r.to, owner });
    });
  return rules;
}

/** A rule whose result another rule moves again: `rule` sends addresses into `into`'s from. */
interface Chain {
  readonly rule: RemapRule;
  readonly into: RemapRule;
  readonly at: Path;
}

/**
 * Pairs of rules where one's `to` lies in another's `from`. The fixups run on a copy again and again
 * (every sync, every re-run after a spec change), so such a pair would move an address a second time.
 * A rule that maps onto itself (keep 10.0.1.1 while its network moves) moves nothing and chains nothing.
 * An address is a network of one, so one overlap test covers networks and addresses alike.
 */
function remapChains(rules: readonly RemapRule[]): Chain[] {
  const moving = rules.filter((r) => !(r.from.network === r.to.network && r.from.prefix === r.to.prefix));
  const chains: Chain[] = [];
  for (const rule of moving) {
    for (const into of moving) {
      if (into === rule) continue;
      if (cidrsOverlap(rule.to, into.from)) chains.push({ rule, into, at: rule.at });
    }
  }
  return chains;
}

function ruleName(rule: RemapRule): string {
  return `${rule.kind === 'network' ? 'networks' : 'addresses'}[${rule.index}]`;
}

function chainMessage(chain: Chain, where = ''): string {
  const { rule, into } = chain;
  const what = rule.kind === 'network' ? `network ${showValue(rule.toText)}` : `address ${showValue(rule.toText)}`;
  const verbs = { 'network network': 'overlaps', 'network address': 'holds', 'address network': 'lies in', 'address address': 'is' } as const;
  const verb = verbs[`${rule.kind} ${into.kind}`];
  const other = `${ruleName(into)}.from (${showValue(into.fromText)})${where}`;
  return `the ${what} ${verb} ${other}: rules that chain are refused, since fixups run again on every sync and would move these addresses a second time; map ${showValue(rule.fromText)} straight to where it ends`;
}

/**
 * The rules a replica's fixups use are its own and its environment's (its networks replace the
 * environment's; its address rules come first). Chains inside the environment are reported there;
 * here, those a replica's own rule takes part in.
 */
function checkReplicaRemapChains(spec: ReplicaSpec, env: Declared<EnvironmentDocument> | undefined, report: Report): void {
  const own = spec.ipRemap;
  if (!own) return;
  const envRemap = env?.doc.spec.ipRemap;
  const ownAddresses = new Set((own.addresses ?? []).map((a) => parseIp(a.from)).filter((ip) => ip !== undefined).map((ip) => `${ip.family}:${ip.value}`));
  const envRules = remapRules(envRemap, 'environment', own.networks === undefined ? ['network', 'address'] : ['address']).filter(
    (r) => r.kind === 'network' || !ownAddresses.has(`${r.from.family}:${r.from.network}`),
  );
  const where = env ? ` of environment '${env.doc.metadata.name}' (${describeLocation(env)})` : '';
  for (const chain of remapChains([...remapRules(own, 'own'), ...envRules])) {
    if (chain.rule.owner === 'own') report([...chain.at, 'to'], chainMessage(chain, chain.into.owner === 'own' ? '' : where));
    else if (chain.into.owner === 'own')
      report([...chain.into.at, 'from'], `${ruleName(chain.rule)}${where} sends ${showValue(chain.rule.fromText)} to ${showValue(chain.rule.toText)}, which this rule moves again: rules that chain are refused, since fixups run again on every sync and would move these addresses a second time`);
  }
}

function checkFixups(fixups: Fixups | undefined, targetKind: 'directory' | 'disks' | undefined, report: Report): void {
  if (!fixups) return;
  const at: Path = ['spec', 'fixups'];
  if (targetKind === 'disks' && fixups.enabled === false)
    report([...at, 'enabled'], 'a disks target always gets fixups (its disks must boot on the new hardware, in the new network); remove enabled: false');
  const settings = (['nics', 'networkMounts', 'unavailableMounts'] as const).filter((k) => fixups[k] !== undefined);
  if (targetKind === 'directory' && fixups.enabled !== true && settings.length > 0)
    report(at, `${settings.join(', ')} ${settings.length === 1 ? 'has' : 'have'} no effect: a directory target gets fixups only with enabled: true`, { severity: 'warning', atKey: true });
  checkNics(fixups.nics ?? [], [...at, 'nics'], report);
}

/**
 * A NIC map must say something, name each origin NIC once and each target NIC once, and never chain or
 * swap names or MACs: fixups run again on every sync, and eth0 -> eth1 with eth1 -> eth0 would swap the
 * names back on the second run.
 */
function checkNics(nics: NonNullable<Fixups['nics']>, at: Path, report: Report): void {
  const firstOf = (key: (n: (typeof nics)[number]) => string | undefined) => {
    const seen = new Map<string, number>();
    return nics.map((n, i) => {
      const k = key(n);
      if (k === undefined) return undefined;
      const first = seen.get(k);
      if (first === undefined) seen.set(k, i);
      return first;
    });
  };
  const lower = (mac: string | undefined) => mac?.toLowerCase();
  const dupFrom = firstOf((n) => n.from);
  const dupTo = firstOf((n) => n.to ?? n.from);
  const dupFromMac = firstOf((n) => lower(n.fromMac));
  const dupToMac = firstOf((n) => lower(n.toMac));
  nics.forEach((n, i) => {
    const here: Path = [...at, i];
    const to = n.to ?? n.from;
    if (dupFrom[i] !== undefined) report([...here, 'from'], `'${n.from}' is already mapped by nics[${dupFrom[i]}]`);
    else if (dupTo[i] !== undefined) report([...here, n.to !== undefined ? 'to' : 'from'], `nics[${dupTo[i]}] is named '${to}' at the target too; two NICs cannot have one name`);
    if (to === n.from && n.fromMac === undefined && n.toMac === undefined) report(here, `changes nothing: give to (the target's name for ${n.from}), fromMac or toMac`);
    if (n.toMac !== undefined && n.fromMac === undefined)
      report([...here, 'toMac'], `toMac needs fromMac: a MAC pin is found by the origin NIC's MAC, which rmm does not know otherwise`, { atKey: true });
    if (dupFromMac[i] !== undefined) report([...here, 'fromMac'], `${showValue(n.fromMac)} is already the MAC of nics[${dupFromMac[i]}]`);
    if (dupToMac[i] !== undefined) report([...here, 'toMac'], `${showValue(n.toMac)} is already the target MAC of nics[${dupToMac[i]}]; two NICs cannot have one MAC`);
    const chained = nics.findIndex((o, j) => j !== i && o.from === to);
    if (to !== n.from && chained !== -1)
      report([...here, 'to'], `'${to}' is also an origin name (nics[${chained}].from): maps that chain or swap names are refused, since fixups run again on every sync and would rename '${to}' a second time`);
    const macChained = nics.findIndex((o, j) => j !== i && lower(o.fromMac) !== undefined && lower(o.fromMac) === lower(n.toMac));
    if (n.toMac !== undefined && lower(n.toMac) !== lower(n.fromMac) && macChained !== -1)
      report([...here, 'toMac'], `${showValue(n.toMac)} is also an origin MAC (nics[${macChained}].fromMac): maps that chain or swap MACs are refused, since fixups run again on every sync and would rewrite its pins a second time`);
  });
}

/** Mount points and patterns that would exclude the root filesystem, and with it the whole server. */
const WHOLE_ROOT_MOUNTS = new Set(['/', '/*', '/**']);
const WHOLE_ROOT_PATHS = new Set(['/', '/*', '/**', '/***', '*', '**', '***']);

function checkExclusions(exclude: Exclusions | undefined, at: Path, report: Report): void {
  exclude?.mounts?.forEach((m, i) => {
    if (WHOLE_ROOT_MOUNTS.has(m)) report([...at, 'mounts', i], `${showValue(m)} would exclude the root filesystem; a replica without it is not a server`);
  });
  exclude?.paths?.forEach((p, i) => {
    if (WHOLE_ROOT_PATHS.has(p)) report([...at, 'paths', i], `${showValue(p)} would exclude every file of the root filesystem`);
  });
}

/** Phases the language accepts for what comes next (failover); no run uses them yet. */
const NOT_RUN_YET = new Set(['preFailover', 'postFailover']);

function checkHooks(hooks: Hooks | undefined, at: Path, where: Declared<unknown>, report: Report): void {
  for (const [phase, list] of Object.entries(hooks ?? {}) as [string, HookStep[] | undefined][]) {
    if (NOT_RUN_YET.has(phase) && list && list.length > 0) {
      report([...at, phase], `${phase} hooks are accepted but not run yet by this version of rmm (they will run once failover is built)`, { severity: 'warning', atKey: true });
    }
    list?.forEach((hook, i) => {
      const here: Path = [...at, phase, i];
      if (hook.script === undefined && hook.command === undefined) report(here, 'a hook needs a script or a command');
      if (hook.script !== undefined && hook.command !== undefined) report([...here, 'command'], 'a hook takes a script or a command, not both', { atKey: true });
      checkDuration(hook.timeout, [...here, 'timeout'], report);
      if (hook.script !== undefined) checkScript(hook.script, [...here, 'script'], where, report);
    });
  }
}

/** Scripts are looked for next to the YAML file; the message names the path as seen from where rmm runs. */
function checkScript(script: string, at: Path, where: Declared<unknown>, report: Report): void {
  const file = resolveLocalPath(script, where.parsed.source.baseDir);
  const shown = script.startsWith('~') || path.isAbsolute(script) ? file : path.join(path.dirname(where.parsed.source.name), script);
  const info = statSync(file, { throwIfNoEntry: false });
  if (!info) report(at, `the script ${showValue(script)} does not exist (looked for ${shown})`);
  else if (!info.isFile()) report(at, `the script ${showValue(script)} is not a file (${shown})`);
}

function checkPolicy(spec: PolicySpec, report: Report): void {
  const schedule = spec.schedule;
  const at: Path = ['spec', 'schedule'];
  if (schedule?.interval === undefined && schedule?.cron === undefined && schedule !== undefined)
    report(at, 'a schedule needs interval or cron', { atKey: true });
  if (schedule?.interval !== undefined && schedule.cron !== undefined)
    report([...at, 'cron'], 'a schedule takes interval or cron, not both', { atKey: true });
  const intervalMs = checkDuration(schedule?.interval, [...at, 'interval'], report);
  const timezoneOk = schedule?.timezone === undefined || validTimezone(schedule.timezone);
  if (!timezoneOk) report([...at, 'timezone'], `${showValue(schedule!.timezone)} is not an IANA timezone (such as UTC or Europe/Paris)`);
  if (schedule?.cron !== undefined) {
    const problem = cronProblem(schedule.cron, timezoneOk ? schedule.timezone : undefined);
    if (problem) report([...at, 'cron'], `${showValue(schedule.cron)} is not a valid cron expression: ${problem}`);
  }
  const rpo = checkDuration(spec.rpo, ['spec', 'rpo'], report);
  if (rpo !== undefined && intervalMs !== undefined && rpo < intervalMs)
    report(['spec', 'rpo'], `the RPO ${spec.rpo} is shorter than the schedule interval ${schedule?.interval}, so it will be missed between syncs`, { severity: 'warning' });
  checkDuration(spec.retention?.maxAge, ['spec', 'retention', 'maxAge'], report);
  checkDuration(spec.snapshot?.maxFreeze, ['spec', 'snapshot', 'maxFreeze'], report);
  checkDuration(spec.stallTimeout, ['spec', 'stallTimeout'], report);
  if (spec.snapshot?.provider === 'none')
    report(['spec', 'snapshot', 'provider'], 'provider none copies the live filesystem: replicas are never marked consistent', { severity: 'warning' });
  spec.alerts?.webhooks?.forEach((hook, i) => {
    // The URL itself is never shown: it may carry a token.
    if (!URL.canParse(hook.url)) report(['spec', 'alerts', 'webhooks', i, 'url'], 'is not a valid http:// or https:// URL');
    else if (new URL(hook.url).username || new URL(hook.url).password)
      report(['spec', 'alerts', 'webhooks', i, 'url'], 'carries a user or password (user:password@), which HTTP clients refuse to send: put the token in the path or query, as webhook services do');
  });
}

function cronProblem(cron: string, timezone: string | undefined): string | undefined {
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `it has ${fields} fields; write 5 (minute hour day month weekday), or 6 with seconds first`;
  try {
    const job = new Cron(cron, { paused: true, ...(timezone !== undefined ? { timezone } : {}) });
    if (job.nextRun() === null) return 'it never fires';
  } catch (err) {
    const text = (err as Error).message.replace(/^CronPattern: /, '').replace(/\.$/, '');
    return text[0]!.toLowerCase() + text.slice(1);
  }
  return undefined;
}

const timezones = new Map<string, boolean>();

/** Whether Intl knows the zone; cached, since constructing a DateTimeFormat is slow and estates repeat zones. */
function validTimezone(tz: string): boolean {
  let valid = timezones.get(tz);
  if (valid === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      valid = true;
    } catch {
      valid = false;
    }
    timezones.set(tz, valid);
  }
  return valid;
}

