import { describe, expect, it } from 'vitest';
import { runSteps, StepFailedError, type Step, type StepEvent } from '../../src/apply/runner.js';
import type { PlannedStep } from '../../src/plan/action.js';

const planned = (id: string, when: PlannedStep['when'] = 'always'): PlannedStep => ({ id, kind: 'copy', on: 'origin', detail: id, when, changes: true });

describe('the step runner', () => {
  it('runs the steps in order, skips the changed-only ones after an unchanged compare, and lets go of what was left held', async () => {
    const log: string[] = [];
    const events: StepEvent[] = [];
    const steps: Step[] = [
      { planned: planned('a'), host: 'h', run: async (s) => (log.push('a'), s.onUndo(async (f) => void log.push(`undo a ${f === undefined ? 'after success' : 'after failure'}`))) },
      { planned: planned('compare'), host: 'h', run: async () => (log.push('compare'), 'unchanged') },
      { planned: planned('copy', 'changed'), host: 'h', run: async () => void log.push('copy') },
      { planned: planned('record'), host: 'h', run: async () => void log.push('record') },
    ];
    expect(await runSteps(steps, (e) => events.push(e))).toEqual({ unchanged: true });
    expect(log).toEqual(['a', 'compare', 'record', 'undo a after success']);
    expect(events.map((e) => `${e.step}:${e.status}`)).toEqual(['a:start', 'a:done', 'compare:start', 'compare:done', 'copy:skipped', 'record:start', 'record:done']);
  });

  it('stops at the first failure, runs every undo newest first even when one fails, and reports the root cause with its step and host', async () => {
    const log: string[] = [];
    const events: StepEvent[] = [];
    const steps: Step[] = [
      { planned: planned('lock'), host: 'target', run: async (s) => s.onUndo(async () => void log.push('unlock')) },
      { planned: planned('snapshot'), host: 'origin', run: async (s) => s.onUndo(async () => { log.push('release'); throw new Error('busy'); }) },
      { planned: planned('record-start'), host: 'target', run: async (s) => s.onUndo(async (f) => void log.push(`record failed: ${(f as Error).message}`)) },
      { planned: planned('copy'), host: 'origin -> target', run: async () => { throw new Error('No route to host'); } },
      { planned: planned('promote'), host: 'target', run: async () => void log.push('promote') },
    ];
    const err = await runSteps(steps, (e) => events.push(e)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect((err as StepFailedError).message).toBe('copy (origin -> target): No route to host');
    expect((err as StepFailedError).step).toBe('copy');
    expect(log).toEqual(['record failed: copy (origin -> target): No route to host', 'release', 'unlock']);
    expect(events.filter((e) => e.status !== 'start' && e.status !== 'done').map((e) => `${e.step}:${e.status}`)).toEqual([
      'copy:failed',
      'record-start:undone',
      'snapshot:undo-failed',
      'lock:undone',
    ]);
  });
});
