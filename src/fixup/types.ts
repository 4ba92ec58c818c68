/**
 * The fixup stage's shared vocabulary. A fixup is a pure transform: a file's text in, its new text
 * out, with one change entry per line it rewrote and why. No I/O here: reading the copy and writing
 * the result belong to the caller, so every transform is unit-tested on real files and the plan can
 * show the operator a diff before anything is written.
 */

/** One rewritten line: 1-based line number in the input, its text before and after, and the rule that did it. */
export interface FixupChange {
  readonly line: number;
  readonly before: string;
  readonly after: string;
  /** In the operator's words: "address 10.0.1.7 -> 10.9.1.7 (network 10.0.1.0/24 -> 10.9.1.0/24)". */
  readonly reason: string;
}

/**
 * What a transform made of one file. `unparsable` leaves the file alone: a transform never half-rewrites
 * a file it does not understand; the caller reports the problem (file, line) and writes nothing for it.
 */
export type FixupResult =
  | { readonly kind: 'unchanged'; readonly text: string }
  | { readonly kind: 'changed'; readonly text: string; readonly changes: readonly FixupChange[] }
  | { readonly kind: 'unparsable'; readonly problem: string; readonly line?: number };

/** A network interface as the origin or the target knows it. */
export interface Nic {
  readonly name: string;
  /** Lower case, colon-separated (52:54:00:12:34:56). */
  readonly mac?: string;
}

/**
 * How the origin's NICs become the target's: `names` maps an origin interface name to the target's
 * (eth0 -> ens3), `macs` maps an origin MAC (lower case) to the target NIC's MAC, or to undefined when
 * the target NIC is not known by MAC (then a pin on the old MAC is removed rather than rewritten).
 */
export interface NicIdentity {
  readonly names: ReadonlyMap<string, string>;
  readonly macs: ReadonlyMap<string, string | undefined>;
}

/** Builds a result from the old and new lines; `unchanged` when the transform changed nothing. */
export function resultOf(before: string, after: string, changes: readonly FixupChange[]): FixupResult {
  if (before === after) return { kind: 'unchanged', text: before };
  return { kind: 'changed', text: after, changes };
}
