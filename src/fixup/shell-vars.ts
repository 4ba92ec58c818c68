/**
 * One `KEY=value` line of a file that shell scripts source (ifcfg-*, route-*, /etc/sysconfig/network),
 * split so that a new value can be written with the line's own quoting, indentation and same-line
 * comment.
 */
export interface ShellVar {
  /** Indentation and an optional `export `. */
  readonly lead: string;
  readonly key: string;
  /** `"`, `'` or '' for an unquoted value. */
  readonly quote: '"' | "'" | '';
  /** The value between the quotes, as written (no unescaping: addresses and names hold no escapes). */
  readonly value: string;
  /** What follows the value: spaces and a `# comment`, or ''. */
  readonly rest: string;
}

export type ShellLine = { readonly kind: 'blank' } | { readonly kind: 'var'; readonly v: ShellVar } | { readonly kind: 'other'; readonly problem: string };

export function parseShellLine(text: string): ShellLine {
  if (text.trim() === '' || /^\s*#/.test(text)) return { kind: 'blank' };
  const m = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(text);
  if (!m) return { kind: 'other', problem: `'${text.trim()}' is not a KEY=value assignment` };
  const [, lead, key, after] = m as unknown as [string, string, string, string];
  let quote: ShellVar['quote'] = '';
  let value: string;
  let rest: string;
  if (after.startsWith('"') || after.startsWith("'")) {
    quote = after[0] as '"' | "'";
    const close = quote === '"' ? closingDoubleQuote(after) : after.indexOf("'", 1);
    if (close === -1) return { kind: 'other', problem: `the value of ${key} opens a ${quote} quote that the line does not close` };
    value = after.slice(1, close);
    rest = after.slice(close + 1);
  } else {
    // '#' starts a comment only at the start of a word: DNS2=4.2.2.2#dns.name is one value.
    const word = /^(?:\\.|[^\s"'\\])*/.exec(after)![0];
    value = word;
    rest = after.slice(word.length);
  }
  if (rest !== '' && !/^(\s+#.*|\s*)$/.test(rest)) return { kind: 'other', problem: `${key}=${after} is more than one value; quote it` };
  return { kind: 'var', v: { lead, key, quote, value, rest } };
}

/** The line with a new value, in the line's quotes; an unquoted value that gains a space gets double quotes. */
export function withValue(v: ShellVar, value: string): string {
  const quote = v.quote === '' && /\s/.test(value) ? '"' : v.quote;
  return `${v.lead}${v.key}=${quote}${value}${quote}${v.rest}`;
}

function closingDoubleQuote(text: string): number {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}
