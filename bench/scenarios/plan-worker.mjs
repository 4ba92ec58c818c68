// Child process of the planning scenario: builds a Spec of N replicas (YAML through loadSources) and
// recorded observations for each, then times the pure planner makePlan. Prints one JSON line.
//   node bench/scenarios/plan-worker.mjs --dist DIR --replicas N --runs R
import { parseArgs } from 'node:util';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({ options: { dist: { type: 'string' }, replicas: { type: 'string', default: '10000' }, runs: { type: 'string', default: '7' } } });
const N = Number(values.replicas);
const imp = (p) => import(pathToFileURL(path.join(values.dist, p)).href);
const { loadSources } = await imp('config/load.js');
const { makePlan } = await imp('plan/plan.js');

const NOW = new Date('2026-11-24T12:00:00Z');
const ENVIRONMENTS = 4;
const HOSTS = 5;

function estateText(n) {
  const docs = [
    `apiVersion: rmm/v1
kind: Defaults
spec:
  connection: { user: rmm, sudo: true, auth: { keyEnv: RMM_SSH_KEY }, knownHostsFile: ./known_hosts }
  policy: every-30m
  mode: dr
  exclude: { paths: [/tmp/*, /var/tmp/*] }
`,
    `apiVersion: rmm/v1
kind: Policy
metadata: { name: every-30m }
spec: { schedule: { interval: 30m }, rpo: 1h, retention: { recoveryPoints: 4 } }
`,
    `apiVersion: rmm/v1
kind: Policy
metadata: { name: nightly }
spec: { schedule: { cron: "30 1 * * *", timezone: Europe/Paris }, rpo: 26h, retention: { recoveryPoints: 14 } }
`,
  ];
  for (let e = 0; e < ENVIRONMENTS; e++) {
    const hosts = Array.from({ length: HOSTS }, (_, h) => `    - { name: store-${h + 1}, address: 172.${20 + e}.9.${10 + h}, path: /srv/replicas }`).join('\n');
    docs.push(`apiVersion: rmm/v1
kind: Environment
metadata: { name: site-${e + 1} }
spec:
  transfer: ${e % 2 === 0 ? 'direct' : 'relay'}
  hosts:
${hosts}
`);
  }
  for (let i = 0; i < n; i++) {
    const e = i % ENVIRONMENTS;
    docs.push(`apiVersion: rmm/v1
kind: Origin
metadata: { name: srv-${i} }
spec: { address: 10.${e}.${Math.floor(i / 250) % 256}.${(i % 250) + 1}, exclude: { mounts: [/u02] } }
`);
    docs.push(`apiVersion: rmm/v1
kind: Replica
metadata: { name: srv-${i}-dr }
spec: { origin: srv-${i}, environment: site-${e + 1}, host: store-${(Math.floor(i / ENVIRONMENTS) % HOSTS) + 1}${i % 10 === 0 ? ', policy: nightly' : ''} }
`);
  }
  return docs.join('---\n');
}

function fsys(mountPoint, fsType) {
  return { mountPoint, source: `/dev/${mountPoint === '/' ? 'sda1' : mountPoint.replace(/\W/g, '')}`, fsType, sizeBytes: 100 * 2 ** 30, availableBytes: 50 * 2 ** 30, usedBytes: 50 * 2 ** 30, options: 'rw' };
}

const facts = {
  hostname: 'srv',
  machineId: '0123456789abcdef0123456789abcdef',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  kernel: '6.1.0-18-amd64',
  arch: 'x86_64',
  filesystems: [fsys('/', 'btrfs'), fsys('/var', 'xfs'), fsys('/srv/data', 'xfs'), fsys('/u02', 'xfs')],
  mountPoints: ['/', '/srv/data', '/u02', '/var'],
  blockDevices: [],
  logicalVolumes: [],
  tools: { rsync: true, btrfs: true, fsfreeze: true, lvcreate: true, flock: true, ssh: true, 'ssh-keygen': true, findmnt: true, lsblk: true, setfacl: true },
  networkConfigFiles: ['/etc/network/interfaces'],
};

/** A third without a copy yet, a third synced 10 minutes ago (up to date), a third 3 hours ago (due). */
function observedFor(spec) {
  const replicas = new Map();
  spec.replicas.forEach((r, i) => {
    const kind = i % 3;
    const startedAt = new Date(NOW.getTime() - (kind === 1 ? 10 : 180) * 60_000).toISOString();
    const record =
      kind === 0
        ? undefined
        : {
            schemaVersion: 1,
            replica: r.name,
            origin: { name: r.origin.name, hostname: 'srv', machineId: facts.machineId },
            specHash: r.specHash,
            state: 'consistent',
            runId: `run${i}`,
            updatedAt: startedAt,
            points: [{ id: 'p1', specHash: r.specHash, startedAt, finishedAt: startedAt, snapshots: { '/': 'btrfs' }, pointInTime: true }],
          };
    replicas.set(r.name, { replica: r.name, origin: { facts }, target: { record, tools: { rsync: true, flock: true } } });
  });
  return { at: NOW.toISOString(), replicas };
}

const t0 = performance.now();
const { spec, diagnostics } = loadSources([{ name: 'plan-bench.yaml', baseDir: '/tmp', text: estateText(N) }]);
if (!spec) throw new Error(diagnostics.slice(0, 5).map((d) => d.message).join('\n'));
const loadSeconds = (performance.now() - t0) / 1000;
const observed = observedFor(spec);

const times = [];
let plan;
for (let r = 0; r < Number(values.runs) + 1; r++) {
  const start = performance.now();
  plan = makePlan(spec, observed, NOW);
  times.push((performance.now() - start) / 1000);
}
const kinds = {};
for (const a of plan.actions) kinds[a.kind] = (kinds[a.kind] ?? 0) + 1;
console.log(JSON.stringify({ replicas: spec.replicas.length, loadSeconds, cold: times[0], warm: times.slice(1), actions: kinds, maxRssKb: process.resourceUsage().maxRSS }));
