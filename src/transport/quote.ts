/**
 * Quoting for POSIX sh. Remote commands are always built from argv arrays with shellJoin; no
 * caller ever concatenates a command string by hand.
 */

// Words made only of these characters mean the same to sh quoted or not, so they stay bare
// and logs stay readable (`/usr/bin/rsync -aHAX`). `=` is handled in shellJoin.
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (arg.includes('\0')) {
    throw new RangeError('a shell argument cannot contain a NUL byte');
  }
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv
    .map((arg, i) => {
      // A bare `NAME=value` first word would be an assignment, not the command to run.
      if (i === 0 && arg.includes('=') && SAFE.test(arg)) return `'${arg}'`;
      return shellQuote(arg);
    })
    .join(' ');
}
