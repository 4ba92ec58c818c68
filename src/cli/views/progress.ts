import prettyBytes from 'pretty-bytes';
import type { ApplyEvent } from '../../apply/events.js';
import { formatDuration } from '../../config/units.js';

type Progress = Extract<ApplyEvent, { type: 'progress' }>;

const BAR_WIDTH = 20;

/** `45%, 423 MB of 940 MB, 1,234 of 5,000 files, 12.3 MB/s, 41s left`: the figures of a copy, in words. */
export function progressFigures(p: Progress): string {
  const files = p.filesTotal === null ? `${count(p.files)} files` : `${count(p.files)} of ${count(p.filesTotal)} files`;
  const pace = p.percent === 100 ? [] : p.bytesPerSecond > 0 ? [`${prettyBytes(p.bytesPerSecond)}/s`, p.etaSeconds === null ? 'time left unknown' : `${formatDuration(p.etaSeconds * 1000)} left`] : [];
  return [`${p.percent}%`, `${prettyBytes(p.bytes)} of ${prettyBytes(p.bytesTotal)}`, files, ...pace].join(', ');
}

/** A line for a log: `web-01: /srv/data 45%, 423 MB of 940 MB, ...`. */
export function progressLine(p: Progress): string {
  return `${p.replica}: ${p.mountPoint} ${progressFigures(p)}`;
}

/** A line for a terminal: `web-01 /srv/data [#########-----------] 45%, 423 MB of 940 MB, ...`. */
export function progressBar(p: Progress): string {
  const full = Math.floor((p.percent / 100) * BAR_WIDTH);
  return `${p.replica} ${p.mountPoint} [${'#'.repeat(full)}${'-'.repeat(BAR_WIDTH - full)}] ${progressFigures(p)}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}
