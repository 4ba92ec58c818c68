/** What a remote command's exit code means, for error messages (from rsync(1) and sh/ssh conventions). */
import { constants } from 'node:os';

const RSYNC: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files or directories',
  4: 'requested action not supported',
  5: 'error starting client-server protocol',
  6: 'daemon unable to append to log file',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'partial transfer due to vanished source files',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
};

const SHELL: Readonly<Record<number, string>> = {
  126: 'command found but not executable (permission denied?)',
  127: 'command not found',
  255: 'ssh failed (connection or authentication error), or the remote command exited with 255',
};

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);

export function exitCodeMeaning(program: string | undefined, exitCode: number): string | undefined {
  const base = program?.split('/').pop();
  const table = base === 'rsync' ? RSYNC : undefined;
  const known = table?.[exitCode] ?? SHELL[exitCode];
  if (known) return known;
  if (exitCode > 128 && exitCode < 128 + 65) {
    const signal = SIGNAL_NAMES.get(exitCode - 128);
    return `killed by signal ${exitCode - 128}${signal ? ` (${signal})` : ''}`;
  }
  return undefined;
}

export function signalNumber(signal: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[signal];
}
