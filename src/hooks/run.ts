import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Hook, HookPhase, Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { RemoteHost } from '../transport/index.js';

export class HookError extends RmmError {
  constructor(readonly facts: { replica: string; phase: HookPhase; hook: string; on: string; exitCode: number | null; output: string }) {
    super('hook.failed', `${facts.phase} hook ${facts.hook} on ${facts.on} failed (exit ${facts.exitCode ?? 'signal'}): ${facts.output.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}

export interface HookContext {
  readonly replica: Replica;
  /** Absent where a run does not reach the origin (a fixup re-run): a hook on the origin is then refused. */
  readonly origin?: RemoteHost;
  readonly target: RemoteHost;
  readonly runId: string;
  /** For the fixup phases: the copy being adapted, on the target (RMM_TARGET_ROOT). */
  readonly targetRoot?: string;
  /** Reports each hook and its output; a failed hook with continueOnError is reported, not thrown. */
  readonly report: (line: string) => void;
  /**
   * rmm is told to stop: a running local hook's process group is killed (SIGTERM, SIGKILL after
   * HOOK_KILL_GRACE_MS) and no further hook starts. Local hooks run in their own process group,
   * which a terminal's Ctrl-C does not reach, so a caller that stops on SIGINT must pass this.
   */
  readonly signal?: AbortSignal;
}

/** A hook's process group gets SIGKILL this long after the SIGTERM of its timeout (or of rmm stopping). */
export const HOOK_KILL_GRACE_MS = 5_000;
/** Only the end of a local hook's output is kept (and logged): enough to say why it failed, bounded in memory. */
export const HOOK_OUTPUT_TAIL_BYTES = 64 * 1024;

/**
 * What a local hook (`on: local`) gets from rmm's own environment, besides hookEnvironment's RMM_*
 * variables; everything else is withheld, since rmm's environment holds secrets (the variable
 * `passphraseEnv` names, `keyEnv`'s, an agent socket, tokens) and hook output goes to the log.
 * PATH finds commands as rmm does; HOME, USER, LOGNAME and SHELL are who runs it, which tools read
 * for their own settings; LANG, LC_* and TZ keep messages, encoding and times as the operator's;
 * TMPDIR keeps temporary files where the operator wants them. A trailing `*` is a prefix.
 */
export const LOCAL_HOOK_INHERITED_ENV: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_*', 'TZ', 'TMPDIR'];

// coreutils `timeout`, which runs remote hooks (session.exec), signals its whole process group but
// sends the SIGKILL only if its own child outlives the SIGTERM: a hook that dies of it would leave a
// child ignoring SIGTERM running for good. This shell outlives it instead, so the group gets the SIGKILL
// (`exit $?` keeps the hook from being the last command, which a shell may exec in its own place).
// $1 an uploaded hook script: run by the interpreter its #! line names (with its one argument, as
// the kernel would), else by sh.
export const RUN_SCRIPT = `f=$1; shift
first=; IFS= read -r first < "$f" || :
case $first in
'#!'*) set -f; set -- \${first#??} "$f" "$@"; set +f ;;
*) set -- /bin/sh "$f" "$@" ;;
esac
exec "$@"`;

const REMOTE_HOOK_WRAPPER = `trap 'trap "" TERM; while :; do sleep 1; done' TERM; "$@"; exit $?`;
// After the SIGKILL, how long to wait for output pipes that a process outside the group may hold.
const PIPE_GRACE_MS = 1_000;

interface HookResult {
  exitCode: number | null;
  output: string;
}

/** Runs the replica's hooks of one phase, in order (the defaults' first, then the replica's own). */
export async function runHooks(phase: HookPhase, ctx: HookContext): Promise<void> {
  const hooks = ctx.replica.hooks[phase];
  for (const [index, hook] of hooks.entries()) {
    ctx.signal?.throwIfAborted();
    const name = hook.script ?? hook.command!.join(' ');
    const env = hookEnvironment(phase, ctx);
    const result = hook.on === 'local' ? await runLocal(hook, env, ctx.signal) : await runRemote(hook, env, ctx, phase, index);
    const where = hook.on === 'local' ? 'the rmm host' : hook.on;
    ctx.report(`${phase} hook ${name} on ${where}: exit ${result.exitCode ?? 'signal'}${result.output.trim() ? `\n${indent(result.output)}` : ''}`);
    if (result.exitCode !== 0) {
      const error = new HookError({ replica: ctx.replica.name, phase, hook: name, on: where, exitCode: result.exitCode, output: result.output });
      if (!hook.continueOnError || ctx.signal?.aborted) throw error;
      ctx.report(`warning: ${error.message} (continueOnError)`);
    }
  }
}

export function hookEnvironment(phase: HookPhase, ctx: Pick<HookContext, 'replica' | 'runId' | 'targetRoot'>): Record<string, string> {
  const r = ctx.replica;
  return {
    RMM_REPLICA: r.name,
    RMM_ORIGIN: r.origin.name,
    RMM_ORIGIN_HOST: r.origin.endpoint.address,
    RMM_PHASE: phase,
    RMM_MODE: r.mode,
    RMM_RUN_ID: ctx.runId,
    RMM_TARGET_HOST: r.target.endpoint.address,
    RMM_TARGET_PATH: r.target.path ?? '',
    ...(ctx.targetRoot !== undefined ? { RMM_TARGET_ROOT: ctx.targetRoot } : {}),
  };
}

/**
 * Where a run's hook scripts go on a host; the next run of the replica removes its leftovers on both
 * hosts (src/sync/channel.ts). Not under the origin's work-file name (`/run/.rmm-REPLICA.*`), whose
 * leftover processes that cleanup ends: on hosts that share a process table it would end these too.
 */
export const HOOK_FOLDER_PREFIX = '/run/rmm-hooks.';

export function hookFolder(replica: string, runId: string): string {
  return `${HOOK_FOLDER_PREFIX}${replica}.${runId}`;
}

// $1 the folder, $2 the login user, who writes the script into it and, without sudo, runs it.
const MAKE_HOOK_FOLDER = `set -e
mkdir -p -m 700 -- "$1"
chown -- "$2" "$1"`;

async function runRemote(hook: Hook, env: Record<string, string>, ctx: HookContext, phase: HookPhase, index: number): Promise<HookResult> {
  const session = hook.on === 'origin' ? ctx.origin : ctx.target;
  if (!session) throw new RmmError('hook.no_origin', `${phase} hook ${hook.script ?? hook.command!.join(' ')} runs on the origin, which this run does not reach`);
  let argv: string[];
  let uploaded: string | undefined;
  const dir = hookFolder(ctx.replica.name, ctx.runId);
  if (hook.script !== undefined) {
    // In a folder of the run's, which the next run of this replica removes if this one is killed.
    await session.exec(['sh', '-c', MAKE_HOOK_FOLDER, 'rmm-hook-folder', dir, session.info.user], { sudo: true });
    uploaded = `${dir}/${phase}-${index}`;
    await session.writeFileAtomic(uploaded, await readFile(hook.script), { mode: 0o700, sudo: false });
    // Through its interpreter, not executed: /run is mounted noexec on systemd hosts.
    argv = ['sh', '-c', RUN_SCRIPT, 'rmm-hook-script', uploaded];
  } else {
    argv = [...hook.command!];
  }
  try {
    const res = await session.exec(['sh', '-c', REMOTE_HOOK_WRAPPER, 'rmm-hook', ...argv], { env, sudo: hook.sudo, timeoutMs: hook.timeoutMs, allowFailure: true });
    return { exitCode: res.exitCode, output: res.stdout + res.stderr };
  } catch (err) {
    return { exitCode: null, output: (err as Error).message };
  } finally {
    if (uploaded) await session.exec(['rm', '-rf', '--', dir], { sudo: true, allowFailure: true }).catch(() => {});
  }
}

/** RMM_* and the few variables of rmm's own environment that LOCAL_HOOK_INHERITED_ENV names. */
export function localHookEnvironment(rmm: NodeJS.ProcessEnv, hook: Record<string, string>): Record<string, string> {
  const inherited = (name: string) => LOCAL_HOOK_INHERITED_ENV.some((n) => (n.endsWith('*') ? name.startsWith(n.slice(0, -1)) : name === n));
  const kept = Object.entries(rmm).filter((e): e is [string, string] => e[1] !== undefined && inherited(e[0]));
  return { ...Object.fromEntries(kept), ...hook };
}

function runLocal(hook: Hook, env: Record<string, string>, signal?: AbortSignal): Promise<HookResult> {
  const [file, ...args] = hook.script !== undefined ? [hook.script] : hook.command!;
  return new Promise((resolve) => {
    // In its own process group (detached), so that stopping it reaches everything it started.
    const child = spawn(file!, args, { env: localHookEnvironment(process.env, env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = outputTail(HOOK_OUTPUT_TAIL_BYTES);
    child.stdout.on('data', output.add);
    child.stderr.on('data', output.add);
    const timers: NodeJS.Timeout[] = [];
    let killed: string | undefined;
    let killedHard = false;
    let closed = false;
    let done = false;

    const finish = (exitCode: number | null, note?: string) => {
      if (done) return;
      done = true;
      for (const timer of timers) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ exitCode, output: output.text() + (note ? `${note}\n` : '') });
    };
    const stop = (why: string) => {
      if (killed !== undefined || child.pid === undefined) return;
      killed = why;
      signalGroup(child.pid, 'SIGTERM');
      timers.push(
        setTimeout(() => {
          signalGroup(child.pid!, 'SIGKILL');
          killedHard = true;
          if (closed) finish(null, why);
          else timers.push(setTimeout(() => finish(null, why), PIPE_GRACE_MS));
        }, HOOK_KILL_GRACE_MS),
      );
    };
    const onAbort = () => stop('killed because rmm was stopped');

    timers.push(setTimeout(() => stop(`timed out after ${hook.timeoutMs / 1000} s and was killed`), hook.timeoutMs));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => finish(null, `could not run: ${err.message}`));
    child.once('close', (code, sig) => {
      closed = true;
      if (killed === undefined) finish(code, sig ? `killed by ${sig}` : undefined);
      // Either all of it died of the SIGTERM (nothing left for the SIGKILL) or the SIGKILL was sent.
      else if (killedHard || !groupAlive(child.pid!)) finish(null, killed);
    });
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Keeps the last `max` bytes it is given (in memory, a few times that at most) and counts the rest. */
function outputTail(max: number): { add: (chunk: Buffer) => void; text: () => string } {
  let chunks: Buffer[] = [];
  let size = 0;
  let cut = 0;
  const add = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size <= 2 * max) return;
    const all = Buffer.concat(chunks);
    chunks = [all.subarray(-max)];
    cut += all.length - max;
    size = max;
  };
  const text = () => {
    const all = Buffer.concat(chunks);
    const kept = all.subarray(-max);
    const dropped = cut + all.length - kept.length;
    return `${dropped > 0 ? `[… ${dropped} bytes of output cut …]\n` : ''}${kept.toString('utf8')}`;
  };
  return { add, text };
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    | ${l}`)
    .join('\n');
}
