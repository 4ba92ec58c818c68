/* Generated from schemas/rmm.schema.json by scripts/gen-types.mjs. Do not edit. */

/**
 * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Name".
 */
export type Name = string;
/**
 * A duration such as 30s, 15m, 1h30m or 7d.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Duration".
 */
export type Duration = string;
/**
 * A host name (RFC 1123).
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Hostname".
 */
export type Hostname = string;
/**
 * An IPv4 or IPv6 address or a DNS name through which rmm reaches the host over SSH.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Address".
 */
export type Address = string;
/**
 * An IPv4 or IPv6 address.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "IpAddress".
 */
export type IpAddress = string;
/**
 * A network in CIDR notation, such as 10.1.0.0/16.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Cidr".
 */
export type Cidr = string;
/**
 * An absolute path.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "AbsolutePath".
 */
export type AbsolutePath = string;
/**
 * A path on the machine that runs rmm; relative paths are relative to the YAML file, ~ is the home directory.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "LocalPath".
 */
export type LocalPath = string;
/**
 * The name of an environment variable of the rmm process.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "EnvVarName".
 */
export type EnvVarName = string;
/**
 * SSH ciphers in order of preference. The default puts aes128-gcm@openssh.com first, the fastest where the CPU has AES-NI.
 *
 * @minItems 1
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Ciphers".
 */
export type Ciphers = [
  (
    | 'aes128-gcm@openssh.com'
    | 'aes256-gcm@openssh.com'
    | 'chacha20-poly1305@openssh.com'
    | 'aes128-ctr'
    | 'aes192-ctr'
    | 'aes256-ctr'
    | 'aes128-cbc'
    | 'aes192-cbc'
    | 'aes256-cbc'
    | '3des-cbc'
  ),
  ...(
    | 'aes128-gcm@openssh.com'
    | 'aes256-gcm@openssh.com'
    | 'chacha20-poly1305@openssh.com'
    | 'aes128-ctr'
    | 'aes192-ctr'
    | 'aes256-ctr'
    | 'aes128-cbc'
    | 'aes192-cbc'
    | 'aes256-cbc'
    | '3des-cbc'
  )[]
];
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "HookList".
 */
export type HookList = HookStep[];
/**
 * A network interface name as the kernel knows it (eth0, ens3, enp1s0): up to 15 characters.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "InterfaceName".
 */
export type InterfaceName = string;
/**
 * A MAC address written with colons, such as 52:54:00:12:34:56 (quote it in YAML).
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "MacAddress".
 */
export type MacAddress = string;
/**
 * A rate such as 800KiB/s, 50MiB/s or 1GB/s.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Bandwidth".
 */
export type Bandwidth = string;
/**
 * migration: sync until a single cut-over; dr: scheduled syncs with failover and fallback; backup: recovery points kept by the policy's retention.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Mode".
 */
export type Mode = 'migration' | 'dr' | 'backup';

/**
 * One YAML document of an rmm estate. A file may hold several documents separated by ---; each has apiVersion rmm/v1 and a kind.
 */
export interface RmmConfigurationDocument {
  /**
   * The version of this language. Always rmm/v1.
   */
  apiVersion: 'rmm/v1';
  /**
   * What this document describes.
   */
  kind: 'Defaults' | 'Origin' | 'Environment' | 'Policy' | 'Replica';
}
/**
 * Free-form key/value labels, for selecting and reporting.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Labels".
 */
