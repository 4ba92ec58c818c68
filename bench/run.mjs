#!/usr/bin/env node
// rmm benchmarks on the namespace lab (needs root). `npm run bench` (= node bench/run.mjs) runs them
// all; see bench/README.md. Build rmm first: npx tsc -p .
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { prepareBaselines } from './lib/baselines.mjs';
import { dataParams, ensureData, ensureTinyData, mib, totalBytes } from './lib/data.mjs';
import { BenchLab, REPO } from './lib/lab.mjs';
import { machineShape } from './lib/machine.mjs';
import { Results } from './lib/report.mjs';
import { Rmm } from './lib/rmm.mjs';
import * as firstCopy from './scenarios/first-copy.mjs';
import * as resync from './scenarios/resync.mjs';
import * as fixedCost from './scenarios/fixed-cost.mjs';
import * as planning from './scenarios/planning.mjs';
import * as observePlan from './scenarios/observe-plan.mjs';
import * as anatomy from './scenarios/anatomy.mjs';

const SCENARIOS = [firstCopy, resync, fixedCost, planning, observePlan, anatomy];
/** What runs without --only; anatomy (a breakdown for engine work) is asked for by name. */
const DEFAULT = ['first-copy', 'resync', 'fixed-cost', 'planning', 'observe-plan'];
const HELP = `usage: node bench/run.mjs [options]     (npm run bench -- [options])

  --quick            small smoke version: 5,000 small files (50 MiB), 4 x 32 MiB, 1 run each
  --only NAMES       comma-separated scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}
                     (default: all but anatomy, a breakdown of a first copy's time)
  --runs N           runs per figure (default 3; --quick 1); medians are reported
  --scale F          data size factor for the full version (default 1: 100,000 files / 1 GiB, 4 x 512 MiB)
  --profile          after the timed runs, one more run of each rmm subject with node --cpu-prof and a
                     sampler of the hosts' processes (where the CPU goes), summarised in the JSON
  --cold-resync      drop caches before each re-sync run too (first copies always start cold)
  --streams N        also time a first copy with policy parallelStreams N
  --lab-id N         the lab instance to use (default 2: /run/rmm-lab2, 198.18.2.0/24); it is torn down
  --reuse-lab        keep using a bench lab that is up with the same volumes (and its data)
  --keep-lab         leave the lab up at the end (default: lab.sh down)
  --setup-only       bring the lab up with all the data, leave it up, and stop (for bench/experiments/)
  --out DIR          where the JSON goes (default bench/results)
`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    scale: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    'cold-resync': { type: 'boolean', default: false },
    streams: { type: 'string', default: '0' },
    'lab-id': { type: 'string', default: '2' },
    'reuse-lab': { type: 'boolean', default: false },
    'keep-lab': { type: 'boolean', default: false },
    'setup-only': { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(REPO, 'bench/results') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags['setup-only']) {
  flags['keep-lab'] = true;
  flags['reuse-lab'] = true;
  flags.only = 'first-copy,resync,fixed-cost';
}
if (flags.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const opts = {
  quick: flags.quick,
  runs: Number(flags.runs ?? (flags.quick ? 1 : 3)),
  scale: Number(flags.scale),
  profile: flags.profile,
  coldResync: flags['cold-resync'],
  streams: Number(flags.streams),
  only: flags.only ? flags.only.split(',').map((s) => s.trim()) : DEFAULT,
};
for (const name of opts.only) if (!SCENARIOS.some((s) => s.name === name)) die(`--only: no scenario '${name}' (${SCENARIOS.map((s) => s.name).join(', ')})`);
if (!(opts.runs >= 1) || !(opts.scale > 0)) die('--runs must be at least 1 and --scale above 0');
if (process.getuid?.() !== 0) die('the bench needs root (it runs the namespace lab)');
if (!existsSync(path.join(REPO, 'dist/cli/main.js'))) die('dist/ is missing: build rmm first (npx tsc -p .)');

const started = Date.now();
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const lab = new BenchLab(flags['lab-id']);
const params = dataParams({ scale: opts.scale, quick: opts.quick });
const dist = snapshotRmm();
const rmm = new Rmm({ lab, cli: path.join(dist, 'cli/main.js') });
const results = new Results();
const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
const ctx = {
  lab,
  rmm,
  results,
  params,
  runs: opts.runs,
  opts,
  dist,
  log,
  estates: path.join(REPO, 'bench/.work/estates'),
  profileDir: path.join(flags.out, 'profiles', stamp),
};

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: ${flags['keep-lab'] ? 'leaving the lab up' : 'bringing the lab down'}`);
    if (!flags['keep-lab']) await lab.down().catch((e) => log(`lab down failed: ${e.message}`));
    lab.releaseCpuAccounting();
    process.exit(130);
  });
}

let machine;
const errors = [];
try {
  await bringUp();
  lab.setupCpuAccounting();
  prepareBaselines(lab);
  machine = machineShape(lab, REPO);
  log(`machine: ${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB, kernel ${machine.kernel}, load ${machine.loadAverageAtStart.join(' ')}`);
  // One filesystem per first-copy data set; each re-sync filesystem holds both sets.
  const datasets = [
    ...(opts.only.some((n) => ['first-copy', 'anatomy'].includes(n)) ? [['small', ['small']], ['large', ['large']]] : []),
    ...(opts.only.includes('resync') ? [['xfs', ['small', 'large']], ['btrfs', ['small', 'large']]] : []),
  ];
  for (const [fs, sets] of datasets) ensureData(lab.stateDir, fs, lab.hostPath('origin', `/bench/${fs}`), params, sets, log);
  if (flags['setup-only']) {
    ensureTinyData(lab.hostPath('origin', '/bench/tiny'), params.seed);
    log(`lab ${lab.id} is up with the bench data (${lab.stateDir}); bring it down with: RMM_LAB_ID=${lab.id} bash lab/lab.sh down`);
    process.exit(0);
  }
  for (const scenario of SCENARIOS.filter((s) => opts.only.includes(s.name))) {
    log(`== ${scenario.name}`);
    rmm.scope = scenario.name;
    try {
      await scenario.run(ctx);
    } catch (err) {
      errors.push({ scenario: scenario.name, error: err.stack ?? String(err) });
      log(`${scenario.name} FAILED: ${err.stack ?? err}`);
      await lab.join().catch(() => {});
    }
  }
  memoryFigures();
} finally {
  if (!flags['keep-lab'] && !interrupted) {
    log('bringing the lab down');
    await lab.down().catch((e) => log(`lab down failed: ${e.message}`));
    lab.releaseCpuAccounting();
  }
}

for (const e of errors) results.note(`scenario ${e.scenario} failed: ${e.error.split('\n')[0]}`);
const file = results.write(flags.out, {
  date: new Date().toISOString(),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  machine,
  options: { ...opts, labId: lab.id },
  data: { ...params, totalBytes: totalBytes(params) },
  errors,
});
process.stdout.write(`\nrmm bench${opts.quick ? ' (quick)' : ''}: ${machine ? `${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, kernel ${machine.kernel}, ${machine.os}; Node ${machine.node}; lab ${machine.rsyncLab}, ${machine.opensshLab}` : ''}\n`);
process.stdout.write(`data: ${params.small.files} small files (${mib(params.small.bytes)}), ${params.large.files} x ${mib(params.large.bytes)}; ${opts.runs} run(s) per figure; rmm ${machine?.rmm.commit.slice(0, 12)}${machine?.rmm.srcDirty ? ' + uncommitted src changes' : ''}\n\n`);
process.stdout.write(`${results.table()}\n\nJSON: ${file}\n`);
process.exitCode = errors.length ? 1 : 0;

// ---------------------------------------------------------------------------------------------

function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

/** A private copy of the built rmm, so a rebuild during the run changes nothing measured. */
function snapshotRmm() {
  const dir = path.join(REPO, 'bench/.work/rmm');
  rmSync(dir, { recursive: true, force: true });
  for (const p of ['dist', 'schemas', 'package.json']) cpSync(path.join(REPO, p), path.join(dir, p), { recursive: true });
  return path.join(dir, 'dist');
}

/** Volumes sized for the data plus room (btrfs snapshots need 15% free; the target holds two copies). */
function volumes() {
  const total = totalBytes(params);
  const gib = (bytes, min) => `${Math.max(min * 1024, Math.ceil(bytes / 2 ** 28) * 256)}M`;
  const room = (bytes) => gib(bytes * 1.3 + 2 ** 29, 0.5);
  const large = params.large.files * params.large.bytes;
  return {
    originVolumes: `/:btrfs:3G /bench/small:xfs:${room(params.small.bytes)} /bench/large:xfs:${room(large)} /bench/xfs:xfs:${room(total)} /bench/btrfs:btrfs:${room(total)} /bench/tiny:btrfs:256M`,
    // A btrfs target too: recovery points there are subvolume snapshots (the re-sync on btrfs compares both).
    targetVolumes: `/:xfs:2G /srv/replicas:xfs:${gib(total * 2.5 + 2 ** 30, 1)} /srv/snapshots:btrfs:${gib(total * 2.5 + 2 ** 30, 1)}`,
  };
}

async function bringUp() {
  const want = volumes();
  const marker = path.join(lab.stateDir, 'bench-volumes.json');
  if (flags['reuse-lab'] && lab.isUp() && existsSync(marker) && readFileSync(marker, 'utf8') === JSON.stringify(want)) {
    log(`lab ${lab.id}: reusing (${lab.stateDir})`);
    await lab.join();
    return;
  }
  log(`lab ${lab.id}: up with origin "${want.originVolumes}", target "${want.targetVolumes}"`);
  await lab.up(want);
  writeFileSync(marker, JSON.stringify(want));
}

function memoryFigures() {
  const byScope = new Map();
  for (const s of rmm.samples) byScope.set(s.scope, [...(byScope.get(s.scope) ?? []), s.maxRssKb / 1024]);
  let peak = 0;
  for (const [scope, mbs] of byScope) {
    results.add(`memory/${scope}`, { label: `peak RSS of the rmm process, every run of ${scope} (figure: the max)`, unit: 'MB', values: mbs, extra: { summary: `max ${Math.max(...mbs).toFixed(0)} MB over ${mbs.length} runs` } });
    results.figures.at(-1).median = Math.max(...mbs);
    peak = Math.max(peak, ...mbs);
  }
  if (byScope.size) results.check("rmm's memory (peak RSS of any rmm run) < 300 MB", { value: peak, op: '<', limit: 300, unit: 'MB' });
  const plan = results.figures.find((f) => /^planning\/\d+\/peak-rss$/.test(f.id));
  if (plan) results.note(`a process that loads and plans ${plan.id.split('/')[1]} replicas peaks at ${plan.median.toFixed(0)} MB (no target)`);
  void os;
}
