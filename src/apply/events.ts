/** What apply reports as it goes: rendered as lines on a terminal or CI, or as JSON with -o json. */
export type ApplyEvent =
  | { type: 'replica.start'; replica: string; runId: string; reasons: readonly string[] }
  | { type: 'step'; replica: string; step: string; detail?: string }
  | { type: 'progress'; replica: string; mountPoint: string; bytes: number; files: number; percent: number; rate: string; eta: string }
  | { type: 'filesystem.done'; replica: string; mountPoint: string; files: number; bytesSent: number; bytesTotal: number }
  | { type: 'replica.done'; replica: string; point: string; copied: boolean; seconds: number; bytesSent: number; files: number }
  | { type: 'replica.failed'; replica: string; error: string };

export type EventSink = (event: ApplyEvent) => void;
