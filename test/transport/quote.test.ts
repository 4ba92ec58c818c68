import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellJoin, shellQuote } from '../../src/transport/quote.js';

/** What sh actually passes to a program for the joined command line. */
function shArgs(args: readonly string[]): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shellJoin(args)}`]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

const HOSTILE = [
  '',
  ' ',
  "it's",
  "''",
  '"double"',
  'a\nb',
  'trailing\n',
  '$(touch /tmp/rmm-pwned)',
  '`id`',
  '$HOME',
  '${PATH}',
  '*',
  '/etc/*.conf',
  '?',
  '[a-z]',
  '~',
  '~root',
  '-rf',
  '--delete',
  '-',
  'a;b',
  'a && b',
  'a|b',
  '> /dev/null',
  '#comment',
  'tab\there',
  '\\',
  'back\\slash',
  '!',
  'héllo wörld',
  '日本語',
  '🙂',
  'x=1',
  '\u00a0',
];

describe('shellQuote', () => {
  it('leaves readable safe words bare', () => {
    for (const word of ['/usr/bin/rsync', '-aHAX', '--numeric-ids', 'root@198.18.0.10:/srv/', 'a,b', 'k=v', '50%']) {
      expect(shellQuote(word)).toBe(word);
    }
  });

  it('quotes everything else with single quotes', () => {
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('$(id)')).toBe("'$(id)'");
    expect(shellQuote('*')).toBe("'*'");
    expect(shellQuote('~')).toBe("'~'");
    expect(shellQuote('é')).toBe("'é'");
  });

  it('refuses NUL, which no argv can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('shellJoin', () => {
  it('round-trips hostile arguments byte for byte through sh', () => {
    expect(shArgs(HOSTILE)).toEqual(HOSTILE);
  });

  it('round-trips each argument alone', () => {
    for (const arg of HOSTILE) expect(shArgs([arg])).toEqual([arg]);
  });

  it('does not let a first word of NAME=value become an assignment', () => {
    expect(shellJoin(['A=1', 'b'])).toBe("'A=1' b");
    expect(shellJoin(['env', 'A=1', 'true'])).toBe('env A=1 true');
  });

  it('reads like the command a person would type', () => {
    expect(shellJoin(['rsync', '-aHAX', '--exclude', '/proc/*', '/', 'root@t:/srv/replica/'])).toBe(
      "rsync -aHAX --exclude '/proc/*' / root@t:/srv/replica/",
    );
  });
});
