// The bench's own lab instance (RMM_LAB_ID, 2 by default): up with bigger volumes, exec, cut/join, down,
// and CPU accounting of each host's sshd (which reaps every session, and so every command rmm runs).
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './proc.mjs';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const LAB_SH = path.join(REPO, 'lab/lab.sh');
const CLK_TCK = 100; // Linux USER_HZ
const CPUSET_V1 = '/sys/fs/cgroup/cpuset';

/** The CPUs this process may run on (`Cpus_allowed_list` in /proc/self/status), e.g. [0, 1]. */
function allowedCpus() {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').filter(Boolean).flatMap((range) => {
    const [a, b = a] = range.split('-').map(Number);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

function onPath(command) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(path.join(dir, command)));
}

export class BenchLab {
  constructor(id) {
    if (!/^[0-9]$/.test(String(id))) throw new Error(`lab id must be a digit, not ${id}`);
    this.id = String(id);
    this.stateDir = `/run/rmm-lab${this.id === '0' ? '' : this.id}`;
    this.env = { ...process.env, RMM_LAB_ID: this.id };
    delete this.env.RMM_LAB_DIR;
    delete this.env.RMM_LAB_DISKS;
  }

  get info() {
    return JSON.parse(readFileSync(path.join(this.stateDir, 'lab.json'), 'utf8'));
  }

  isUp() {
    return existsSync(path.join(this.stateDir, 'lab.json'));
  }

  /** Volumes are "MOUNTPOINT:FSTYPE:SIZE ..." lists, root first (lab.sh RMM_LAB_*_VOLUMES). */
  async up({ originVolumes, targetVolumes }) {
    await this.sh(['up'], { RMM_LAB_ORIGIN_VOLUMES: originVolumes, RMM_LAB_TARGET_VOLUMES: targetVolumes });
  }

  async down() {
    await this.sh(['down']);
  }

  async cut() {
    await this.sh(['cut']);
  }

  async join() {
    await this.sh(['join']);
  }

  /** Runs `fn` with origin and target unable to reach each other (relay), and joins them again. */
  async whileCut(fn) {
    await this.cut();
    try {
      return await fn();
    } finally {
      await this.join();
    }
  }

  sh(args, extraEnv = {}, opts = {}) {
    return run(['bash', LAB_SH, ...args], { env: { ...this.env, ...extraEnv }, ...opts });
  }

  /** Runs argv inside a host (its netns, mounts and root), as root. */
  exec(host, argv, opts = {}) {
    return run(this.execArgv(host, argv), { env: this.env, ...opts });
  }

  execArgv(host, argv) {
    return ['bash', LAB_SH, 'exec', host, '--', ...argv];
  }

  /** A path inside a host, as seen from this machine. */
  hostPath(host, p) {
    return path.join(this.info.hosts[host].root, p);
  }

  address(host) {
    return this.info.hosts[host].address;
  }

  sshdPid(host) {
    return Number(readFileSync(path.join(this.stateDir, 'hosts', host, 'sshd.pid'), 'utf8').trim());
  }

