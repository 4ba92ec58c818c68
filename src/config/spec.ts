import type { HookStep, ReplicaDiskMap, SiteNetwork } from './schema-types.js';

/**
 * The resolved, validated estate: what `load` returns and every later stage reads.
 * Defaults are applied and references replaced by the things they name.
 */
export interface Spec {
  readonly replicas: readonly Replica[];
  /** Every file that contributed, in order. */
  readonly files: readonly string[];
}

export type Mode = 'migration' | 'dr' | 'backup';
export type SnapshotProvider = 'auto' | 'lvm' | 'btrfs' | 'fsfreeze' | 'none';
export type HookPhase =
  | 'preSnapshot'
  | 'postSnapshot'
  | 'preSync'
  | 'postSync'
  | 'preFixup'
  | 'postFixup'
  | 'preFailover'
  | 'postFailover';

export const HOOK_PHASES: readonly HookPhase[] = [
  'preSnapshot',
  'postSnapshot',
  'preSync',
  'postSync',
  'preFixup',
  'postFixup',
  'preFailover',
  'postFailover',
];

export type Auth =
  | { readonly kind: 'keyFile'; readonly path: string; readonly passphraseEnv?: string }
  | { readonly kind: 'keyEnv'; readonly variable: string; readonly passphraseEnv?: string }
  | { readonly kind: 'agent'; readonly socket?: string }
  /** Nothing configured: like OpenSSH, try the agent, then ~/.ssh/id_ed25519 and id_rsa. */
  | { readonly kind: 'default' };

/** How rmm reaches one host over SSH. */
export interface Endpoint {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly sudo: boolean;
  readonly auth: Auth;
  readonly knownHostsFile: string;
  readonly ciphers: readonly string[];
  readonly connectTimeoutMs: number;
  /** How long the host keeps what rmm holds there after rmm's heartbeats stop. */
  readonly heartbeatTimeoutMs: number;
}

export interface Hook {
  readonly script?: string;
  readonly command?: readonly string[];
  readonly on: NonNullable<HookStep['on']>;
  readonly timeoutMs: number;
  readonly sudo: boolean;
  readonly continueOnError: boolean;
}

export type Schedule =
  | { readonly kind: 'interval'; readonly intervalMs: number }
  | { readonly kind: 'cron'; readonly cron: string; readonly timezone: string };

export interface Policy {
  readonly name: string;
  readonly schedule?: Schedule;
  readonly rpoMs?: number;
  readonly snapshot: { readonly provider: SnapshotProvider; readonly minFreePercent: number; readonly maxFreezeMs: number };
  readonly bandwidthBytesPerSecond?: number;
  readonly retention: { readonly recoveryPoints: number; readonly maxAgeMs?: number };
  readonly autoInstallPackages: boolean;
  readonly parallelStreams: number;
  /** A copy that moves no data for this long has failed. */
  readonly stallTimeoutMs: number;
  /** Who rmm watch tells when a replica falls behind its RPO, fails, or recovers. */
  readonly alerts?: { readonly webhooks: readonly { readonly url: string; readonly events: readonly AlertKind[] }[] };
}

/** What rmm watch tells: a replica past its RPO, a sync that failed, and the end of either. */
export const ALERT_KINDS = ['rpo-breached', 'failed', 'recovered'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface Exclusions {
  readonly volumes: readonly string[];
  readonly mounts: readonly string[];
  readonly paths: readonly string[];
}

export interface IpRemap {
  readonly networks: readonly { readonly from: string; readonly to: string }[];
  readonly addresses: readonly { readonly from: string; readonly to: string }[];
  readonly gateway?: string;
  readonly dns?: readonly string[];
  readonly searchDomains?: readonly string[];
  readonly hostname?: string;
}

/** One origin NIC and what it is at the target: `to` defaults to `from`; MACs are lower case. */
export interface NicMapping {
  readonly from: string;
  readonly to: string;
  readonly fromMac?: string;
  readonly toMac?: string;
}

/** How the copy is adapted to the target (src/fixup/). */
export interface Fixups {
  /** Whether the copy is adapted at all: always for disks targets, by `fixups.enabled` for directory targets. */
  readonly enabled: boolean;
  readonly nics: readonly NicMapping[];
  readonly networkMounts: 'comment' | 'nofail' | 'keep';
  readonly unavailableMounts: 'comment' | 'nofail';
}

export interface Replica {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly mode: Mode;
  readonly suspend: boolean;
  readonly origin: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly endpoint: Endpoint;
    readonly root: string;
  };
  readonly environment: {
    readonly name: string;
    readonly targetKind: 'directory' | 'disks';
    readonly transfer: 'direct' | 'relay';
    readonly network?: SiteNetwork;
  };
  readonly target: {
    readonly endpoint: Endpoint;
    /** Directory targets: where the replica's recovery points live on the landing host. */
    readonly path?: string;
    /** Disks targets: which landing-host disk receives which origin disk. */
    readonly disks?: readonly ReplicaDiskMap[];
  };
  readonly policy: Policy;
  readonly exclude: Exclusions;
  readonly hooks: Readonly<Record<HookPhase, readonly Hook[]>>;
  readonly ipRemap: IpRemap;
  readonly fixups: Fixups;
  /** A hash of everything that shapes the copied data; recorded on the target as the replica's generation. */
  readonly specHash: string;
  /** Where the Replica document was written, for messages. */
  readonly source: { readonly file: string; readonly line: number };
}

export { DEFAULT_CIPHERS } from '../transport/ciphers.js';
