// 4a. The pure planner: makePlan over 10,000 replicas from recorded observations (a third never
// synced, a third up to date, a third due), in a child process of its own so that its peak RSS is
// its own. Each child times one cold call (as `rmm plan` makes) and several warm ones.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../lib/measure.mjs';
import { timed } from '../lib/proc.mjs';
import { profilesIn, summarizeProfile } from '../lib/cpuprofile.mjs';

export const name = 'planning';
const WORKER = fileURLToPath(new URL('./plan-worker.mjs', import.meta.url));

export async function run(ctx) {
  const { results } = ctx;
  const n = ctx.opts.quick ? 1000 : 10_000;
  const runs = Math.max(3, ctx.runs);
  const out = [];
  for (let r = 0; r < runs; r++) {
    const m = await worker(ctx, n);
    out.push(m);
    ctx.log(`  planning ${n} replicas run ${r + 1}/${runs}: first call ${m.cold.toFixed(3)} s, warm median ${median(m.warm).toFixed(3)} s, load ${m.loadSeconds.toFixed(1)} s, peak RSS ${(m.maxRssKb / 1024).toFixed(0)} MB`);
  }
  const acts = Object.entries(out[0].actions).map(([k, v]) => `${v} ${k}`).join(', ');
  results.add(`planning/${n}/first-call`, { label: `makePlan, ${n} replicas, first call in a fresh process (${acts})`, values: out.map((m) => m.cold), runs: out, extra: { summary: `loading the ${n}-replica estate (not timed here): ${median(out.map((m) => m.loadSeconds)).toFixed(1)} s` } });
  results.add(`planning/${n}/warm`, { label: `makePlan, ${n} replicas, warm (median of each process's calls)`, values: out.map((m) => median(m.warm)) });
  results.add(`planning/${n}/peak-rss`, { label: `peak RSS of a process that loads ${n} replicas and plans them`, unit: 'MB', values: out.map((m) => m.maxRssKb / 1024) });
  results.check(`planning ${n} replicas < 1 s (first call)`, { value: results.median(`planning/${n}/first-call`), op: '<', limit: 1, unit: 's' });
  if (ctx.opts.profile) {
    const dir = path.join(ctx.profileDir, 'planning');
    await worker(ctx, n, dir);
    const files = profilesIn(dir);
    if (files[0]) {
      const node = summarizeProfile(files[0], 12);
      ctx.results.profiles.push({ id: `planning/${n}`, node });
      ctx.log(`  profile planning: top: ${node.functions.slice(0, 6).map((f) => `${f.name} ${f.seconds}`).join('; ')}`);
    }
  }
}

async function worker(ctx, n, profileDir) {
  const argv = [process.execPath, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), WORKER, '--dist', ctx.dist, '--replicas', String(n), '--runs', '5'];
  const res = await timed(argv);
  return { ...JSON.parse(res.stdout.trim().split('\n').pop()), maxRssKb: res.maxRssKb, wall: res.wall };
}
