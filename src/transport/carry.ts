import type { ClientChannel } from 'ssh2';

/**
 * Carries one remote command's stdout into another's stdin, with flow control, and ends the
 * second's stdin once everything the first wrote has been passed on. ssh2 does not always emit
 * 'end' on an exec channel whose command exited, so the first command's exit ends the carry too,
 * once no chunk is left buffered.
 */
export function carry(from: ClientChannel, fromExit: Promise<unknown>, to: ClientChannel): Promise<void> {
  return new Promise<void>((resolve) => {
    let exited = false;
    let done = false;
    const finish = (): void => {
      if (done || !exited || from.readableLength > 0 || from.isPaused()) return;
      done = true;
      to.end();
      resolve();
    };
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          from.resume();
          finish();
        });
      }
      finish();
    });
    from.once('end', () => {
      exited = true;
      finish();
    });
    void fromExit.then(() => {
      exited = true;
      setImmediate(finish);
    });
  });
}
