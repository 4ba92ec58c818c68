import type { NicIdentity } from './types.js';

/**
 * The target's name for an origin interface as a configuration file writes it: the NIC itself (eth0),
 * a VLAN on it (eth0.101) or an alias (eth0:1). Undefined when the name is not an origin NIC's, so
 * bonds, bridges, globs and `$IFACE` stay as written.
 */
export function targetInterface(name: string, nics: NicIdentity): string | undefined {
  const direct = nics.names.get(name);
  if (direct !== undefined) return direct === name ? undefined : direct;
  const sub = /^([^.:]+)([.:][0-9A-Za-z_.:]+)$/.exec(name);
  if (!sub) return undefined;
  const base = nics.names.get(sub[1]!);
  return base === undefined || base === sub[1] ? undefined : base + sub[2]!;
}

export function interfaceReason(from: string, to: string): string {
  return `interface ${from} -> ${to} (the target's NIC)`;
}

/** Renames every whole interface name in a list separated by `separator` (spaces, ';' or ','). */
export function renameInList(value: string, nics: NicIdentity, separator: RegExp = /(\s+)/): { text: string; reasons: string[] } {
  const reasons: string[] = [];
  const text = value
    .split(separator)
    .map((part) => {
      // NetworkManager and networkd lists may negate a name with '!'.
      const bang = part.startsWith('!') ? '!' : '';
      const to = targetInterface(part.slice(bang.length), nics);
      if (to === undefined) return part;
      reasons.push(interfaceReason(part.slice(bang.length), to));
      return bang + to;
    })
    .join('');
  return { text, reasons };
}

/** What becomes of a MAC address that pins a configuration to one NIC. */
export type MacPin =
  | { readonly kind: 'keep' }
  | { readonly kind: 'rewrite'; readonly to: string; readonly reason: string }
  | { readonly kind: 'remove'; readonly reason: string };

/**
 * A pin on an origin NIC's MAC follows the NIC to the target (written in the case the file used), or
 * goes when the target NIC is not known by MAC. A MAC that is no origin NIC's is not a pin of ours.
 */
export function macPin(mac: string, nics: NicIdentity): MacPin {
  const key = mac.toLowerCase().replaceAll('-', ':');
  if (!nics.macs.has(key)) return { kind: 'keep' };
  const target = nics.macs.get(key);
  if (target === undefined) return { kind: 'remove', reason: `MAC pin ${mac} removed (the origin's NIC is not on the target and its MAC there is not known)` };
  if (target.toLowerCase() === key) return { kind: 'keep' };
  const cased = /[A-F]/.test(mac) && !/[a-f]/.test(mac) ? target.toUpperCase() : target.toLowerCase();
  const to = mac.includes('-') ? cased.replaceAll(':', '-') : cased;
  return { kind: 'rewrite', to, reason: `MAC pin ${mac} -> ${to} (the target's NIC)` };
}

/** True for a text shaped like a MAC address (6 bytes, or 20 for InfiniBand), ':' or '-' separated. */
export function isMac(text: string): boolean {
  return /^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/.test(text) || /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){19}$/.test(text);
}

/**
 * A configuration file's name with the origin's interface names in it replaced by the target's
 * (`10-eth0.network` -> `10-ens3.network`, `route-eth0` -> `route-ens3`); undefined when no name is in
 * it. A name counts only between separators, so `eth1` is never found inside `eth10`. All names are
 * replaced in one pass, so a swap (eth0 <-> eth1) is not undone half way.
 */
export function renamedFileName(fileName: string, nics: NicIdentity): string | undefined {
  const names = [...nics.names.entries()].filter(([from, to]) => from !== to && from !== '');
  if (names.length === 0) return undefined;
  const alternatives = names
    .map(([from]) => from)
    .sort((a, b) => b.length - a.length)
    .map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const re = new RegExp(`(^|[-_.:@])(${alternatives.join('|')})(?=$|[-_.:@])`, 'g');
  const renamed = fileName.replace(re, (_, before: string, name: string) => before + nics.names.get(name)!);
  return renamed === fileName ? undefined : renamed;
}
