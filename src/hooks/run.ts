import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Hook, HookPhase, Replica } from '../config/spec.js';
import { RmmError } from '../errors.js';
import type { SshSession } from '../transport/index.js';

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
  readonly origin: SshSession;
  readonly target: SshSession;
  readonly runId: string;
  /** Reports each hook and its output; a failed hook with continueOnError is reported, not thrown. */
  readonly report: (line: string) => void;
}

/** Runs the replica's hooks of one phase, in order (the defaults' first, then the replica's own). */
export async function runHooks(phase: HookPhase, ctx: HookContext): Promise<void> {
  const hooks = ctx.replica.hooks[phase];
  for (const [index, hook] of hooks.entries()) {
    const name = hook.script ?? hook.command!.join(' ');
    const env = hookEnvironment(phase, ctx);
    const result = hook.on === 'local' ? await runLocal(hook, env) : await runRemote(hook, env, ctx, phase, index);
    const where = hook.on === 'local' ? 'the rmm host' : hook.on;
    ctx.report(`${phase} hook ${name} on ${where}: exit ${result.exitCode ?? 'signal'}${result.output.trim() ? `\n${indent(result.output)}` : ''}`);
    if (result.exitCode !== 0) {
      const error = new HookError({ replica: ctx.replica.name, phase, hook: name, on: where, exitCode: result.exitCode, output: result.output });
      if (!hook.continueOnError) throw error;
      ctx.report(`warning: ${error.message} (continueOnError)`);
    }
  }
}

export function hookEnvironment(phase: HookPhase, ctx: Pick<HookContext, 'replica' | 'runId'>): Record<string, string> {
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
  };
}

async function runRemote(hook: Hook, env: Record<string, string>, ctx: HookContext, phase: HookPhase, index: number): Promise<{ exitCode: number | null; output: string }> {
  const session = hook.on === 'origin' ? ctx.origin : ctx.target;
  let argv: string[];
  let uploaded: string | undefined;
  if (hook.script !== undefined) {
    // Named like the run's other work files, so an interrupted run's leftovers are cleaned with them.
    uploaded = `/tmp/.rmm-${ctx.replica.name}.${ctx.runId}.${phase}-${index}`;
    await session.writeFileAtomic(uploaded, await readFile(hook.script), { mode: 0o700, sudo: false });
    argv = [uploaded];
  } else {
    argv = [...hook.command!];
  }
  try {
    const res = await session.exec(argv, { env, sudo: hook.sudo, timeoutMs: hook.timeoutMs, allowFailure: true });
    return { exitCode: res.exitCode, output: res.stdout + res.stderr };
  } catch (err) {
    return { exitCode: null, output: (err as Error).message };
  } finally {
    if (uploaded) await session.exec(['rm', '-f', '--', uploaded], { sudo: false, allowFailure: true }).catch(() => {});
  }
}

function runLocal(hook: Hook, env: Record<string, string>): Promise<{ exitCode: number | null; output: string }> {
  const [file, ...args] = hook.script !== undefined ? [hook.script] : hook.command!;
  return new Promise((resolve) => {
    execFile(file!, args, { env: { ...process.env, ...env }, timeout: hook.timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : null) : 0;
      resolve({ exitCode: code, output: `${stdout}${stderr}${err && code === null ? err.message : ''}` });
    });
  });
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    | ${l}`)
    .join('\n');
}
