import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HOOK_PHASES, type Hook, type HookPhase, type Replica } from '../../src/config/spec.js';
import { HOOK_KILL_GRACE_MS, HOOK_OUTPUT_TAIL_BYTES, HookError, runHooks, type HookContext } from '../../src/hooks/run.js';
import type { ExecOptions, ExecResult, RemoteHost } from '../../src/transport/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rmm-hooks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Ignores SIGTERM, like its background child (an ignored signal is inherited), and writes the child's pid.
const STUBBORN = (pidFile: string) => `trap "" TERM; sleep 1000 & echo $! > ${pidFile}; wait`;

/** Only what runHooks and hookEnvironment read. */
function replicaWith(phase: HookPhase, hooks: Partial<Hook>[]): Replica {
  const all = Object.fromEntries(HOOK_PHASES.map((p) => [p, []]));
  const full = hooks.map((h) => ({ on: 'local', timeoutMs: 60_000, sudo: false, continueOnError: false, ...h }));
  return {
    name: 'web-dr',
    mode: 'dr',
    origin: { name: 'web-01', endpoint: { address: '198.18.0.10' } },
    target: { endpoint: { address: '198.18.0.20' }, path: '/srv/replicas/web-dr' },
    hooks: { ...all, [phase]: full },
  } as unknown as Replica;
}

/** A host that local hooks must never touch. */
const untouchable = new Proxy({} as RemoteHost, {
  get: (_, prop) => {
    throw new Error(`a local hook used a remote host (${String(prop)})`);
  },
});

function context(replica: Replica, extra: Partial<HookContext> = {}): HookContext & { lines: string[] } {
  const lines: string[] = [];
  return { replica, origin: untouchable, target: untouchable, runId: 'run-1', report: (line) => lines.push(line), lines, ...extra };
}

async function failure(run: Promise<void>): Promise<HookError> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HookError);
  return err as HookError;
}

/** Running, not a zombie: a killed child reparented to init stays one until it is reaped. */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, ms = 2_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (check()) return true;
  return check();
}

const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) if (running(pid)) process.kill(pid, 'SIGKILL');
});

function grandchild(pidFile: string): number {
  const pid = Number(readFileSync(pidFile, 'utf8'));
  leftovers.push(pid);
  return pid;
}

