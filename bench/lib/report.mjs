// Collected figures (each with its runs and median), the targets checked against them, the table, the JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { median, round } from './measure.mjs';

export class Results {
  constructor() {
    this.figures = [];
    this.checks = [];
    this.profiles = [];
    this.notes = [];
  }

  /**
   * A figure: `values` are the runs (seconds, bytes, ...); `runs` the details of each measurement.
   * Returns the median.
   */
  add(id, { label, unit = 's', values, runs = [], extra = {} }) {
    const fig = { id, label, unit, values: values.map((v) => round(v, 4)), median: round(median(values), 4), runs, ...extra };
    this.figures = this.figures.filter((f) => f.id !== id).concat(fig);
    return fig.median;
  }

  median(id) {
    return this.figures.find((f) => f.id === id)?.median ?? NaN;
  }

  /** A target: `value op limit` (op '>=', '<=' or '<'); `value` is a ratio or an absolute figure. */
  check(description, { value, op, limit, unit = 'x', basis }) {
    const met = Number.isFinite(value) && (op === '>=' ? value >= limit : op === '<=' ? value <= limit : value < limit);
    this.checks.push({ description, value: round(value, 3), op, limit, unit, basis, met });
  }

  note(text) {
    this.notes.push(text);
  }

  table() {
    const rows = this.figures.flatMap((f) => [[f.id, fmt(f.median, f.unit), f.values.map((v) => fmt(v, f.unit, true)).join(' '), f.label], ...(f.summary ? [['', '', '', `  ${f.summary}`]] : [])]);
    const checks = this.checks.map((c) => [c.met ? 'MET' : 'MISSED', c.description, `${fmtValue(c.value, c.unit)} ${c.op} ${fmtValue(c.limit, c.unit)}`, c.basis ?? '']);
    return [
      render(['figure', 'median', 'runs', 'what'], rows),
      '',
      render(['target', 'description', 'measured', 'basis'], checks),
      ...(this.notes.length ? ['', ...this.notes.map((n) => `note: ${n}`)] : []),
    ].join('\n');
  }

  write(dir, payload) {
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
    const file = path.join(dir, `${stamp}.json`);
    writeFileSync(file, JSON.stringify({ ...payload, figures: this.figures, checks: this.checks, profiles: this.profiles, notes: this.notes }, null, 1));
    return file;
  }
}

function fmtValue(v, unit) {
  if (unit === 'x') return `${round(v, 2)}x`;
  return fmt(v, unit);
}

export function fmt(v, unit, short = false) {
  if (!Number.isFinite(v)) return 'n/a';
  switch (unit) {
    case 's':
      return v < 10 ? `${v.toFixed(short ? 2 : 3)}${short ? '' : ' s'}` : `${v.toFixed(1)}${short ? '' : ' s'}`;
    case 'bytes':
      return v >= 1e9 ? `${(v / 1e9).toFixed(2)}${short ? 'G' : ' GB'}` : v >= 1e6 ? `${(v / 1e6).toFixed(2)}${short ? 'M' : ' MB'}` : `${(v / 1e3).toFixed(1)}${short ? 'k' : ' kB'}`;
    case 'MB':
      return `${v.toFixed(0)}${short ? '' : ' MB'}`;
    default:
      return `${round(v, 3)}${short ? '' : ` ${unit}`}`;
  }
}

function render(head, rows) {
  const all = [head, ...rows];
  const widths = head.map((h, i) => (i === head.length - 1 ? h.length : Math.min(60, Math.max(...all.map((r) => String(r[i]).length)))));
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
