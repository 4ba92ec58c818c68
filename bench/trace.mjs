#!/usr/bin/env node
// Runs one rmm command in this process with every remote command timed: what a run spends in
// round trips to each host. Usage: node bench/trace.mjs [--dist DIR] -- RMM-ARGS...
//   e.g. node bench/trace.mjs -- apply -f estate.yaml --yes --sync-now all
// Prints rmm's own output, then the timeline (start offset, host, duration, command) on stderr.
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Runs `args` with rmm's CLI from `dist`; returns its exit code, output and the remote commands it ran. */
export async function traceRmm(dist, args) {
  const { SshSession } = await import(pathToFileURL(path.join(dist, 'transport/session.js')).href);
  const { main } = await import(pathToFileURL(path.join(dist, 'cli/run.js')).href);
  const t0 = performance.now();
  const calls = [];
  // Scripts by their $0 name (rmm-lock, rmm-discover, ...), other commands without their paths.
  const label = (argv) => (argv[0] === 'sh' && argv[1] === '-c' ? argv[3] ?? 'sh -c' : argv.slice(0, argv[0] === 'btrfs' ? 3 : 1).join(' '));
  const wrap = (name, finish) => {
    const original = SshSession.prototype[name];
    SshSession.prototype[name] = async function (...a) {
      const call = { at: (performance.now() - t0) / 1000, host: `${this.info.user}@${this.info.host}`, kind: name, command: name === 'writeFileAtomic' ? `write ${path.basename(a[0])}` : label(a[0]) };
      calls.push(call);
      const result = await original.apply(this, a);
      const done = () => (call.seconds = (performance.now() - t0) / 1000 - call.at);
      if (finish) finish(result, done);
      else done();
      return result;
    };
    return () => (SshSession.prototype[name] = original);
  };
  const restore = [wrap('exec'), wrap('writeFileAtomic'), wrap('spawn', (proc, done) => void proc.exit.then(done))];
  const out = new PassThrough();
  const chunks = [];
  out.on('data', (c) => chunks.push(c));
  try {
    const code = await main(args, { stdout: out, stderr: out });
    return { code, seconds: (performance.now() - t0) / 1000, output: Buffer.concat(chunks).toString('utf8'), calls };
  } finally {
    for (const r of restore) r();
  }
}

/** Round trips summed by host and command, biggest first. */
export function summarizeCalls(calls) {
  const by = new Map();
  for (const c of calls) {
    const host = c.host.replace(/^.*@/, ''); // one line per host, whichever user
    const k = `${host} ${c.kind} ${c.command}`;
    const e = by.get(k) ?? { host, kind: c.kind, command: c.command, count: 0, seconds: 0 };
    e.count++;
    e.seconds += c.seconds ?? 0;
    by.set(k, e);
  }
  return [...by.values()].map((e) => ({ ...e, seconds: Math.round(e.seconds * 1000) / 1000 })).sort((a, b) => b.seconds - a.seconds);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  let dist = fileURLToPath(new URL('../dist', import.meta.url));
  if (argv[0] === '--dist') {
    dist = path.resolve(argv[1]);
    argv.splice(0, 2);
  }
  if (argv[0] === '--') argv.shift();
  const r = await traceRmm(dist, argv);
  process.stdout.write(r.output);
  process.stderr.write(`\nrmm ${argv[0]}: exit ${r.code}, ${r.seconds.toFixed(3)} s, ${r.calls.length} remote commands\n`);
  for (const c of r.calls) process.stderr.write(`  +${c.at.toFixed(3)} s  ${(c.seconds ?? NaN).toFixed(3)} s  ${c.host.padEnd(18)} ${c.kind.padEnd(15)} ${c.command}\n`);
  process.exitCode = r.code;
}
