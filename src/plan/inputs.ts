import { createHash } from 'node:crypto';
import type { Endpoint, Exclusions, Hook, HookPhase, IpRemap, Policy, Replica } from '../config/spec.js';
import type { OriginFacts } from '../observe/facts.js';

/**
 * Everything that shapes what apply does for one replica, as plain data. A saved plan keeps it;
 * `rmm apply --plan` computes it again and refuses the plan when any field differs, naming each.
 * Secrets never appear here: auth is named by kind and file, never by content. The parts are the
 * spec's own (resolved, frozen) values, not copies: planning 10,000 replicas spent most of its time
 * copying and hashing them.
 */
export interface ApplyInputs {
  readonly mode: string;
  readonly suspend: boolean;
  readonly origin: { readonly endpoint: Endpoint; readonly root: string; readonly observed?: ObservedOrigin };
  readonly target: { readonly endpoint: Endpoint; readonly kind: string; readonly path?: string; readonly disks?: unknown };
  readonly transfer: string;
  readonly policy: Policy;
  readonly exclude: Exclusions;
  /** The hooks, each script's with its content hash: a script edited after the plan is another hook. */
  readonly hooks: Readonly<Record<HookPhase, readonly (Hook & { readonly scriptSha256?: string })[]>>;
  readonly ipRemap: IpRemap;
  readonly fixups: Replica['fixups'];
}

/**
 * The origin as observed: its identity and its filesystems by mount point, with their size (an LVM
 * snapshot is sized from it), not their free space, which always moves. Other mounts show in the
 * plan's copy units (the mount points inside each filesystem), where they matter.
 */
interface ObservedOrigin {
  readonly machineId: string;
  readonly hostname: string;
  readonly filesystems: Readonly<Record<string, { readonly source: string; readonly fsType: string; readonly lvmName?: string; readonly uuid?: string; readonly sizeBytes: number }>>;
}

/** Content hashes of hook scripts on the rmm host, read at the edge (plan/ does no I/O). */
export type ScriptDigests = ReadonlyMap<string, string>;

/** What one plan computes once and shares between replicas: an origin's observed facts are one per origin. */
export class InputsCache {
  readonly #observed = new WeakMap<OriginFacts, ObservedOrigin>();

  constructor(readonly scripts: ScriptDigests) {}

  observed(facts: OriginFacts): ObservedOrigin {
    let found = this.#observed.get(facts);
    if (!found) this.#observed.set(facts, (found = observedOrigin(facts)));
    return found;
  }
}

export function applyInputs(replica: Replica, facts: OriginFacts | undefined, cache: InputsCache): ApplyInputs {
  return {
    mode: replica.mode,
    suspend: replica.suspend,
    origin: { endpoint: replica.origin.endpoint, root: replica.origin.root, ...(facts ? { observed: cache.observed(facts) } : {}) },
    target: {
      endpoint: replica.target.endpoint,
      kind: replica.environment.targetKind,
      ...(replica.target.path !== undefined ? { path: replica.target.path } : {}),
      ...(replica.target.disks !== undefined ? { disks: replica.target.disks } : {}),
    },
    transfer: replica.environment.transfer,
    // Alerts change nothing apply does, and a webhook's URL may hold a token: never in a plan.
    policy: withoutAlerts(replica.policy),
    exclude: replica.exclude,
    hooks: withScriptDigests(replica.hooks, cache.scripts),
    ipRemap: replica.ipRemap,
    fixups: replica.fixups,
  };
}

function withScriptDigests(hooks: Replica['hooks'], scripts: ScriptDigests): ApplyInputs['hooks'] {
  const scripted = Object.values(hooks).some((list) => list.some((h) => h.script !== undefined));
  if (!scripted) return hooks;
  const digest = (h: Hook) => (h.script !== undefined && scripts.has(h.script) ? { ...h, scriptSha256: scripts.get(h.script)! } : h);
  return Object.fromEntries(Object.entries(hooks).map(([phase, list]) => [phase, list.map(digest)])) as unknown as ApplyInputs['hooks'];
}

function observedOrigin(facts: OriginFacts): ObservedOrigin {
  return {
    machineId: facts.machineId,
    hostname: facts.hostname,
    filesystems: Object.fromEntries(
      facts.filesystems.map((f) => [f.mountPoint, { source: f.source, fsType: f.fsType, ...(f.lvmName ? { lvmName: f.lvmName } : {}), ...(f.uuid ? { uuid: f.uuid } : {}), sizeBytes: f.sizeBytes }]),
    ),
  };
}

/** Inputs are built field by field in a fixed order (applyInputs, the resolved spec), so their JSON is canonical. */
export function inputsHash(inputs: ApplyInputs): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/**
 * Gives the action its `inputsHash`, computed the first time it is read (a saved plan, JSON output,
 * a comparison) rather than for every replica of every plan.
 */
export function withInputsHash<T extends { readonly inputs: ApplyInputs }>(action: T): T & { readonly inputsHash: string } {
  let hash: string | undefined;
  return Object.defineProperty(action, 'inputsHash', { enumerable: true, get: () => (hash ??= inputsHash(action.inputs)) }) as T & { readonly inputsHash: string };
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

function withoutAlerts(policy: Policy): Policy {
  const { alerts: _alerts, ...rest } = policy;
  return rest;
}
