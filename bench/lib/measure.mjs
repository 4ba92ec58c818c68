// One measured run of a command: wall time, CPU where it was spent (this machine's process tree,
// the origin's and the target's sshd trees), and peak RSS of the largest local process.
import { sleep, timed } from './proc.mjs';

export async function measure(lab, argv, opts = {}) {
  const before = { origin: lab.cpuSeconds('origin'), target: lab.cpuSeconds('target'), originSessions: lab.sessions('origin'), targetSessions: lab.sessions('target') };
  const startedAt = Date.now();
  const res = await timed(argv, { env: lab.env, ...opts });
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
