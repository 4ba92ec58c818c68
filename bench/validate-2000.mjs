// Times loadSources (parse, schema, semantic checks, resolve) over a 2,000-origin estate.
// Build first: npx tsc -p . && node bench/validate-2000.mjs [--runs N] [--origins N] [--save FILE]
// --save keeps a copy of the generated estate, e.g. to profile `rmm validate -f FILE` with node --cpu-prof.
// Target: under 1 second per run.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, origins: { type: 'string', default: '2000' }, save: { type: 'string' } } });
const runs = Number(values.runs);
const origins = Number(values.origins);

const { loadSources } = await import(new URL('../dist/config/load.js', import.meta.url).href).catch(() => {
  console.error('dist/config/load.js is missing: run npx tsc -p . first');
  process.exit(1);
});

const ENVIRONMENTS = 4;
const HOSTS_PER_ENVIRONMENT = 5;

function defaults() {
  return `apiVersion: rmm/v1
kind: Defaults
spec:
  connection:
    user: rmm
    sudo: true
    auth:
      keyEnv: RMM_SSH_KEY
    knownHostsFile: ./known_hosts
    connectTimeout: 20s
  policy: every-30m
  mode: dr
  exclude:
    volumes: [/dev/mapper/asm*]
    paths: [/tmp/*, /var/tmp/*, "*.swp"]
`;
}

function policies() {
  return `apiVersion: rmm/v1
kind: Policy
metadata:
  name: every-30m
spec:
  schedule:
    interval: 30m
  rpo: 1h
  snapshot: { provider: lvm, minFreePercent: 20 }
  retention: { recoveryPoints: 4, maxAge: 2d }
  bandwidthLimit: 200MiB/s
  parallelStreams: 4
---
apiVersion: rmm/v1
kind: Policy
metadata:
  name: nightly
spec:
  schedule:
    cron: "30 1 * * *"
    timezone: Europe/Paris
  rpo: 26h
  retention: { recoveryPoints: 14 }
`;
}

function environment(e) {
  const hosts = Array.from({ length: HOSTS_PER_ENVIRONMENT }, (_, h) => `    - name: store-${h + 1}
      address: 172.${20 + e}.9.${10 + h}
      path: /srv/replicas
      connection:
        user: landing`).join('\n');
  return `apiVersion: rmm/v1
kind: Environment
metadata:
  name: site-${e + 1}
  description: Target site ${e + 1}
spec:
  transfer: ${e % 2 === 0 ? 'direct' : 'relay'}
  hosts:
${hosts}
  network:
    subnets: [172.${20 + e}.0.0/16]
    gateway: 172.${20 + e}.0.1
    dns: [172.${20 + e}.0.53, 172.${20 + e}.0.54]
    searchDomains: [site${e + 1}.example.com]
  ipRemap:
    networks:
      - { from: 10.${e}.0.0/16, to: 172.${20 + e}.0.0/16 }
    gateway: 172.${20 + e}.0.1
    dns: [172.${20 + e}.0.53]
`;
}

function origin(i) {
  const e = i % ENVIRONMENTS;
  return `apiVersion: rmm/v1
kind: Origin
metadata:
  name: srv-${i}
  labels: { app: app-${i % 50}, tier: ${i % 3 === 0 ? 'db' : 'web'} }
spec:
  address: 10.${e}.${Math.floor(i / 250)}.${(i % 250) + 1}
  exclude:
    mounts: [/u02/arch]
    paths: [/var/cache/*, /home/*/.cache]
`;
}

function replica(i) {
  const e = i % ENVIRONMENTS;
  const h = Math.floor(i / ENVIRONMENTS) % HOSTS_PER_ENVIRONMENT;
  const address = `10.${e}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  return `apiVersion: rmm/v1
kind: Replica
metadata:
  name: srv-${i}-dr
spec:
  origin: srv-${i}
  environment: site-${e + 1}
  host: store-${h + 1}
  ${i % 10 === 0 ? 'policy: nightly' : 'mode: dr'}
  hooks:
    preSnapshot:
      - command: [/usr/local/bin/quiesce, srv-${i}]
        timeout: 5m
  ipRemap:
    hostname: srv-${i}-dr
    addresses:
      - { from: ${address}, to: 172.${20 + e}.${Math.floor(i / 250)}.${(i % 250) + 1} }
`;
}

function estate(n) {
  const docs = [defaults(), policies()];
  for (let e = 0; e < ENVIRONMENTS; e++) docs.push(environment(e));
  for (let i = 0; i < n; i++) docs.push(origin(i));
  for (let i = 0; i < n; i++) docs.push(replica(i));
  return docs.join('---\n');
}

async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return `${cpus().length} cores, ${model.trim()}, Node ${process.version}`;
}

const dir = await mkdtemp(path.join(tmpdir(), 'rmm-bench-'));
try {
  const file = path.join(dir, 'estate.yaml');
  await writeFile(file, estate(origins));
  const text = await readFile(file, 'utf8');
  if (values.save) await writeFile(values.save, text);
  const source = { name: file, baseDir: dir, text };

  const times = [];
  const cpuTimes = [];
  let replicas = 0;
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const result = loadSources([source]);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    const used = process.cpuUsage(cpu);
    cpuTimes.push((used.user + used.system) / 1e3);
    if (!result.spec) {
      console.error(result.diagnostics.slice(0, 10));
      throw new Error('the generated estate is invalid');
    }
    replicas = result.spec.replicas.length;
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const cpuMedian = [...cpuTimes].sort((a, b) => a - b)[Math.floor(cpuTimes.length / 2)];
  console.log(`estate: ${origins} origins, ${replicas} replicas, ${ENVIRONMENTS} environments, ${(text.length / 1024).toFixed(0)} KiB`);
  console.log(`loadSources over ${runs} runs: median ${median.toFixed(0)} ms, min ${sorted[0].toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms`);
  console.log(`first run (cold: schema compile, JIT): ${times[0].toFixed(0)} ms`);
  // CPU time includes the GC's helper threads; wall time suffers when other processes share the cores.
  console.log(`median CPU time (user + system): ${cpuMedian.toFixed(0)} ms; load average ${loadavg()[0].toFixed(2)}`);
  console.log(`machine: ${await machine()}`);
  if (median > 1000) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
