import type { CopyProgress } from '../sync/progress.js';
import type { StepStatus } from './runner.js';

/** What apply reports as it goes: rendered as lines on a terminal or CI, or as JSON with -o json. */
export type ApplyEvent =
  | { type: 'replica.start'; replica: string; runId: string; reasons: readonly string[]; steps: readonly string[] }
  /** A planned step began, ended, was skipped, failed, or was undone after a failure. */
  | { type: 'step'; replica: string; step: string; status: StepStatus; detail?: string }
  /** A line for the operator from inside a step (a hook's output, how a copy goes). */
  | { type: 'note'; replica: string; step: string; text: string }
  /** How a filesystem's copy goes (src/sync/progress.ts): a few times a second at most, and once more with its final figures. */
  | ({ type: 'progress'; replica: string; mountPoint: string } & CopyProgress)
  | { type: 'filesystem.done'; replica: string; mountPoint: string; files: number; bytesSent: number; bytesTotal: number }
  | { type: 'replica.done'; replica: string; point: string; copied: boolean; fixedUp?: boolean; rolledBack?: boolean; seconds: number; bytesSent: number; files: number }
  /** error: one line, the cause first; detail: the command and output behind it (text shows it with --verbose). */
  | { type: 'replica.failed'; replica: string; error: string; code: string; step?: string; host?: string; retryable: boolean; detail?: string };

export type EventSink = (event: ApplyEvent) => void;