export interface Labels {
  [k: string]: string;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Metadata".
 */
export interface Metadata {
  name: Name;
  labels?: Labels;
  /**
   * A note for people; rmm ignores it.
   */
  description?: string;
}
/**
 * How rmm authenticates over SSH: exactly one of keyFile, keyEnv or agent. Secrets never appear in the file itself.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Auth".
 */
export interface Auth {
  /**
   * A private key file.
   */
  keyFile?: string;
  /**
   * An environment variable that holds the path of a private key file.
   */
  keyEnv?: string;
  /**
   * Use an ssh-agent: true for $SSH_AUTH_SOCK, or the path of the agent's socket.
   */
  agent?: true | LocalPath;
  /**
   * An environment variable that holds the key's passphrase.
   */
  passphraseEnv?: string;
}
/**
 * How rmm reaches a host over SSH.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Connection".
 */
export interface Connection {
  /**
   * The SSH port.
   */
  port?: number;
  /**
   * The login user.
   */
  user?: string;
  /**
   * Run privileged commands with sudo -n (the user needs passwordless sudo).
   */
  sudo?: boolean;
  auth?: Auth;
  /**
   * A path on the machine that runs rmm; relative paths are relative to the YAML file, ~ is the home directory.
   */
  knownHostsFile?: string;
  ciphers?: Ciphers;
  /**
   * How long to wait for the SSH handshake.
   */
  connectTimeout?: string;
  /**
   * How long the host keeps what rmm holds there (a freeze, the replica's lock, the copy's one-run key) after it stops hearing from rmm, whose heartbeats come every 5 s: a lost rmm host or network never leaves a filesystem frozen longer than this. rmm likewise gives up a host that answers none of its keepalives for this long (30s at least). At least 10s.
   */
  heartbeatTimeout?: string;
}
/**
 * What is never copied to the target.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Exclusions".
 */
export interface Exclusions {
  /**
   * Block devices not to copy, by device path (/dev/sdc, /dev/mapper/asm*) or LVM volume (vg_asm/*, vg0/lv_scratch); globs allowed. Their filesystems are skipped.
   */
  volumes?: string[];
  /**
   * Mount points whose filesystems are not copied (/u02, /mnt/nfs/*); globs allowed.
   */
  mounts?: AbsolutePath[];
  /**
   * Files and directories not to copy, as rsync patterns anchored at the origin's root (/var/tmp/*, /home/* /.cache) or unanchored (*.swp).
   */
  paths?: string[];
}
/**
 * One hook: a local script copied to the host and run there, or a command that already exists on the host.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "HookStep".
 */
export interface HookStep {
  /**
   * A path on the machine that runs rmm; relative paths are relative to the YAML file, ~ is the home directory.
   */
  script?: string;
  /**
   * A command and its arguments, run without a shell.
   *
   * @minItems 1
   */
  command?: [string, ...string[]];
  /**
   * Where the hook runs.
   */
  on?: 'origin' | 'target' | 'local';
  /**
   * The hook is killed after this long, and the step fails.
   */
  timeout?: string;
  /**
   * Run the hook with sudo.
   */
  sudo?: boolean;
  /**
   * A failing hook only warns instead of failing the step.
   */
  continueOnError?: boolean;
}
/**
 * Scripts run before and after each step of a sync. Each receives RMM_REPLICA, RMM_ORIGIN, RMM_PHASE, RMM_TARGET_HOST and RMM_TARGET_PATH in its environment.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Hooks".
 */
export interface Hooks {
  preSnapshot?: HookList;
  postSnapshot?: HookList;
  preSync?: HookList;
  postSync?: HookList;
  preFixup?: HookList;
  postFixup?: HookList;
  preFailover?: HookList;
  postFailover?: HookList;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "NetworkRemap".
 */
export interface NetworkRemap {
  from: Cidr;
  to: Cidr;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "AddressRemap".
 */
export interface AddressRemap {
  from: IpAddress;
  to: IpAddress;
}
/**
 * How the replica's network settings change at the target site. Address rules win over network rules.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "IpRemap".
 */
export interface IpRemap {
  /**
   * Move every address of a network into another network of the same size, keeping the host part (10.0.1.7 in 10.0.1.0/24 -> 10.9.1.7 in 10.9.1.0/24).
   */
  networks?: NetworkRemap[];
  /**
   * Change single addresses.
   */
  addresses?: AddressRemap[];
  /**
   * An IPv4 or IPv6 address.
   */
  gateway?: string;
  /**
   * DNS servers at the target site.
   */
  dns?: IpAddress[];
  searchDomains?: Hostname[];
  /**
   * A host name (RFC 1123).
   */
  hostname?: string;
}
/**
 * One of the origin's network interfaces and what it is at the target.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "NicMap".
 */
export interface NicMap {
  /**
   * The origin's interface name.
   */
  from: string;
  /**
   * Its name at the target (default: the same name).
   */
  to?: string;
  /**
   * The origin NIC's MAC: files that pin a configuration to it (HWADDR, match macaddress, udev rules) are found by it.
   */
  fromMac?: string;
  /**
   * The target NIC's MAC: pins on fromMac are rewritten to it. Without it, pins on fromMac are removed (or reported when a pin is all that ties a file to its NIC).
   */
  toMac?: string;
}
/**
 * How the copy is adapted to the target: network settings (by ipRemap and nics), hostname, and mounts that will not be there. Disks targets always get fixups; directory targets only with enabled: true.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Fixups".
 */
export interface Fixups {
  /**
   * For directory targets: adapt the copy after each sync. Off by default, so a plain backup stays an exact copy of its origin. Disks targets always get fixups.
   */
  enabled?: boolean;
  /**
   * How the origin's network interfaces map to the target's, by name and MAC. Names not listed stay as they are.
   */
  nics?: NicMap[];
  /**
   * What becomes of network mounts in fstab (nfs, cifs, _netdev, ...): comment them out with a note, make them nofail, or keep them when the target site reaches their servers.
   */
  networkMounts?: 'comment' | 'nofail' | 'keep';
  /**
   * What becomes of fstab and crypttab entries for excluded volumes and mount points: comment them out with a note, or make them nofail so the boot does not wait for them.
   */
  unavailableMounts?: 'comment' | 'nofail';
}
/**
 * A landing host of the environment: where replicas are written.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "TargetHost".
 */
export interface TargetHost {
  name: Name;
  address: Address;
  connection?: Connection;
  /**
   * An absolute path.
   */
  path?: string;
  /**
   * For disks targets: the block devices of this host that replicas may be written to.
   */
  disks?: string[];
  labels?: Labels;
}
/**
 * The network of the target site.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "SiteNetwork".
 */
export interface SiteNetwork {
  subnets?: Cidr[];
  gateway?: IpAddress;
  dns?: IpAddress[];
  searchDomains?: Hostname[];
}
/**
 * When syncs run: exactly one of interval or cron.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Schedule".
 */
export interface Schedule {
  /**
   * Run this long after the last sync started.
   */
  interval?: string;
  /**
   * A cron expression (5 fields, or 6 with seconds), in the timezone below.
   */
  cron?: string;
  /**
   * An IANA timezone for cron, such as Europe/Paris.
   */
  timezone?: string;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "SnapshotSettings".
 */
export interface SnapshotSettings {
  /**
   * How the point-in-time view is taken. auto picks btrfs or LVM snapshots where they fit and fsfreeze elsewhere; none copies the live filesystem (never consistent).
   */
  provider?: 'auto' | 'lvm' | 'btrfs' | 'fsfreeze' | 'none';
  /**
   * Refuse to snapshot a filesystem with less free space than this.
   */
  minFreePercent?: number;
  /**
   * The longest a filesystem may stay frozen (provider fsfreeze) whatever happens: the origin thaws by itself then, and a copy still running fails instead of being recorded consistent.
   */
  maxFreeze?: string;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Retention".
 */
export interface Retention {
  /**
   * How many consistent recovery points to keep on the target; the oldest is removed after a new one is consistent.
   */
  recoveryPoints?: number;
  /**
   * Also remove recovery points older than this (the newest is always kept).
   */
  maxAge?: string;
}
/**
 * Who is told when a replica falls behind its RPO, fails, or recovers: rmm watch posts a JSON message to each webhook (rmm apply, a one-shot command, does not).
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Alerts".
 */
export interface Alerts {
  /**
   * @minItems 1
   */
  webhooks?: [Webhook, ...Webhook[]];
}
/**
 * An HTTP(S) endpoint that takes a POST of one JSON object per alert. Its URL may carry a token (as chat webhooks do): rmm never prints more of it than the scheme, host and port.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "Webhook".
 */
export interface Webhook {
  /**
   * Where the alert is posted: http:// or https://.
   */
  url: string;
  /**
   * Which alerts go to this webhook; all three when absent.
   *
   * @minItems 1
   */
  events?: ['rpo-breached' | 'failed' | 'recovered', ...('rpo-breached' | 'failed' | 'recovered')[]];
}
/**
 * Settings that origins, landing hosts and replicas inherit unless they set their own.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "DefaultsSpec".
 */
export interface DefaultsSpec {
  connection?: Connection;
  /**
   * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
   */
  policy?: string;
  mode?: Mode;
  exclude?: Exclusions;
  hooks?: Hooks;
}
/**
 * A server to protect or migrate.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "OriginSpec".
 */
export interface OriginSpec {
  address: Address;
  connection?: Connection;
  /**
   * An absolute path.
   */
  root?: string;
  exclude?: Exclusions;
}
/**
 * A target site: its landing hosts, how data reaches them, and its network.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "EnvironmentSpec".
 */
export interface EnvironmentSpec {
  /**
   * directory: each replica is a folder tree on a landing host; disks: each replica is written to block devices that boot on their own.
   */
  targetKind?: 'directory' | 'disks';
  /**
   * direct: origins push to landing hosts over SSH; relay: origins and landing hosts cannot reach each other, so the data streams through rmm.
   */
  transfer?: 'direct' | 'relay';
  /**
   * @minItems 1
   */
  hosts: [TargetHost, ...TargetHost[]];
  network?: SiteNetwork;
  ipRemap?: IpRemap;
}
/**
 * When and how replicas sync.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "PolicySpec".
 */
export interface PolicySpec {
  schedule?: Schedule;
  /**
   * Recovery point objective: the age of the newest consistent copy that counts as late. With no schedule, a replica is synced once its copy is half this old.
   */
  rpo?: string;
  snapshot?: SnapshotSettings;
  bandwidthLimit?: Bandwidth;
  /**
   * A copy that moves no data for this long has failed (rsync --timeout): a full or vanished target ends the sync with its cause instead of a hang.
   */
  stallTimeout?: string;
  retention?: Retention;
  /**
   * Install missing OS packages rmm needs (rsync) on origins and targets with the system's package manager.
   */
  autoInstallPackages?: boolean;
  /**
   * How many streams make a replica's first copy of a filesystem (tar over SSH, each on its share of the files; an rsync pass follows only for sockets, which tar skips); later syncs send only changes, by one rsync (and one more for changed files of 1 GiB or more, written in place).
   */
  parallelStreams?: number;
  alerts?: Alerts;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "ReplicaDiskMap".
 */
export interface ReplicaDiskMap {
  /**
   * A disk of the origin.
   */
  origin: string;
  /**
   * The landing host's disk it is written to.
   */
  target: string;
  /**
   * Erase the landing disk when it holds something other than this replica; without it such a disk is refused.
   */
  wipe?: boolean;
}
/**
 * A copy of one origin in one environment.
 *
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "ReplicaSpec".
 */
export interface ReplicaSpec {
  /**
   * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
   */
  origin: string;
  /**
   * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
   */
  environment: string;
  /**
   * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
   */
  host?: string;
  /**
   * An absolute path.
   */
  path?: string;
  /**
   * For disks targets: which landing-host disk receives which origin disk.
   *
   * @minItems 1
   */
  disks?: [ReplicaDiskMap, ...ReplicaDiskMap[]];
  mode?: Mode;
  /**
   * A name: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (a DNS label).
   */
  policy?: string;
  exclude?: Exclusions;
  hooks?: Hooks;
  ipRemap?: IpRemap1;
  fixups?: Fixups;
  /**
   * Plan nothing for this replica until it is false again.
   */
  suspend?: boolean;
}
/**
 * How the replica's network settings change at the target site. Address rules win over network rules.
 */
export interface IpRemap1 {
  /**
   * Move every address of a network into another network of the same size, keeping the host part (10.0.1.7 in 10.0.1.0/24 -> 10.9.1.7 in 10.9.1.0/24).
   */
  networks?: NetworkRemap[];
  /**
   * Change single addresses.
   */
  addresses?: AddressRemap[];
  /**
   * An IPv4 or IPv6 address.
   */
  gateway?: string;
  /**
   * DNS servers at the target site.
   */
  dns?: IpAddress[];
  searchDomains?: Hostname[];
  /**
   * A host name (RFC 1123).
   */
  hostname?: string;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "DefaultsDocument".
 */
export interface DefaultsDocument {
  apiVersion: 'rmm/v1';
  kind: 'Defaults';
  metadata?: Metadata;
  spec: DefaultsSpec;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "OriginDocument".
 */
export interface OriginDocument {
  apiVersion: 'rmm/v1';
  kind: 'Origin';
  metadata: Metadata;
  spec: OriginSpec;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "EnvironmentDocument".
 */
export interface EnvironmentDocument {
  apiVersion: 'rmm/v1';
  kind: 'Environment';
  metadata: Metadata;
  spec: EnvironmentSpec;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "PolicyDocument".
 */
export interface PolicyDocument {
  apiVersion: 'rmm/v1';
  kind: 'Policy';
  metadata: Metadata;
  spec: PolicySpec;
}
/**
 * This interface was referenced by `RmmConfigurationDocument`'s JSON-Schema
 * via the `definition` "ReplicaDocument".
 */
export interface ReplicaDocument {
  apiVersion: 'rmm/v1';
  kind: 'Replica';
  metadata: Metadata;
  spec: ReplicaSpec;
}
