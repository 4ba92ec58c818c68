// One measured run of a command: wall time, CPU where it was spent (this machine's process tree,
// the origin's and the target's sshd trees), and peak RSS of the largest local process.
import { readFileSync } from 'node:fs';
import { sleep, timed } from './proc.mjs';

export async function measure(lab, argv, opts = {}) {
  const before = { origin: lab.cpuSeconds('origin'), target: lab.cpuSeconds('target'), originSessions: lab.sessions('origin'), targetSessions: lab.sessions('target') };
  const startedAt = Date.now();
  const machineBefore = machineTicks();
  const res = await timed(argv, { env: lab.env, ...opts });
  const machine = machineLoad(machineBefore, machineTicks());
  await sleep(300); // sshd reaps the sessions that just closed
  const origin = lab.cpuSeconds('origin') - before.origin;
  const target = lab.cpuSeconds('target') - before.target;
  return {
    startedAt,
    wall: res.wall,
    // local: this machine's processes (rmm), minus what a baseline ran inside the origin's cgroup.
    cpu: { local: round(Math.max(0, res.cpuUser + res.cpuSys - (opts.inOrigin ? origin : 0))), origin: round(origin), target: round(target) },
    sessions: { origin: lab.sessions('origin') - before.originSessions, target: lab.sessions('target') - before.targetSessions },
    maxRssKb: res.maxRssKb,
    machine,
    code: res.code,
    stdout: res.stdout,
    stderr: res.stderr,
  };
}

export function round(x, digits = 3) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function median(xs) {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** /proc/stat's first line: the whole machine's CPU ticks by kind. */
export function machineTicks() {
  const [, user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return { user: user + nice, kernel: system + irq + softirq, idle: idle + iowait, steal };
}

/**
 * How busy all cores were over a run, and how much of it in the kernel: the lab's hosts share
 * this machine's cores, and their I/O through loop devices is kernel work no process is charged for.
 */
function machineLoad(a, b) {
  const d = (k) => b[k] - a[k];
  const total = d('user') + d('kernel') + d('idle') + d('steal');
  return total > 0 ? { busy: round((total - d('idle')) / total, 2), kernel: round(d('kernel') / total, 2) } : undefined;
}
