// The round trip of one remote command over rmm's transport (one SSH session, commands one after
// another), as is, and with TCP_NODELAY on the session's socket (NODELAY=1).
//   node bench/run.mjs --setup-only && node bench/experiments/remote-command-latency.mjs && NODELAY=1 node bench/experiments/remote-command-latency.mjs

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BenchLab, REPO } from '../lib/lab.mjs';

const lab = new BenchLab(process.env.BENCH_LAB_ID ?? 2);
const info = lab.info;
const dist = process.env.RMM_DIST ?? path.join(REPO, 'dist');
const { openSession } = await import(pathToFileURL(path.join(dist, 'transport/session.js')).href);
for (const [user, sudo] of [['root', false], ['rmm', true]]) {
  const s = await openSession({ host: info.hosts.origin.address, port: 22, user, auth: { keyFile: info.clientKey }, knownHostsFile: info.knownHosts, trustNewHostKeys: false, sudo, ciphers: ['aes128-gcm@openssh.com'], connectTimeoutMs: 15000 });
  if (process.env.NODELAY) s.sshClient().setNoDelay(true);
  for (const argv of [['true'], ['sh', '-c', 'cat /etc/hostname; mkdir -p /tmp/x', 'x']]) {
    const times = [];
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      await s.exec(argv, { sudo });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(`${user}${sudo ? ' + sudo' : ''}${process.env.NODELAY ? ', TCP_NODELAY' : ''}: ${argv.join(' ').slice(0, 40)}: median ${times[20].toFixed(1)} ms, p90 ${times[36].toFixed(1)} ms`);
  }
  await s.close();
}
