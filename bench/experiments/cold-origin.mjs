// What a cold origin costs a first copy of /bench/SET (default small) in this lab: rsync (the
// baseline) and rmm direct, each with every cache dropped (as the bench measures them) and with the
// origin's data read into the page cache first; and reading the set alone (tar -c, one stream and
// two), cold and cached, with the CPU that reading takes (all cores, iowait excluded) and the read
// requests the data's loop device served. The lab's volumes are loop devices over files on this
// VM's disk: every cold read request passes the loop driver, the backing file and virtio.
//   node bench/run.mjs --setup-only && node bench/experiments/cold-origin.mjs [small|large] [runs]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchLab, REPO } from '../lib/lab.mjs';
import { Rmm } from '../lib/rmm.mjs';
import { writeEstate } from '../lib/estate.mjs';
import { rsyncCopy } from '../lib/baselines.mjs';
import { machineTicks, median } from '../lib/measure.mjs';
import { dropCaches } from '../lib/proc.mjs';

const set = process.argv[2] ?? 'small';
const runs = Number(process.argv[3] ?? 3);
const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
lab.setupCpuAccounting();
const hostDir = lab.hostPath('origin', `/bench/${set}`);
const device = path.basename(execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--target', hostDir], { encoding: 'utf8' }).trim());
const cli = path.join(REPO, 'bench/.work/rmm/dist/cli/main.js');
const rmm = new Rmm({ lab, cli });
const estate = writeEstate(path.join(REPO, 'bench/.work/estates'), lab, { replica: `co-${set}`, root: `/bench/${set}` });
const BASE_DEST = '/srv/replicas/bench-baseline';
const RMM_DEST = `/srv/replicas/co-${set}`;

/** Non-idle CPU ticks of the whole machine (iowait counts as idle), and their rate. */
function busyTicks() {
  const { user, kernel, steal } = machineTicks();
  return user + kernel + steal;
}
const TICKS_PER_SECOND = 100;
const readRequests = () => Number(readFileSync(`/sys/block/${device}/stat`, 'utf8').trim().split(/\s+/)[0]);

async function prepare(cached) {
  rmSync(lab.hostPath('target', BASE_DEST), { recursive: true, force: true });
  rmSync(lab.hostPath('target', RMM_DEST), { recursive: true, force: true });
  await dropCaches();
  if (cached) readSet(1);
}

// find's order, dealt to shares as rmm deals them: every other name.
const names = execFileSync('find', ['.', '-type', 'f'], { cwd: hostDir, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean);
const listDir = mkdtempSync(path.join(os.tmpdir(), 'rmm-cold-origin-'));
process.on('exit', () => rmSync(listDir, { recursive: true, force: true }));
function shareLists(streams) {
  return Array.from({ length: streams }, (_, i) => {
    const file = path.join(listDir, `${streams}-${i}`);
    writeFileSync(file, names.filter((_, j) => j % streams === i).join('\n') + '\n');
    return file;
  });
}
const lists = { 1: shareLists(1), 2: shareLists(2) };

/** tar -c of the set to /dev/null, in `streams` parallel shares. */
function readSet(streams) {
  const tars = lists[streams].map((list) => `tar --no-recursion -cf - -T '${list}' | cat >/dev/null &`).join('\n');
  execFileSync('sh', ['-c', `cd "$0" || exit 1\n${tars}\nwait`, hostDir]);
}

async function measured(fn) {
  const ticks = busyTicks();
  const requests = readRequests();
  const started = performance.now();
  await fn();
  return { seconds: (performance.now() - started) / 1000, cpu: (busyTicks() - ticks) / TICKS_PER_SECOND, requests: readRequests() - requests };
}

const subjects = {
  'read, 1 stream': () => measured(() => readSet(1)),
  'read, 2 streams': () => measured(() => readSet(2)),
  'rsync -aHAXS': () => measured(() => rsyncCopy(lab, { source: `/bench/${set}`, dest: BASE_DEST })),
  'rmm direct': () => measured(() => rmm.apply(estate)),
};
const results = {};
for (let r = 0; r < runs; r++) {
  for (const [name, run] of Object.entries(subjects)) {
    for (const cached of [false, true]) {
      await prepare(cached);
      const m = await run();
      const key = `${name}, ${cached ? 'cached' : 'cold'}`;
      (results[key] ??= []).push(m);
      console.error(`[cold-origin] round ${r + 1}: ${key}: ${m.seconds.toFixed(2)} s, ${m.cpu.toFixed(1)} CPU-s, ${m.requests} read requests on ${device}`);
    }
  }
}
await prepare(false);

console.log(`\n/bench/${set} on ${device}, medians of ${runs} (CPU-s: every core, iowait excluded)\n`);
console.log('| subject | seconds | CPU-s | read requests |');
console.log('| --- | --- | --- | --- |');
for (const [key, ms] of Object.entries(results)) {
  console.log(`| ${key} | ${median(ms.map((m) => m.seconds)).toFixed(2)} | ${median(ms.map((m) => m.cpu)).toFixed(1)} | ${median(ms.map((m) => m.requests))} |`);
}
const m = (key, f) => median(results[key].map(f));
const rsyncRatio = (c) => m(`rsync -aHAXS, ${c}`, (x) => x.seconds) / m(`rmm direct, ${c}`, (x) => x.seconds);
console.log(`\nrmm direct vs rsync: cold ${rsyncRatio('cold').toFixed(2)}x, cached ${rsyncRatio('cached').toFixed(2)}x`);
const extraCpu = m('read, 1 stream, cold', (x) => x.cpu) - m('read, 1 stream, cached', (x) => x.cpu);
const requests = m('read, 1 stream, cold', (x) => x.requests);
console.log(`a cold read of the set costs ${extraCpu.toFixed(1)} CPU-s more than a cached one: ${((extraCpu / requests) * 1e6).toFixed(0)} us per read request (${requests} requests)`);
