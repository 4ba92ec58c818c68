import { PassThrough } from 'node:stream';

/** Streams that stand in for stdout/stderr so a test can read what the CLI printed. */
export function captureIo(): {
  stdout: PassThrough;
  stderr: PassThrough;
  stdoutText(): string;
  stderrText(): string;
} {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  return {
    stdout,
    stderr,
    stdoutText: () => Buffer.concat(out).toString('utf8'),
    stderrText: () => Buffer.concat(err).toString('utf8'),
  };
}
