import type { AddressRemap } from './remap.js';

/** A value's new text and why. */
export interface Moved {
  readonly to: string;
  readonly reason: string;
}

/** An address or `addr/prefix` written on its own, moved by the address rules; `what` names it for the operator. */
export function movedAddress(what: string, text: string, remap: AddressRemap): Moved | undefined {
  const moved = remap.cidr(text);
  return moved && { to: moved.to, reason: `${what} ${text} -> ${moved.to} (${moved.rule})` };
}

/** The default gateway, moved to the spec's gateway or by the address rules. */
export function movedGateway(text: string, remap: AddressRemap): Moved | undefined {
  const moved = remap.gateway(text);
  if (!moved) return undefined;
  const rule = moved.rule.startsWith('gateway ') ? "the spec's gateway" : moved.rule;
  return { to: moved.to, reason: `default gateway ${text} -> ${moved.to} (${rule})` };
}

/** Every whole address inside a free-form value, moved by the address rules. */
export function movedInText(what: string, text: string, remap: AddressRemap): Moved | undefined {
  const moved = remap.inText(text);
  if (moved.rules.length === 0) return undefined;
  return { to: moved.text, reason: moved.rules.map((r) => `${what} ${r}`).join('; ') };
}

/** True for the destinations that make a route the default one. */
export function isDefaultDestination(text: string): boolean {
  return text === 'default' || text === '0.0.0.0/0' || text === '::/0' || text === '0/0';
}
