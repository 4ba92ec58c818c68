// Running the rmm CLI as an operator would; the time of each step comes from its output lines.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { measure } from './measure.mjs';

export class Rmm {
  /** cli: dist/cli/main.js to run; profileDir: where --cpu-prof writes when a run asks for a profile. */
  constructor({ lab, cli }) {
    this.lab = lab;
    this.cli = cli;
    /** Peak RSS of every rmm process run, by scope (the scenario). */
    this.samples = [];
    this.scope = 'rmm';
  }

  #sample(m, profileDir) {
    if (!profileDir) this.samples.push({ scope: this.scope, maxRssKb: m.maxRssKb });
    return m;
  }

  /** `cpu`: the one core the process may run on (taskset), when the hosts are kept off it. */
  argv(args, profileDir, cpu) {
    return [...(cpu === undefined ? [] : ['taskset', '-c', String(cpu)]), process.execPath, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), this.cli, ...args];
  }

  /**
   * `rmm apply -f FILE --yes --sync-now all`, with text output as an operator's cron job would get
   * it (on a pipe: steps, and progress every 10 s); each line is timestamped as it arrives, which
   * gives the phases. `json: true` uses -o json instead (one event per line, progress per file).
   */
  async apply(file, { profileDir, json = false, cpu } = {}) {
    const lines = [];
    let pending = '';
    const onStdout = (chunk) => {
      const at = Date.now();
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop();
      for (const text of parts) lines.push({ at, text });
    };
    const args = ['apply', '-f', file, '--yes', '--sync-now', 'all', ...(json ? ['-o', 'json'] : [])];
    const m = this.#sample(await measure(this.lab, this.argv(args, profileDir, cpu), { allowFail: true, onStdout }), profileDir);
    const events = json ? parseJsonEvents(lines) : parseTextEvents(lines);
    const failed = events.find((e) => e.type === 'replica.failed');
    if (m.code !== 0 || failed) throw new Error(`rmm apply -f ${file} exited ${m.code}: ${failed?.error ?? (m.stderr + m.stdout).trim().split('\n').slice(-8).join('\n')}`);
    const verified = events.some((e) => e.type === 'replica.done' && e.copied === false);
    // What a directory target does once rmm has exited (the next sync's hard links, emptying the
    // trash: src/target/directory/driver.ts AFTER_RUN) ends before anything else is measured, and is
    // shown as its own phase, not counted in the wall time.
    const after = await this.#afterRun();
    return { ...m, stdout: undefined, verified, phases: { ...phases(m.startedAt, m.wall, events), ...(after > 0 ? { 'after exit (target, not timed)': after } : {}) } };
  }

  /** Seconds until the target has no AFTER_RUN job left (0 when there is none). */
  async #afterRun() {
    const start = Date.now();
    for (;;) {
      const r = await this.lab.exec('target', ['sh', '-c', 'pgrep -f "rmm-after-ru[n]" >/dev/null && echo busy || true'], { allowFail: true });
      if (!r.stdout.includes('busy')) return Math.round(Date.now() - start) / 1000;
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** `rmm plan -f FILE -o json`; exit 0 (nothing to do) or 3 (changes pending) are both fine. */
  async plan(file, { profileDir, parallelism } = {}) {
    const m = this.#sample(await measure(this.lab, this.argv(['plan', '-f', file, '-o', 'json', ...(parallelism ? ['--parallelism', String(parallelism)] : [])], profileDir), { allowFail: true }), profileDir);
    if (m.code !== 0 && m.code !== 3) throw new Error(`rmm plan -f ${file} exited ${m.code}: ${m.stderr.trim().split('\n').slice(-5).join('\n')}`);
    let plan;
    try {
      plan = JSON.parse(m.stdout);
    } catch {
      plan = undefined;
    }
    return { ...m, stdout: undefined, plan };
  }

  /** The replica record rmm keeps on the target. */
  record(replicaPath) {
    return JSON.parse(readFileSync(this.lab.hostPath('target', path.join(replicaPath, '.rmm/record.json')), 'utf8'));
  }
}

function parseJsonEvents(lines) {
  return lines
    .filter((l) => l.text.startsWith('{'))
    .map((l) => JSON.parse(l.text))
    .filter((e) => e.type !== 'progress')
    .map((e) => ({ ...e, at: Date.parse(e.at) }));
}

/** The text renderer's lines as events: `REPLICA: sync (run ID)`, `REPLICA: [N/M] STEP-ID`, `REPLICA: copied …`, … */
function parseTextEvents(lines) {
  const events = [];
  for (const { at, text } of lines) {
    const m = /^([a-z0-9][a-z0-9-]*): (.*)$/.exec(text);
    if (!m) continue;
    const rest = m[2];
    if (/^sync \(run /.test(rest)) events.push({ at, type: 'replica.start' });
    else if (rest.startsWith('copied ')) events.push({ at, type: 'filesystem.done' });
    else if (rest.startsWith('consistent at recovery point')) events.push({ at, type: 'replica.done' });
    else if (/^recovery point \S+ verified/.test(rest)) events.push({ at, type: 'replica.done', copied: false });
    else if (rest.startsWith('FAILED: ')) events.push({ at, type: 'replica.failed', error: rest.slice(8) });
    else {
      // A step starting (or skipped) is `[N/M] STEP-ID`; notes and progress lines are not phases.
      const step = /^\[\d+\/\d+\] (.+?)(?:: skipped, .*)?$/.exec(rest);
      if (step) events.push({ at, type: 'step', step: step[1] });
    }
  }
  return events;
}

/**
 * Seconds per phase: from the process start to the first event (node start, load, observe, plan),
 * each step to the next event, and from the last event to the process exit (closing sessions).
 */
export function phases(startedAt, wall, events) {
  const out = {};
  const add = (name, seconds) => (out[name] = Math.round(((out[name] ?? 0) + seconds) * 1000) / 1000);
  let prevName = 'start+observe+plan';
  let prevAt = startedAt;
  for (const e of events) {
    const at = e.at;
    add(prevName, (at - prevAt) / 1000);
    prevName = e.type === 'step' ? e.step : e.type;
    prevAt = at;
  }
  add(prevName === 'replica.done' ? 'exit' : prevName, (startedAt + wall * 1000 - prevAt) / 1000);
  return out;
}