  /**
   * Exact CPU accounting per host: a cpuacct cgroup (v1, or v2's cpu.stat) holding the host's sshd,
   * so every process it starts (and every one a baseline starts there, see inCgroupArgv) is counted,
   * also after it exited. Without cgroups, the sshd's own and reaped children's times are used.
   */
  setupCpuAccounting() {
    this.cgroups = {};
    const v1 = '/sys/fs/cgroup/cpuacct';
    const base = existsSync(`${v1}/cpuacct.usage`) ? v1 : existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : undefined;
    if (!base) return;
    for (const host of ['origin', 'target']) {
      const dir = `${base}/rmm-bench-lab${this.id}-${host}`;
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(`${dir}/cgroup.procs`, `${this.sshdPid(host)}\n`);
        this.cgroups[host] = dir;
      } catch {
        // no cgroups here: fall back to the sshd's times
      }
    }
  }

  /** Removes the accounting cgroups (once the lab is down, they are empty). */
  releaseCpuAccounting() {
    for (const dir of Object.values(this.cgroups ?? {})) {
      try {
        rmdirSync(dir);
      } catch {
        // still busy, or gone
      }
    }
  }

  /**
   * Whether withHostsOffLastCore can run here: a v1 cpuset hierarchy of its own (not mounted with
   * cpuacct, whose accounting cgroups hold the sshd), writable, two CPUs or more allowed to this
   * process, and taskset.
   */
  canKeepHostsOffLastCore() {
    if (this.pinnable === undefined) {
      const dir = this.#hostsCpuset();
      this.pinnable = allowedCpus().length >= 2 && existsSync(`${CPUSET_V1}/cpuset.cpus`) && !existsSync(`${CPUSET_V1}/cpuacct.usage`) && onPath('taskset');
      try {
        if (this.pinnable) mkdirSync(dir, { recursive: true });
      } catch {
        this.pinnable = false; // read-only, as in a container
      }
    }
    return this.pinnable;
  }

  #hostsCpuset() {
    return `${CPUSET_V1}/rmm-bench-lab${this.id}-hosts`;
  }

  /**
   * Runs `fn(cpu)` with both hosts' sshd (so every session they start) confined to every CPU this
   * process may use but the last, `cpu`, which is left to the rmm process (`fn` pins it there): the
   * rmm host as a machine of its own, as it is in any real relay. Kernel threads (the loop devices'
   * I/O, write-back) stay unconfined. Each sshd moved goes back to its own cpuset afterwards.
   */
  async withHostsOffLastCore(fn) {
    if (!this.canKeepHostsOffLastCore()) throw new Error('the hosts cannot be kept off a core here (see canKeepHostsOffLastCore)');
    const cpus = allowedCpus();
    const dir = this.#hostsCpuset();
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/cpuset.cpus`, cpus.slice(0, -1).join(','));
    writeFileSync(`${dir}/cpuset.mems`, readFileSync(`${CPUSET_V1}/cpuset.mems`, 'utf8'));
    const moved = [];
    try {
      for (const host of ['origin', 'target']) {
        const pid = this.sshdPid(host);
        const home = `${CPUSET_V1}${readFileSync(`/proc/${pid}/cpuset`, 'utf8').trim().replace(/^\/$/, '')}`;
        writeFileSync(`${dir}/cgroup.procs`, `${pid}\n`);
        moved.push({ pid, home });
      }
      return await fn(cpus.at(-1));
    } finally {
      for (const { pid, home } of moved) {
        try {
          writeFileSync(`${home}/cgroup.procs`, `${pid}\n`);
        } catch {
          // that sshd is gone: nothing to put back
        }
      }
      try {
        rmdirSync(dir);
      } catch {
        // a session still closing: the next run removes it
      }
    }
  }

  /** argv, run so that it and its children count as CPU of `host` (a baseline run in the origin). */
  inCgroupArgv(host, argv) {
    const dir = this.cgroups?.[host];
    return dir ? ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...argv] : argv;
  }

  /** CPU seconds used so far by everything the host ran. */
  cpuSeconds(host) {
    const dir = this.cgroups?.[host];
    if (dir) {
      if (existsSync(`${dir}/cpuacct.usage`)) return Number(readFileSync(`${dir}/cpuacct.usage`, 'utf8')) / 1e9;
      return Number(/usage_usec (\d+)/.exec(readFileSync(`${dir}/cpu.stat`, 'utf8'))[1]) / 1e6;
    }
    const stat = readFileSync(`/proc/${this.sshdPid(host)}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return ticks / CLK_TCK;
  }

  /** Remote commands (SSH sessions) the host's sshd started so far, from its log. */
  sessions(host) {
    try {
      return (readFileSync(this.info.hosts[host].sshdLog, 'utf8').match(/Starting session: /g) ?? []).length;
    } catch {
      return 0;
    }
  }
}

/**
 * Samples the CPU time of every process living in a host (its root is the host's root) every
 * `intervalMs`, and on stop returns CPU seconds per command name: a profile of the remote side.
 * Processes shorter than the interval are missed; their time still shows in cpuSeconds().
 */
export function sampleHostCpu(lab, hosts = ['origin', 'target'], intervalMs = 250) {
  const roots = new Map(hosts.map((h) => [lab.info.hosts[h].root, h]));
  const seen = new Map(); // pid:starttime -> { host, comm, seconds }
  const sample = () => {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let root;
      try {
        root = readlinkSync(`/proc/${pid}/root`);
      } catch {
        continue;
      }
      const host = roots.get(root);
      if (!host) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const seconds = (Number(f[11]) + Number(f[12])) / CLK_TCK;
        seen.set(`${pid}:${f[19]}`, { host, comm, seconds });
      } catch {
        // gone
      }
    }
  };
  sample();
  const baseline = new Map([...seen].map(([k, v]) => [k, v.seconds]));
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const out = {};
      for (const [k, v] of seen) {
        const s = v.seconds - (baseline.get(k) ?? 0);
        if (s <= 0) continue;
        const key = `${v.host}:${v.comm}`;
        out[key] = Math.round(((out[key] ?? 0) + s) * 100) / 100;
      }
      return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
    },
  };
}
