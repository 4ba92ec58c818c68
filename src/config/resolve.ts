import { createHash } from 'node:crypto';
import type { Estate, Declared } from './estate.js';
import { positionOf } from './parse.js';
import { normalizeFolder, resolveLocalPath } from './paths.js';
import type {
  Auth as AuthSpec,
  Connection,
  Exclusions as ExclusionsSpec,
  Fixups as FixupsSpec,
  HookStep,
  Hooks as HooksSpec,
  IpRemap as IpRemapSpec,
  PolicyDocument,
  ReplicaDocument,
  TargetHost,
} from './schema-types.js';
import {
  DEFAULT_CIPHERS,
  HOOK_PHASES,
  type Auth,
  type Endpoint,
  type Exclusions,
  type Fixups,
  type Hook,
  type HookPhase,
  type IpRemap,
  type Policy,
  type Replica,
  type Spec,
  ALERT_KINDS,
} from './spec.js';
import { parseDuration, parseRate } from './units.js';

/** Used by replicas whose policy is named nowhere: sync on demand, one recovery point. */
export const MANUAL_POLICY: Policy = {
  name: 'manual',
  snapshot: { provider: 'auto', minFreePercent: 15, maxFreezeMs: 3_600_000 },
  retention: { recoveryPoints: 1 },
  autoInstallPackages: false,
  parallelStreams: 2,
  stallTimeoutMs: 300_000,
};

/** Turns a checked estate into the Spec: defaults applied, references followed, paths made absolute. */
export function resolveEstate(estate: Estate, files: readonly string[]): Spec {
  const shared = sharedParts(estate);
  const replicas = [...estate.replicas.values()].map((r) => resolveReplica(r, estate, shared));
  replicas.sort((a, b) => a.name.localeCompare(b.name));
  return deepFreeze({ replicas, files: [...files] });
}

/** What many replicas share is resolved once: a policy, an origin's or a landing host's endpoint. */
interface SharedParts {
  readonly policy: (name: string | undefined) => Policy;
  readonly endpoint: (declaredIn: Declared<unknown>, name: string, address: string, own: Connection | undefined) => Endpoint;
}

function sharedParts(estate: Estate): SharedParts {
  const defaults = estate.defaults?.doc.spec.connection;
  const defaultsDir = estate.defaults?.parsed.source.baseDir ?? process.cwd();
  const policies = new Map<string, Policy>();
  const endpoints = new Map<Declared<unknown>, Map<string, Endpoint>>();
  return {
    policy: (name) => {
      if (name === undefined) return MANUAL_POLICY;
      const cached = policies.get(name) ?? resolvePolicy(estate.policies.get(name)!.doc);
      policies.set(name, cached);
      return cached;
    },
    endpoint: (declaredIn, name, address, own) => {
      const byName = endpoints.get(declaredIn) ?? new Map<string, Endpoint>();
      endpoints.set(declaredIn, byName);
      const cached = byName.get(name) ?? endpoint(name, address, own, defaults, declaredIn, defaultsDir);
      byName.set(name, cached);
      return cached;
    },
  };
}