describe('local hooks', () => {
  it('get RMM_* and the listed variables of rmm, not its secrets', async () => {
    process.env['RMM_TEST_SECRET_PASSPHRASE'] = 'correct horse battery staple';
    process.env['LC_TIME'] = 'C.UTF-8';
    try {
      const ctx = context(replicaWith('preSync', [{ command: ['env'] }]));
      await runHooks('preSync', ctx);
      const output = ctx.lines.join('\n');
      expect(output).toContain('RMM_REPLICA=web-dr');
      expect(output).toContain('RMM_PHASE=preSync');
      expect(output).toContain('RMM_TARGET_PATH=/srv/replicas/web-dr');
      expect(output).toContain(`PATH=${process.env['PATH']}`);
      expect(output).toContain('LC_TIME=C.UTF-8');
      expect(output).not.toContain('RMM_TEST_SECRET_PASSPHRASE');
      expect(output).not.toContain('correct horse battery staple');
    } finally {
      delete process.env['RMM_TEST_SECRET_PASSPHRASE'];
      delete process.env['LC_TIME'];
    }
  });

  it('report a failure with its exit code and output, or only warn with continueOnError', async () => {
    const failing = { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] };
    const err = await failure(runHooks('postSync', context(replicaWith('postSync', [failing]))));
    expect(err.facts).toMatchObject({ exitCode: 3, on: 'the rmm host' });
    expect(err.facts.output).toContain('out\n');
    expect(err.facts.output).toContain('err\n');

    const ctx = context(replicaWith('postSync', [{ ...failing, continueOnError: true }, { command: ['true'] }]));
    await runHooks('postSync', ctx);
    expect(ctx.lines.some((l) => l.startsWith('warning: postSync hook'))).toBe(true);
    expect(ctx.lines.at(-1)).toBe('postSync hook true on the rmm host: exit 0');
  });

  it(
    'are killed with their whole process group at their timeout, also when they ignore SIGTERM',
    async () => {
      const pidFile = join(dir, 'timeout.pid');
      const ctx = context(replicaWith('preSnapshot', [{ command: ['sh', '-c', STUBBORN(pidFile)], timeoutMs: 1_000 }]));
      const err = await failure(runHooks('preSnapshot', ctx));
      expect(err.facts.exitCode).toBeNull();
      expect(err.message).toContain('timed out after 1 s and was killed');
      expect(await eventually(() => !running(grandchild(pidFile)))).toBe(true);
    },
    1_000 + HOOK_KILL_GRACE_MS + 10_000,
  );

  it('keep only the tail of a huge output', async () => {
    const ctx = context(replicaWith('preSync', [{ command: ['sh', '-c', 'yes line | head -n 2000000; echo END'] }]));
    await runHooks('preSync', ctx);
    const [line] = ctx.lines;
    expect(line).toMatch(/\[… \d+ bytes of output cut …\]/);
    expect(line).toMatch(/\| END$/);
    // 10 MB were written; each kept `line` is reported as `    | line`.
    expect(line!.length).toBeLessThan(3 * HOOK_OUTPUT_TAIL_BYTES);
  });

  it(
    'are killed with their process group when rmm is told to stop, and no further hook starts',
    async () => {
      const pidFile = join(dir, 'abort.pid');
      const marker = join(dir, 'never');
      const stop = new AbortController();
      const hooks = [{ command: ['sh', '-c', STUBBORN(pidFile)], continueOnError: true }, { command: ['touch', marker] }];
      const run = failure(runHooks('postSync', context(replicaWith('postSync', hooks), { signal: stop.signal })));
      expect(await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 10_000)).toBe(true);
      stop.abort();
      const err = await run;
      expect(err.facts.exitCode).toBeNull();
      expect(err.message).toContain('killed because rmm was stopped');
      expect(await eventually(() => !running(grandchild(pidFile)))).toBe(true);
      expect(existsSync(marker)).toBe(false);
    },
    HOOK_KILL_GRACE_MS + 20_000,
  );
});

/** Runs commands here as SshSession.exec runs them on a host: under `timeout -k 5`, status 124/137 on a timeout. */
const localHost = {
  exec: (argv: readonly string[], opts: ExecOptions = {}) =>
    new Promise<ExecResult>((resolve, reject) => {
      const timed = opts.timeoutMs === undefined ? argv : ['timeout', '-k', '5', String(opts.timeoutMs / 1000), ...argv];
      const env = { ...process.env, ...opts.env };
      execFile(timed[0]!, timed.slice(1), { env }, (err, stdout, stderr) => {
        const exitCode = typeof err?.code === 'number' ? err.code : err ? null : 0;
        if (exitCode === null) reject(err!);
        else if (opts.timeoutMs !== undefined && (exitCode === 124 || exitCode === 137)) reject(new Error(`timed out: ${stderr}`));
        else resolve({ stdout, stderr, exitCode, signal: null });
      });
    }),
} as unknown as RemoteHost;

describe('remote hooks', () => {
  it(
    'lose their whole process group at their timeout, also a child that ignores SIGTERM of a hook that does not',
    async () => {
      const pidFile = join(dir, 'remote.pid');
      const hook = `(trap "" TERM; exec sleep 1000) & echo $! > ${pidFile}; wait`;
      const ctx = context(replicaWith('preSync', [{ on: 'origin', command: ['sh', '-c', hook], timeoutMs: 1_000 }]), { origin: localHost });
      const err = await failure(runHooks('preSync', ctx));
      expect(err.facts.exitCode).toBeNull();
      expect(await eventually(() => !running(grandchild(pidFile)))).toBe(true);
    },
    1_000 + 5_000 + 10_000,
  );

  it('keep their exit code and RMM_* environment', async () => {
    const ctx = context(replicaWith('preSync', [{ on: 'target', command: ['sh', '-c', 'echo "$RMM_PHASE"; exit 4'], continueOnError: true }]), { target: localHost });
    await runHooks('preSync', ctx);
    expect(ctx.lines[0]).toBe('preSync hook sh -c echo "$RMM_PHASE"; exit 4 on target: exit 4\n    | preSync');
  });
});
