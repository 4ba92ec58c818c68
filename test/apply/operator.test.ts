/**
 * What an operator sees, on real lab hosts. The progress of a copy: on a terminal (a
 * pseudo-terminal, by script(1)) a bar per replica redrawn in place, in a pipe a plain line when a
 * copy starts and every 10 s, with -o json progress events at most once a second; for a first copy
 * (tar streams) and a sync of changes (rsync). The host keys --trust-new-host-keys adds. Needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import stripAnsi from 'strip-ansi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellJoin } from '../../src/transport/quote.js';
import { expectApplyEvents, expectPlan, expectStatus } from '../support/json-contract.js';
import { labDown, labUp, type Lab } from '../support/lab/lab.js';
import { rmm } from '../support/cli.js';
import { writeLabSpec } from '../support/lab-spec.js';
import { MOSTLY_DATA } from '../support/replica-lab.js';

const isRoot = process.getuid?.() === 0;
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

interface Run {
  code: number | null;
  out: string;
  seconds: number;
}

/** rmm apply on a terminal of 160 x 40 (script(1)), or with its output in a pipe. */
async function apply(spec: string, how: 'terminal' | 'pipe', ...more: string[]): Promise<Run> {
  const argv = [process.execPath, cli, 'apply', '-f', spec, '--yes', '--sync-now', 'all', ...more];
  const child =
    how === 'terminal'
      ? spawn('script', ['-qefc', `stty cols 160 rows 40; exec ${shellJoin(argv)}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = Date.now();
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, out, seconds: (Date.now() - started) / 1000 };
}

const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
/** pretty-bytes' `12.3 MB` as a number (rounded as it shows it). */
const bytesOf = (text: string): number => {
  const [n, unit] = text.split(' ') as [string, string];
  return Number(n) * UNITS[unit]!;
};

interface Shown {
  mountPoint: string;
  percent: number;
  bytes: string;
  total: string;
  files: string;
  filesTotal?: string;
}

// `name /srv/data [####----] 45%, 423 MB of 940 MB, 1,234 of 5,000 files, ...` (terminal) or
// `name: /srv/data 45%, 423 MB of 940 MB, 1,234 files, ...` (log).
const FIGURES = String.raw`(\d+)%, ([\d.]+ [kMG]?B) of ([\d.]+ [kMG]?B), ([\d,]+)(?: of ([\d,]+))? files`;

function shown(m: RegExpExecArray): Shown {
  return { mountPoint: m[1]!, percent: Number(m[2]), bytes: m[3]!, total: m[4]!, files: m[5]!, ...(m[6] ? { filesTotal: m[6] } : {}) };
}

/** Each frame log-update drew (one synchronized-output block each): the bars in it. */
function framesOf(raw: string, replica: string): Shown[][] {
  const bar = new RegExp(String.raw`^${replica} (\S+) \[[#-]{20}\] ${FIGURES}`, 'gm');
  return raw
    .split('\x1b[?2026h')
    .slice(1)
    .map((block) => stripAnsi(block.split('\x1b[?2026l')[0]!).replace(/\r/g, ''))
    .map((text) => [...text.matchAll(bar)].map(shown))
    .filter((bars) => bars.length > 0);
}

/** The `copied` line of each filesystem: its files and bytes. */
function copiedOf(text: string, replica: string): Map<string, { files: string; bytes: string }> {
  const copied = new RegExp(String.raw`^${replica}: copied (\S+): ([\d,]+) files?, ([\d.]+ [kMG]?B),`, 'gm');
  return new Map([...stripAnsi(text).replace(/\r/g, '').matchAll(copied)].map((m) => [m[1]!, { files: m[2]!, bytes: m[3]! }]));
}

/** Within each filesystem the figures never go back; the last are the copy's own. */
function expectHonest(seen: Shown[], copied: Map<string, { files: string; bytes: string }>, final: boolean): void {
  expect(seen.length).toBeGreaterThan(0);
  for (const [mountPoint, done] of copied) {
    const mine = seen.filter((s) => s.mountPoint === mountPoint);
    for (let i = 1; i < mine.length; i++) {
      expect(mine[i]!.percent).toBeGreaterThanOrEqual(mine[i - 1]!.percent);
      expect(bytesOf(mine[i]!.bytes)).toBeGreaterThanOrEqual(bytesOf(mine[i - 1]!.bytes));
      expect(Number(mine[i]!.files.replace(/,/g, ''))).toBeGreaterThanOrEqual(Number(mine[i - 1]!.files.replace(/,/g, '')));
    }
    expect(mine.slice(0, -1).every((s) => s.percent < 100)).toBe(true);
    if (final) expect(mine.at(-1)).toEqual({ mountPoint, percent: 100, bytes: done.bytes, total: done.bytes, files: done.files, filesTotal: done.files });
  }
}

describe.skipIf(!isRoot)('the progress of a copy, on a terminal and in a log (needs root)', () => {
  let lab: Lab;
  let data: string;
  let onTerminal: string;
  let inPipe: string;

  beforeAll(async () => {
    lab = await labUp();
    data = path.join(lab.hosts.origin.root, 'srv/data/progress');
    mkdirSync(path.join(data, 'small'), { recursive: true });
    // Big files for the bytes, small ones for the files: a copy of a few seconds.
    for (let i = 0; i < 4; i++) writeFileSync(path.join(data, `big-${i}`), randomBytes(80 << 20));
    for (let i = 0; i < 3000; i++) writeFileSync(path.join(data, 'small', `f${i}`), randomBytes(1000 + (i % 3000)));
    onTerminal = writeLabSpec(lab, { replica: 'on-terminal', exclude: MOSTLY_DATA });
    inPipe = writeLabSpec(lab, { replica: 'in-pipe', exclude: MOSTLY_DATA, transfer: 'relay' });
  });

  afterAll(async () => {
    if (isRoot && !process.env.RMM_KEEP_LAB) await labDown();
  });

  it('a first copy on a terminal: a bar redrawn in place a few times a second, never going back, ending at the copy\'s figures', async () => {
    const run = await apply(onTerminal, 'terminal');
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain('tar stream(s) into an empty copy');
    const frames = framesOf(run.out, 'on-terminal');
    // One bar per replica; at most four frames a second (and the final one of each filesystem).
    expect(frames.every((bars) => bars.length === 1)).toBe(true);
    expect(frames.length).toBeLessThanOrEqual(4 * run.seconds + 4);
    expectHonest(frames.flat(), copiedOf(run.out, 'on-terminal'), true);
    expect(copiedOf(run.out, 'on-terminal').get('/srv/data')?.files).toMatch(/^3,0\d\d$/);
    // The cursor shows again at the end.
    expect(run.out.lastIndexOf('\x1b[?25h')).toBeGreaterThan(run.out.lastIndexOf('\x1b[?25l'));
  });

  it('a first copy (relayed) in a pipe: a plain line when each copy starts, then every 10 s, never going back', async () => {
    const run = await apply(inPipe, 'pipe');
    expect(run.code, run.out).toBe(0);
    expect(run.out).not.toContain('\x1b');
    const lines = [...run.out.matchAll(new RegExp(String.raw`^in-pipe: (\S+) ${FIGURES}`, 'gm'))].map(shown);
    const copied = copiedOf(run.out, 'in-pipe');
    expect(lines.length).toBeLessThanOrEqual(copied.size * (run.seconds / 10 + 1));
    expect(new Set(lines.map((l) => l.mountPoint))).toEqual(new Set(copied.keys()));
    expectHonest(lines, copied, false);
  });

  it('a sync of changes, on a terminal and in a pipe, and as JSON: the same figures, from what the last point holds', async () => {
    writeFileSync(path.join(data, 'big-0'), randomBytes(48 << 20));
    writeFileSync(path.join(data, 'small', 'new'), 'new\n');
    const tty = await apply(onTerminal, 'terminal');
    expect(tty.code, tty.out).toBe(0);
    expect(tty.out).toMatch(/entries changed or new since recovery point/);
    const frames = framesOf(tty.out, 'on-terminal');
    expect(frames.length).toBeLessThanOrEqual(4 * tty.seconds + 4);
    expectHonest(frames.flat(), copiedOf(tty.out, 'on-terminal'), true);
    // It starts from what the last point holds: most of the data.
    expect(frames.flat().find((s) => s.mountPoint === '/srv/data')!.percent).toBeGreaterThanOrEqual(70);

    const pipe = await apply(inPipe, 'pipe');
    expect(pipe.code, pipe.out).toBe(0);
    const lines = [...pipe.out.matchAll(new RegExp(String.raw`^in-pipe: (\S+) ${FIGURES}`, 'gm'))].map(shown);
    expectHonest(lines, copiedOf(pipe.out, 'in-pipe'), false);

    writeFileSync(path.join(data, 'big-1'), randomBytes(48 << 20));
    const json = await apply(onTerminal, 'pipe', '-o', 'json');
    expect(json.code, json.out).toBe(0);
    const events = expectApplyEvents(json.out);
    expect(events.some((e) => e['type'] === 'progress' && e['mountPoint'] === '/srv/data')).toBe(true);
  });

  it('trusts unknown host keys only when asked, and says each key it adds with its fingerprint', async () => {
    const knownHosts = path.join(mkdtempSync(path.join(tmpdir(), 'rmm-trust-')), 'known_hosts');
    writeFileSync(knownHosts, '');
    const spec = writeLabSpec(lab, { replica: 'on-terminal', exclude: MOSTLY_DATA, knownHosts });
    const refused = await rmm('plan', '-f', spec);
    expect(refused.out + refused.err).toContain(`is not in ${knownHosts}`);
    expect(readFileSync(knownHosts, 'utf8')).toBe('');
    const trusted = await rmm('plan', '-f', spec, '--trust-new-host-keys');
    expect(trusted.code, trusted.out + trusted.err).toBe(0);
    for (const host of [lab.hosts.origin.address, lab.hosts.target.address]) {
      const said = new RegExp(String.raw`^rmm: trusted the new host key of ${host.replaceAll('.', '\\.')}:22: (\S+) (SHA256:\S+), added to ${knownHosts}$`, 'm').exec(trusted.err);
      expect(said, trusted.err).not.toBeNull();
      // The fingerprint said is the one ssh-keygen gives for the line added.
      const line = readFileSync(knownHosts, 'utf8').split('\n').find((l) => l.startsWith(`${host} ${said![1]} `))!;
      expect(execFileSync('ssh-keygen', ['-lf', '-'], { input: line }).toString()).toContain(said![2]);
    }
    const again = await rmm('plan', '-f', spec, '--trust-new-host-keys');
    expect(again.err).not.toContain('trusted the new host key');
    // Under -o json, a JSON line each.
    writeFileSync(knownHosts, '');
    const json = await rmm('plan', '-f', spec, '--trust-new-host-keys', '-o', 'json');
    expect(json.code, json.err).toBe(0);
    const notices = json.err.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(notices.map((n) => [n['notice'], n['host'], n['knownHostsFile']]).sort()).toEqual([
      ['ssh.host_key_trusted', lab.hosts.origin.address, knownHosts],
      ['ssh.host_key_trusted', lab.hosts.target.address, knownHosts],
    ]);
    expectPlan(json.out);
  });

  it("the README's examples/lab.yaml works as written on the lab: both sites consistent, the relayed one after the direct one", async (ctx) => {
    // It names the lab's own addresses and files: lab 0's (as CI runs it).
    if (lab.clientKey !== '/run/rmm-lab/id_ed25519' || lab.hosts.origin.address !== '198.18.0.10') ctx.skip();
    const example = path.resolve(import.meta.dirname, '../../examples/lab.yaml');
    const applied = await rmm('apply', '-f', example, '--yes');
    expect(applied.code, applied.out + applied.err).toBe(0);
    expect(applied.out).toContain('origin-site-b: waited for replica origin-site-a of the same origin');
    const status = await rmm('status', '-f', example, '-o', 'json');
    expect(expectStatus(status.out).map((r) => [r['replica'], r['state']])).toEqual([
      ['origin-site-a', 'consistent'],
      ['origin-site-b', 'consistent'],
    ]);
    expect((await rmm('plan', '-f', example)).code).toBe(0);
  });
});