function resolveReplica(declared: Declared<ReplicaDocument>, estate: Estate, shared: SharedParts): Replica {
  const spec = declared.doc.spec;
  const defaults = estate.defaults?.doc.spec;
  const defaultsDir = estate.defaults?.parsed.source.baseDir ?? process.cwd();
  const origin = estate.origins.get(spec.origin)!;
  const env = estate.environments.get(spec.environment)!;
  const host = (spec.host === undefined ? env.doc.spec.hosts[0] : env.doc.spec.hosts.find((h) => h.name === spec.host))!;
  const targetKind = env.doc.spec.targetKind ?? 'directory';
  const exclude = mergeExclusions([defaults?.exclude, origin.doc.spec.exclude, spec.exclude]);
  const root = origin.doc.spec.root ?? '/';
  const targetEndpoint = shared.endpoint(env, host.name, host.address, host.connection);
  const target =
    targetKind === 'directory' ? { endpoint: targetEndpoint, path: targetPath(declared, host) } : { endpoint: targetEndpoint, disks: spec.disks ?? [] };

  const fixups = resolveFixups(spec.fixups, targetKind);
  // Whether the copy is adapted shapes its content (an exact copy or not), so it is part of the
  // generation; what the fixups do (ipRemap, nics, mount handling) is not: a change there re-runs the
  // fixups on the current copy instead of copying again. Left out when off, so hashes of replicas
  // without fixups stay as they were.
  const dataShape = {
    root,
    exclude,
    targetKind,
    path: 'path' in target ? target.path : undefined,
    disks: 'disks' in target ? target.disks : undefined,
    adapted: fixups.enabled ? true : undefined,
  };
  return {
    name: declared.doc.metadata.name,
    labels: declared.doc.metadata.labels ?? {},
    mode: spec.mode ?? defaults?.mode ?? 'dr',
    suspend: spec.suspend ?? false,
    origin: {
      name: origin.doc.metadata.name,
      labels: origin.doc.metadata.labels ?? {},
      endpoint: shared.endpoint(origin, origin.doc.metadata.name, origin.doc.spec.address, origin.doc.spec.connection),
      root,
    },
    environment: {
      name: env.doc.metadata.name,
      targetKind,
      transfer: env.doc.spec.transfer ?? 'direct',
      ...(env.doc.spec.network ? { network: env.doc.spec.network } : {}),
    },
    target,
    policy: shared.policy(spec.policy ?? defaults?.policy),
    exclude,
    hooks: mergeHooks([
      { hooks: defaults?.hooks, baseDir: defaultsDir },
      { hooks: spec.hooks, baseDir: declared.parsed.source.baseDir },
    ]),
    ipRemap: mergeIpRemap(env.doc.spec.ipRemap, spec.ipRemap),
    fixups,
    specHash: hashOf(dataShape),
    source: { file: declared.parsed.source.name, line: positionOf(declared.parsed, []).line },
  };
}

function targetPath(declared: Declared<ReplicaDocument>, host: TargetHost): string {
  const own = declared.doc.spec.path;
  return own !== undefined ? normalizeFolder(own) : `${normalizeFolder(host.path!)}/${declared.doc.metadata.name}`;
}

/** Field by field, the host's own connection settings win over the defaults. */
function endpoint(
  name: string,
  address: string,
  own: Connection | undefined,
  defaults: Connection | undefined,
  declaredIn: Declared<unknown>,
  defaultsDir: string,
): Endpoint {
  const ownDir = declaredIn.parsed.source.baseDir;
  const pick = <K extends keyof Connection>(key: K): { value: Connection[K]; dir: string } | undefined =>
    own?.[key] !== undefined ? { value: own[key], dir: ownDir } : defaults?.[key] !== undefined ? { value: defaults[key], dir: defaultsDir } : undefined;
  const auth = pick('auth');
  const knownHosts = pick('knownHostsFile');
  return {
    name,
    address,
    port: pick('port')?.value ?? 22,
    user: pick('user')?.value ?? 'root',
    sudo: pick('sudo')?.value ?? false,
    auth: auth ? resolveAuth(auth.value!, auth.dir) : { kind: 'default' },
    knownHostsFile: resolveLocalPath(knownHosts?.value ?? '~/.ssh/known_hosts', knownHosts?.dir ?? ownDir),
    ciphers: pick('ciphers')?.value ?? DEFAULT_CIPHERS,
    connectTimeoutMs: parseDuration(pick('connectTimeout')?.value ?? '15s')!,
    heartbeatTimeoutMs: parseDuration(pick('heartbeatTimeout')?.value ?? '30s')!,
  };
}

function resolveAuth(auth: AuthSpec, baseDir: string): Auth {
  const passphrase = auth.passphraseEnv !== undefined ? { passphraseEnv: auth.passphraseEnv } : {};
  if (auth.keyFile !== undefined) return { kind: 'keyFile', path: resolveLocalPath(auth.keyFile, baseDir), ...passphrase };
  if (auth.keyEnv !== undefined) return { kind: 'keyEnv', variable: auth.keyEnv, ...passphrase };
  if (auth.agent === true) return { kind: 'agent' };
  return { kind: 'agent', socket: resolveLocalPath(auth.agent!, baseDir) };
}

