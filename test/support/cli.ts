import { main } from '../../src/cli/run.js';
import { captureIo } from './io.js';

/** Runs the rmm CLI in this process and returns its exit code and what it printed. */
export async function rmm(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdoutText(), err: io.stderrText() };
}
