import { createLogUpdate } from 'log-update';
import prettyBytes from 'pretty-bytes';
import type { ApplyEvent } from '../../apply/events.js';
import type { WatchEvent } from '../../watch/controller.js';
import { progressBar, progressLine } from './progress.js';

type Progress = Extract<ApplyEvent, { type: 'progress' }>;

/** Events of the CLI around apply's own: the plan it carries out, and the summary at the end. */
export type CliEvent =
  | ({ type: 'plan' } & Record<string, unknown>)
  | { type: 'summary'; synced: number; failed: number; blocked: number; unchanged: number }
  /** After SIGINT or SIGTERM: what a replica that did not finish still holds. */
  | { type: 'interrupted'; replica: string; point: string | null; recorded: boolean };

/** `-o json`: one event per line, numbered, starting with the stream's version; a replica's progress at most once a second. */
export function jsonEvents(out: NodeJS.WritableStream, version: string, now: () => number = Date.now): (e: ApplyEvent | CliEvent | WatchEvent) => void {
  let seq = 0;
  const lastProgress = new Map<string, number>();
  const write = (e: object, at = now()) => out.write(`${JSON.stringify({ seq: seq++, at: new Date(at).toISOString(), ...e })}\n`);
  // 2: progress as figures of the whole filesystem (session 18), transport error codes as area.what.
  write({ type: 'version', formatVersion: 2, rmm: version });
  return (e) => {
    const at = now();
    if (e.type === 'progress') {
      // A copy's final figures are in its filesystem.done event.
      if (at - (lastProgress.get(e.replica) ?? -Infinity) < 1000) return;
      lastProgress.set(e.replica, at);
    }
    write(e, at);
  };
}

/** Text output: a function per event, and close() once no more events come (or on an interrupt). */
export interface TextView {
  (e: ApplyEvent): void;
  close(): void;
}

/** Terminal bars are redrawn at most this often. */
const REDRAW_MS = 250;
/** In a log, a copy's progress line comes this often. */
const LOG_LINE_MS = 10_000;

/**
 * Text: a line per step and note. A copy's progress is a bar per replica on a terminal, redrawn in
 * place (log-update) a few times a second; in a log, a line when the copy starts and every 10 s. A
 * failure is one line, its cause first; `verbose` adds the command and output behind it.
 */
export function textEvents(out: NodeJS.WritableStream, verbose = false): TextView {
  const terminal = out as NodeJS.WriteStream;
  // A terminal that says it has no size (a serial console, some ptys) gets a log's lines.
  const area = terminal.isTTY === true && terminal.columns > 0 && terminal.rows > 0 ? createLogUpdate(terminal) : undefined;
  const bars = new Map<string, Progress>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Bars are on the screen below the last line. */
  let shown = false;
  const lastLine = new Map<string, { at: number; mountPoint: string }>();
  const steps = new Map<string, readonly string[]>();

  const draw = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    drawn = Date.now();
    if (closed) return;
    if (bars.size > 0) area!([...bars.values()].map(progressBar).join('\n'));
    else if (shown) area!.clear();
    shown = bars.size > 0;
  };
  const drawSoon = (): void => {
    const wait = REDRAW_MS - (Date.now() - drawn);
    if (wait <= 0) draw();
    else timer ??= setTimeout(draw, wait).unref();
  };
  // A line goes above the bars: they are erased, the line written (whole: log-update's persist
  // would cut a long one to the terminal's height), and they are drawn again below it.
  const print = (line: string): void => {
    if (!area || closed || !shown) {
      out.write(`${line}\n`);
      return;
    }
    area.clear();
    shown = false;
    out.write(`${line}\n`);
    if (bars.size > 0) draw();
  };
  const position = (replica: string, step: string): string => {
    const list = steps.get(replica) ?? [];
    const i = list.indexOf(step);
    return i < 0 ? '' : `[${i + 1}/${list.length}] `;
  };

  const view = (e: ApplyEvent): void => {
    switch (e.type) {
      case 'replica.start':
        steps.set(e.replica, e.steps);
        print(`${e.replica}: sync (run ${e.runId})`);
        break;
      case 'step':
        if (e.status === 'start') print(`${e.replica}: ${position(e.replica, e.step)}${e.step}`);
        else if (e.status === 'skipped') print(`${e.replica}: ${position(e.replica, e.step)}${e.step}: skipped, ${e.detail}`);
        else if (e.status === 'failed') {
          bars.delete(e.replica); // its undos come next: no bar of a copy that ended
          print(`${e.replica}: ${e.step} failed: ${e.detail}`);
        }
        else if (e.status === 'undone') print(`${e.replica}: undid ${e.step}`);
        else if (e.status === 'undo-failed') print(`${e.replica}: could not undo ${e.step}: ${e.detail}`);
        break;
      case 'note':
        print(`${e.replica}: ${e.text}`);
        break;
      case 'progress':
        if (closed) break;
        if (area) {
          bars.set(e.replica, e);
          if (e.percent === 100) draw();
          else drawSoon();
        } else {
          // The final figures are the `copied` line's.
          const last = lastLine.get(e.replica);
          if (e.percent === 100 || (last && last.mountPoint === e.mountPoint && Date.now() - last.at < LOG_LINE_MS)) break;
          lastLine.set(e.replica, { at: Date.now(), mountPoint: e.mountPoint });
          out.write(`${progressLine(e)}\n`);
        }
        break;
      case 'filesystem.done':
        bars.delete(e.replica);
        print(`${e.replica}: copied ${e.mountPoint}: ${count(e.files, 'file')}, ${prettyBytes(e.bytesTotal)}, ${prettyBytes(e.bytesSent)} sent`);
        break;
      case 'replica.done':
        if (e.rolledBack) print(`${e.replica}: the disks are recovery point ${e.point} again, rolled back from their snapshots, nothing copied (${e.seconds.toFixed(1)} s)`);
        else if (e.fixedUp) print(`${e.replica}: recovery point ${e.point} adapted anew by the fixups, nothing copied (${e.seconds.toFixed(1)} s)`);
        else if (e.copied) print(`${e.replica}: consistent at recovery point ${e.point} (${e.seconds.toFixed(1)} s, ${prettyBytes(e.bytesSent)} sent)`);
        else print(`${e.replica}: recovery point ${e.point} verified, nothing to copy (${e.seconds.toFixed(1)} s)`);
        break;
      case 'replica.failed':
        bars.delete(e.replica);
        print(`${e.replica}: FAILED: ${e.error}${e.retryable ? ' (a later run may succeed)' : ''}`);
        if (verbose && e.detail) print(e.detail.replace(/^/gm, '    '));
        else if (e.detail) print(`${e.replica}: (--verbose shows the command and its output)`);
        break;
    }
  };
  // The bars drawn last stay on the screen, the cursor shows again, and what follows goes below them.
  view.close = (): void => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    area?.done(); // the bars drawn last stay; the cursor shows again
  };
  return view;
}

/** `1 file`, `2 files`. */
function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}