function resolvePolicy(doc: PolicyDocument): Policy {
  const spec = doc.spec;
  const schedule = spec.schedule;
  return {
    name: doc.metadata.name,
    ...(schedule?.interval !== undefined ? { schedule: { kind: 'interval' as const, intervalMs: parseDuration(schedule.interval)! } } : {}),
    ...(schedule?.cron !== undefined ? { schedule: { kind: 'cron' as const, cron: schedule.cron, timezone: schedule.timezone ?? 'UTC' } } : {}),
    ...(spec.rpo !== undefined ? { rpoMs: parseDuration(spec.rpo)! } : {}),
    snapshot: { provider: spec.snapshot?.provider ?? 'auto', minFreePercent: spec.snapshot?.minFreePercent ?? 15, maxFreezeMs: parseDuration(spec.snapshot?.maxFreeze ?? '1h')! },
    ...(spec.bandwidthLimit !== undefined ? { bandwidthBytesPerSecond: parseRate(spec.bandwidthLimit)! } : {}),
    retention: {
      recoveryPoints: spec.retention?.recoveryPoints ?? 1,
      ...(spec.retention?.maxAge !== undefined ? { maxAgeMs: parseDuration(spec.retention.maxAge)! } : {}),
    },
    autoInstallPackages: spec.autoInstallPackages ?? false,
    parallelStreams: spec.parallelStreams ?? 2,
    stallTimeoutMs: parseDuration(spec.stallTimeout ?? '5m')!,
    ...(spec.alerts?.webhooks ? { alerts: { webhooks: spec.alerts.webhooks.map((w) => ({ url: w.url, events: w.events ?? [...ALERT_KINDS] })) } } : {}),
  };
}

/** Exclusions add up: the defaults', the origin's and the replica's all apply. */
function mergeExclusions(lists: readonly (ExclusionsSpec | undefined)[]): Exclusions {
  const union = (key: keyof ExclusionsSpec): string[] => [...new Set(lists.flatMap((l) => l?.[key] ?? []))];
  return { volumes: union('volumes'), mounts: union('mounts'), paths: union('paths') };
}

/** Hooks add up per phase: the defaults' run first, then the replica's. */
function mergeHooks(sources: readonly { hooks: HooksSpec | undefined; baseDir: string }[]): Record<HookPhase, Hook[]> {
  const out = Object.fromEntries(HOOK_PHASES.map((p) => [p, [] as Hook[]])) as Record<HookPhase, Hook[]>;
  for (const { hooks, baseDir } of sources) {
    for (const phase of HOOK_PHASES) {
      for (const step of hooks?.[phase] ?? []) out[phase].push(resolveHook(step, baseDir));
    }
  }
  return out;
}

function resolveHook(step: HookStep, baseDir: string): Hook {
  return {
    ...(step.script !== undefined ? { script: resolveLocalPath(step.script, baseDir) } : {}),
    ...(step.command !== undefined ? { command: step.command } : {}),
    on: step.on ?? 'origin',
    timeoutMs: parseDuration(step.timeout ?? '10m')!,
    sudo: step.sudo ?? false,
    continueOnError: step.continueOnError ?? false,
  };
}

/** The replica's address rules come first (they win); its other settings replace the environment's. */
function mergeIpRemap(env: IpRemapSpec | undefined, own: IpRemapSpec | undefined): IpRemap {
  const pick = <K extends keyof IpRemapSpec>(key: K): IpRemapSpec[K] => own?.[key] ?? env?.[key];
  const gateway = pick('gateway');
  const dns = pick('dns');
  const searchDomains = pick('searchDomains');
  const hostname = own?.hostname;
  return {
    networks: pick('networks') ?? [],
    addresses: [...(own?.addresses ?? []), ...(env?.addresses ?? [])],
    ...(gateway !== undefined ? { gateway } : {}),
    ...(dns !== undefined ? { dns } : {}),
    ...(searchDomains !== undefined ? { searchDomains } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
  };
}

/** Disks targets always get fixups (their disks must boot at the target); directory targets when asked. */
function resolveFixups(spec: FixupsSpec | undefined, targetKind: 'directory' | 'disks'): Fixups {
  return {
    enabled: targetKind === 'disks' || (spec?.enabled ?? false),
    nics: (spec?.nics ?? []).map((n) => ({
      from: n.from,
      to: n.to ?? n.from,
      ...(n.fromMac !== undefined ? { fromMac: n.fromMac.toLowerCase() } : {}),
      ...(n.toMac !== undefined ? { toMac: n.toMac.toLowerCase() } : {}),
    })),
    networkMounts: spec?.networkMounts ?? 'comment',
    unavailableMounts: spec?.unavailableMounts ?? 'comment',
  };
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
