// The shape of the machine and of the software a result was measured with.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function sh(argv, opts = {}) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts }).trim();
  } catch (err) {
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() || 'unknown';
  }
}

function firstLine(s) {
  return s.split('\n')[0];
}

export function machineShape(lab, repo) {
  const cpu = os.cpus();
  const inHost = (argv) => sh(lab.execArgv('origin', argv), { env: lab.env });
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.release()} ${os.arch()}`,
    os: /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown',
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    rsyncLab: firstLine(inHost(['rsync', '--version'])),
    opensshLab: firstLine(inHost(['sh', '-c', 'ssh -V 2>&1'])),
    tarLab: firstLine(inHost(['tar', '--version'])),
    rsyncHost: firstLine(sh(['rsync', '--version'])),
    opensshHost: firstLine(sh(['sh', '-c', 'ssh -V 2>&1'])),
    rmm: rmmVersion(repo),
  };
}

/** The commit rmm was measured at, and whether (and how) its sources differed from it. */
function rmmVersion(repo) {
  const git = (...args) => sh(['git', '-C', repo, ...args]);
  const diff = git('diff', 'HEAD', '--', 'src');
  return {
    commit: git('rev-parse', 'HEAD'),
    subject: git('log', '-1', '--format=%s'),
    srcDirty: diff.length > 0,
    srcDiffSha256: diff ? createHash('sha256').update(diff).digest('hex').slice(0, 16) : undefined,
    distNewestFile: newest(path.join(repo, 'dist')),
  };
}

function newest(dir) {
  let best = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else best = Math.max(best, statSync(p).mtimeMs);
    }
  };
  try {
    walk(dir);
  } catch {
    return undefined;
  }
  return new Date(best).toISOString();
}
