import type { Plan, PlannedAction } from '../../plan/plan.js';

const SYMBOL: Record<PlannedAction['kind'], string> = { sync: '~', none: ' ', blocked: '!' };

/** The plan as people read it: each replica's action and why, what it copies, and every step that changes something. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  for (const a of plan.actions) {
    lines.push(`${SYMBOL[a.kind]} replica ${a.replica}: ${a.kind === 'none' ? 'no changes' : a.kind}`);
    for (const r of a.reasons) lines.push(`    ${r}`);
    for (const fs of a.filesystems ?? []) lines.push(`    copy ${fs.mountPoint} (${fs.fsType}) from a ${fs.provider} snapshot`);
    for (const s of a.skipped ?? []) lines.push(`    skip ${s.mountPoint} (${s.reason})`);
    const steps = a.sync?.steps ?? [];
    if (steps.length > 0) {
      lines.push('    steps:');
      steps.forEach((s, i) => {
        if (!s.changes) return;
        const when = s.when === 'changed' ? ' (unless the origin is unchanged)' : '';
        lines.push(`      ${String(i + 1).padStart(2)}. ${s.id}: ${s.detail}${when}`);
      });
    }
    const fixups = a.sync?.fixups?.files ?? [];
    if (fixups.length > 0) {
      lines.push('    fixups (the copy only; the origin is never changed):');
      for (const f of fixups) for (const line of f.diff.replace(/\n$/, '').split('\n')) lines.push(`      ${line}`);
    }
  }
  const count = (k: PlannedAction['kind']): number => plan.actions.filter((a) => a.kind === k).length;
  lines.push('', `Plan: ${count('sync')} to sync, ${count('none')} unchanged, ${count('blocked')} blocked.`);
  return `${lines.join('\n')}\n`;
}

/** `rmm plan -o json`: the plan with a format version and a summary. */
export function planJson(plan: Plan): Record<string, unknown> {
  const count = (k: PlannedAction['kind']): number => plan.actions.filter((a) => a.kind === k).length;
  return {
    formatVersion: 1,
    ...plan,
    summary: { sync: count('sync'), unchanged: count('none'), blocked: count('blocked') },
    changesPending: count('sync') > 0,
  };
}
