import prettyBytes from 'pretty-bytes';
import type { ApplyEvent } from '../../apply/events.js';

/** Events of the CLI around apply's own: the plan it carries out, and the summary at the end. */
export type CliEvent =
  | ({ type: 'plan' } & Record<string, unknown>)
  | { type: 'summary'; synced: number; failed: number; blocked: number; unchanged: number }
  /** After SIGINT or SIGTERM: what a replica that did not finish still holds. */
  | { type: 'interrupted'; replica: string; point: string | null; recorded: boolean };

/** `-o json`: one event per line, numbered, starting with the stream's version. */
export function jsonEvents(out: NodeJS.WritableStream, version: string): (e: ApplyEvent | CliEvent) => void {
  let seq = 0;
  const write = (e: object) => out.write(`${JSON.stringify({ seq: seq++, at: new Date().toISOString(), ...e })}\n`);
  write({ type: 'version', formatVersion: 1, rmm: version });
  return write;
}

/**
 * Text: a line per step and note, and progress redrawn on a terminal or every 10 s in a log. A
 * failure is one line, its cause first; `verbose` adds the command and output behind it.
 */
export function textEvents(out: NodeJS.WritableStream, verbose = false): (e: ApplyEvent) => void {
  const tty = (out as NodeJS.WriteStream).isTTY === true;
  let lastPlain = 0;
  const steps = new Map<string, readonly string[]>();
  const position = (replica: string, step: string): string => {
    const list = steps.get(replica) ?? [];
    const i = list.indexOf(step);
    return i < 0 ? '' : `[${i + 1}/${list.length}] `;
  };
  return (e) => {
    switch (e.type) {
      case 'replica.start':
        steps.set(e.replica, e.steps);
        out.write(`${e.replica}: sync (run ${e.runId})\n`);
        break;
      case 'step':
        if (e.status === 'start') out.write(`${e.replica}: ${position(e.replica, e.step)}${e.step}\n`);
        else if (e.status === 'skipped') out.write(`${e.replica}: ${position(e.replica, e.step)}${e.step}: skipped, ${e.detail}\n`);
        else if (e.status === 'failed') out.write(`${e.replica}: ${e.step} failed: ${e.detail}\n`);
        else if (e.status === 'undone') out.write(`${e.replica}: undid ${e.step}\n`);
        else if (e.status === 'undo-failed') out.write(`${e.replica}: could not undo ${e.step}: ${e.detail}\n`);
        break;
      case 'note':
        out.write(`${e.replica}: ${e.text}\n`);
        break;
      case 'progress': {
        const line = `${e.replica}: ${e.mountPoint} ${e.percent}% ${e.bytes} bytes ${e.files} files ${e.rate} ETA ${e.eta}`;
        if (tty) out.write(`\r${line}\x1b[K`);
        else if (Date.now() - lastPlain > 10_000) {
          lastPlain = Date.now();
          out.write(`${line}\n`);
        }
        break;
      }
      case 'filesystem.done':
        out.write(`${tty ? '\r\x1b[K' : ''}${e.replica}: copied ${e.mountPoint}: ${count(e.files, 'file')}, ${prettyBytes(e.bytesTotal)}, ${prettyBytes(e.bytesSent)} sent\n`);
        break;
      case 'replica.done':
        if (e.rolledBack) out.write(`${e.replica}: the disks are recovery point ${e.point} again, rolled back from their snapshots, nothing copied (${e.seconds.toFixed(1)} s)\n`);
        else if (e.fixedUp) out.write(`${e.replica}: recovery point ${e.point} adapted anew by the fixups, nothing copied (${e.seconds.toFixed(1)} s)\n`);
        else if (e.copied) out.write(`${e.replica}: consistent at recovery point ${e.point} (${e.seconds.toFixed(1)} s, ${prettyBytes(e.bytesSent)} sent)\n`);
        else out.write(`${e.replica}: recovery point ${e.point} verified, nothing to copy (${e.seconds.toFixed(1)} s)\n`);
        break;
      case 'replica.failed':
        out.write(`${e.replica}: FAILED: ${e.error}${e.retryable ? ' (a later run may succeed)' : ''}\n`);
        if (verbose && e.detail) out.write(`${e.detail.replace(/^/gm, '    ')}\n`);
        else if (e.detail) out.write(`${e.replica}: (--verbose shows the command and its output)\n`);
        break;
    }
  };
}

/** `1 file`, `2 files`. */
function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}
