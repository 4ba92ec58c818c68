import { createHash } from 'node:crypto';
import type { Endpoint, Hook, Replica } from '../config/spec.js';
import type { OriginFacts } from '../observe/facts.js';

/**
 * Everything that shapes what apply does for one replica, as plain data. A saved plan keeps it;
 * `rmm apply --plan` computes it again and refuses the plan when any field differs, naming each.
 * Secrets never appear here: auth is named by kind and file, never by content.
 */
export interface ApplyInputs {
  readonly mode: string;
  readonly origin: EndpointInputs & { readonly root: string; readonly observed?: ObservedOrigin };
  readonly target: EndpointInputs & { readonly kind: string; readonly path?: string; readonly disks?: unknown };
  readonly transfer: string;
  readonly policy: Readonly<Record<string, unknown>>;
  readonly exclude: Readonly<Record<string, readonly string[]>>;
  readonly hooks: Readonly<Record<string, readonly HookInputs[]>>;
  readonly ipRemap: unknown;
}

interface EndpointInputs {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly sudo: boolean;
  readonly ciphers: readonly string[];
}

/** The origin as observed: its identity and its filesystems by mount point (not their free space, which always moves). */
interface ObservedOrigin {
  readonly machineId: string;
  readonly hostname: string;
  readonly filesystems: Readonly<Record<string, { readonly source: string; readonly fsType: string; readonly lvmName?: string; readonly uuid?: string }>>;
  readonly mountPoints: readonly string[];
}

interface HookInputs {
  readonly script?: string;
  /** The script's content hash: a script edited after the plan is a different hook. */
  readonly scriptSha256?: string;
  readonly command?: readonly string[];
  readonly on: string;
  readonly timeoutMs: number;
  readonly sudo: boolean;
  readonly continueOnError: boolean;
}

/** Content hashes of hook scripts on the rmm host, read at the edge (plan/ does no I/O). */
export type ScriptDigests = ReadonlyMap<string, string>;

/**
 * Parts that replicas share (a policy, an origin's observed facts, a hook list) are built once per
 * plan and kept by identity: planning 10,000 replicas spent most of its time making and hashing
 * copies of the same parts.
 */
export class InputsCache {
  readonly #parts = new WeakMap<object, unknown>();
  readonly #json = new WeakMap<object, string>();

  constructor(readonly scripts: ScriptDigests) {}

  part<K extends object, V extends object>(key: K, make: (key: K) => V): V {
    const found = this.#parts.get(key) as V | undefined;
    if (found !== undefined) return found;
    const value = make(key);
    this.#parts.set(key, value);
    this.#json.set(value, JSON.stringify(value));
    return value;
  }

  /** JSON with a fixed key order (inputs are built field by field), each shared part serialised once. */
  json(value: unknown): string {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    const part = this.#json.get(value);
    if (part !== undefined) return part;
    return Array.isArray(value)
      ? `[${value.map((v) => this.json(v)).join(',')}]`
      : `{${Object.entries(value)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${JSON.stringify(k)}:${this.json(v)}`)
          .join(',')}}`;
  }
}

export function applyInputs(replica: Replica, facts: OriginFacts | undefined, cache: InputsCache): ApplyInputs {
  return {
    mode: replica.mode,
    origin: { ...cache.part(replica.origin.endpoint, endpointInputs), root: replica.origin.root, ...(facts ? { observed: cache.part(facts, observedOrigin) } : {}) },
    target: {
      ...cache.part(replica.target.endpoint, endpointInputs),
      kind: replica.environment.targetKind,
      ...(replica.target.path !== undefined ? { path: replica.target.path } : {}),
      ...(replica.target.disks !== undefined ? { disks: replica.target.disks } : {}),
    },
    transfer: replica.environment.transfer,
    policy: cache.part(replica.policy, ({ name: _name, ...policy }) => policy),
    exclude: cache.part(replica.exclude, (e) => ({ volumes: e.volumes, mounts: e.mounts, paths: e.paths })),
    hooks: cache.part(replica.hooks, (all) =>
      Object.fromEntries(Object.entries(all).filter(([, hooks]) => hooks.length > 0).map(([phase, hooks]) => [phase, hooks.map((h) => hookInputs(h, cache.scripts))])),
    ),
    ipRemap: replica.ipRemap,
  };
}

function endpointInputs(e: Endpoint): EndpointInputs {
  return { address: e.address, port: e.port, user: e.user, sudo: e.sudo, ciphers: e.ciphers };
}

function observedOrigin(facts: OriginFacts): ObservedOrigin {
  return {
    machineId: facts.machineId,
    hostname: facts.hostname,
    filesystems: Object.fromEntries(
      facts.filesystems.map((f) => [f.mountPoint, { source: f.source, fsType: f.fsType, ...(f.lvmName ? { lvmName: f.lvmName } : {}), ...(f.uuid ? { uuid: f.uuid } : {}) }]),
    ),
    mountPoints: facts.mountPoints,
  };
}

function hookInputs(h: Hook, scripts: ScriptDigests): HookInputs {
  const digest = h.script !== undefined ? scripts.get(h.script) : undefined;
  return {
    ...(h.script !== undefined ? { script: h.script } : {}),
    ...(digest ? { scriptSha256: digest } : {}),
    ...(h.command ? { command: h.command } : {}),
    on: h.on,
    timeoutMs: h.timeoutMs,
    sudo: h.sudo,
    continueOnError: h.continueOnError,
  };
}

export function inputsHash(inputs: ApplyInputs, cache: InputsCache): string {
  return createHash('sha256').update(cache.json(inputs)).digest('hex').slice(0, 16);
}

/** Each field that differs, as `policy.snapshot.provider: "auto" -> "fsfreeze"`; empty when equal. */
export function inputsDiff(before: unknown, after: unknown): string[] {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const shown = (v: string | undefined) => (v === undefined ? '(none)' : v);
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${shown(a.get(k))} -> ${shown(b.get(k))}`);
}

/** Leaves of a value by path; arrays of scalars stay one leaf (a list that changed reads better whole). */
function flatten(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !(Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object'))) {
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, out);
  } else if (value !== undefined) {
    out.set(path, JSON.stringify(value));
  }
  return out;
}
