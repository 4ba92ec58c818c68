// Summaries of V8 .cpuprofile files (node --cpu-prof): where the rmm process spends its CPU.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Self time by function and by module (file, or the dependency's package), and total sampled time. */
export function summarizeProfile(file, top = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of prof.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const dt = (prof.endTime - prof.startTime) / 1e6 / Math.max(1, prof.samples.length);
  const fns = new Map();
  const mods = new Map();
  let idle = 0;
  let total = 0;
  for (const [id, n] of counts) {
    const node = byId.get(id);
    const cf = node.callFrame;
    const seconds = n * dt;
    total += seconds;
    if (cf.functionName === '(idle)') {
      idle += seconds;
      continue;
    }
    const where = moduleOf(cf.url);
    const fn = `${cf.functionName || '(anonymous)'} ${where}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fns.set(fn, (fns.get(fn) ?? 0) + seconds);
    mods.set(where, (mods.get(where) ?? 0) + seconds);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, s]) => ({ name, seconds: Math.round(s * 1000) / 1000 }));
  return { file, wallSeconds: round(total), busySeconds: round(total - idle), functions: sorted(fns), modules: sorted(mods) };
}

function moduleOf(url) {
  if (!url) return '(native/gc)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 13).split('/').slice(0, 1).join('/');
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? url.slice(dist + 1) : path.basename(url);
}

export function profilesIn(dir) {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}
