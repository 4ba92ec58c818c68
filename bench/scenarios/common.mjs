// Helpers the scenarios share: target folders, rounds that rotate the order of subjects, summaries.
import os from 'node:os';
import { readdirSync, lstatSync, rmSync } from 'node:fs';
import path from 'node:path';
import { median, round } from '../lib/measure.mjs';
import { sampleHostCpu } from '../lib/lab.mjs';
import { profilesIn, summarizeProfile } from '../lib/cpuprofile.mjs';
import { summarizeCalls, traceRmm } from '../trace.mjs';

/** Removes a folder on the target (from this machine; not timed). */
export function removeOnTarget(lab, p) {
  rmSync(lab.hostPath('target', p), { recursive: true, force: true });
}

/**
 * Runs every subject `runs` times, in rounds; each round starts one subject later, so that slow
 * phases of a shared machine fall on every subject alike. `before(subject)` runs untimed.
 */
export async function rounds(runs, subjects, { before, log }) {
  const out = Object.fromEntries(subjects.map((s) => [s.id, []]));
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const s = subjects[(r + k) % subjects.length];
      await before?.(s, r);
      const m = await s.run(r);
      out[s.id].push(m);
      log(`  ${s.id} run ${r + 1}/${runs}: ${m.wall.toFixed(2)} s${m.note ? ` (${m.note})` : ''}`);
    }
  }
  return out;
}

/** What a figure keeps of each run. */
export function runDetail(m) {
  return { wall: round(m.wall, 3), cpu: m.cpu, ...(m.machine ? { machine: m.machine } : {}), sessions: m.sessions, maxRssKb: m.maxRssKb, ...(m.phases ? { phases: m.phases } : {}), ...(m.stats ? { stats: m.stats } : {}), ...(m.bytes !== undefined ? { bytes: m.bytes } : {}) };
}

/** Medians of CPU and (for rmm) phases over runs, as a short line for the table. */
export function summary(ms) {
  const cpu = (k) => median(ms.map((m) => m.cpu[k])).toFixed(1);
  const rss = Math.max(...ms.map((m) => m.maxRssKb ?? 0)) / 1024;
  const ses = (k) => median(ms.map((m) => m.sessions?.[k] ?? 0));
  const pct = (k) => `${(100 * median(ms.map((m) => m.machine?.[k] ?? 0))).toFixed(0)}%`;
  const machine = ms.every((m) => m.machine) ? `; all cores busy ${pct('busy')} (kernel ${pct('kernel')})` : '';
  return `cpu s: rmm-host ${cpu('local')} origin ${cpu('origin')} target ${cpu('target')}${machine}; ssh sessions: origin ${ses('origin')} target ${ses('target')}; peak RSS ${rss.toFixed(0)} MB`;
}

/**
 * The CPU floor of a subject: the machine's core-seconds over a run (every process and the kernel's
 * own threads, from /proc/stat), median over runs, and the shortest wall time that work could take
 * with every core busy. On a machine whose cores run origin, target and rmm at once, a ratio above
 * what the floors allow cannot be reached without doing less work.
 */
export function cpuFloor(ms, cores = os.cpus().length) {
  if (!ms.every((m) => m.machine)) return undefined;
  const coreSeconds = median(ms.map((m) => m.machine.busy * cores * m.wall));
  return { coreSeconds, seconds: coreSeconds / cores, cores };
}

export function medianPhases(ms) {
  const names = [...new Set(ms.flatMap((m) => Object.keys(m.phases ?? {})))];
  return Object.fromEntries(names.map((n) => [n, round(median(ms.map((m) => m.phases?.[n] ?? 0)), 3)]));
}

export function phaseLine(ph) {
  return Object.entries(ph)
    .filter(([, s]) => s >= 0.01)
    .map(([n, s]) => `${n} ${s.toFixed(2)}`)
    .join(', ');
}

/** Counts the regular files and their bytes under a folder on the target (a copy's check). */
export function countTree(lab, p) {
  let files = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const q = path.join(d, e.name);
      if (e.isDirectory()) walk(q);
      else if (e.isFile()) {
        files++;
        bytes += lstatSync(q).size;
      }
    }
  };
  walk(lab.hostPath('target', p));
  return { files, bytes };
}

/**
 * One extra, untimed run of `fn` with the remote CPU sampler and (for rmm) --cpu-prof into `dir`:
 * where the rmm process and each host spend CPU.
 */
export async function profiled(ctx, id, fn) {
  const dir = path.join(ctx.profileDir, id.replace(/[^\w.-]+/g, '_'));
  const sampler = sampleHostCpu(ctx.lab);
  const m = await fn(dir);
  const remote = sampler.stop();
  const files = profilesIn(dir);
  const node = files.length ? summarizeProfile(files[0], 12) : undefined;
  const entry = { id, wall: round(m.wall, 3), cpu: m.cpu, remoteCpuByCommand: remote, ...(m.phases ? { phases: m.phases } : {}), ...(node ? { node } : {}) };
  ctx.results.profiles.push(entry);
  ctx.log(`  profile ${id}: ${m.wall.toFixed(2)} s; remote CPU by command: ${Object.entries(remote).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (node) ctx.log(`    node: busy ${node.busySeconds} s of ${node.wallSeconds} s; top: ${node.functions.slice(0, 5).map((f) => `${f.name} ${f.seconds}`).join('; ')}`);
  return m;
}

/**
 * Runs rmm in this process with every remote command timed (bench/trace.mjs): the round trips of
 * one run, kept in the JSON (all of them when `all`, else the summary by command).
 */
export async function traced(ctx, id, args, { all = true } = {}) {
  const t = await traceRmm(ctx.dist, args);
  if (t.code !== 0 && t.code !== 3) throw new Error(`traced rmm ${args.join(' ')} exited ${t.code}: ${t.output.slice(-500)}`);
  const byCommand = summarizeCalls(t.calls);
  const inCommands = t.calls.reduce((s, c) => s + (c.kind === 'spawn' ? 0 : c.seconds ?? 0), 0);
  ctx.results.profiles.push({ id: `${id}/remote-commands`, seconds: round(t.seconds, 3), remoteCommands: t.calls.length, firstCommandAt: round(t.calls[0]?.at ?? 0, 3), secondsInExecs: round(inCommands, 3), byCommand, ...(all ? { calls: t.calls.map((c) => ({ ...c, at: round(c.at, 3), seconds: round(c.seconds ?? NaN, 3) })) } : {}) });
  ctx.log(`  trace ${id}: ${t.seconds.toFixed(2)} s in-process, ${t.calls.length} remote commands (first at +${(t.calls[0]?.at ?? 0).toFixed(2)} s, execs sum ${inCommands.toFixed(2)} s); slowest: ${byCommand.slice(0, 6).map((c) => `${c.command} x${c.count} ${c.seconds}`).join('; ')}`);
  return t;
}
