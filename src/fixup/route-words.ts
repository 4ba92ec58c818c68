import { isDefaultDestination, movedGateway, movedInText } from './address-edits.js';
import { editWords } from './line-edits.js';
import { interfaceReason, targetInterface } from './nic-rename.js';
import type { AddressRemap } from './remap.js';
import type { NicIdentity } from './types.js';

/**
 * Rewrites the words of an `ip route`/`ip addr`/`route` command, or of a route written the way
 * `ip route add` takes it (`10.1.3.0/24 via 192.168.0.3 dev eth0`): the next hop of a default route is
 * the default gateway; every other whole address follows the address rules; `dev NAME` follows the
 * NIC. Netmasks and words that are not addresses stay as written.
 */
export function rewriteRouteWords(text: string, what: string, remap: AddressRemap, nics: NicIdentity): { text: string; reasons: string[] } {
  const reasons: string[] = [];
  const isDefault = text.split(/\s+/).some(isDefaultDestination) || /-net\s+0\.0\.0\.0\s+netmask\s+0\.0\.0\.0(\s|$)/.test(text);
  const out = editWords(text, (word, index, words) => {
    const previous = words[index - 1];
    if (previous === 'netmask') return undefined;
    // An address label must start with its device's name (ens3:1), so it follows the NIC too.
    if (previous === 'dev' || previous === 'oif' || previous === 'iif' || previous === 'label') {
      const to = targetInterface(word, nics);
      if (to !== undefined) reasons.push(interfaceReason(word, to));
      return to;
    }
    const nextHop = previous === 'via' || previous === 'gw';
    const moved = nextHop && isDefault ? movedGateway(word, remap) : movedInText(nextHop ? `${what} next hop` : what, word, remap);
    if (moved) reasons.push(moved.reason);
    return moved?.to;
  });
  return { text: out, reasons };
}
