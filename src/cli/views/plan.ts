import type { Plan, PlannedAction } from '../../plan/plan.js';

const SYMBOL: Record<PlannedAction['kind'], string> = { sync: '~', fixup: '~', rollback: '~', none: ' ', blocked: '!' };

/** The plan as people read it: each replica's action and why, what it copies, and every step that changes something. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  for (const a of plan.actions) {
    lines.push(`${SYMBOL[a.kind]} replica ${a.replica}: ${a.kind === 'none' ? 'no changes' : a.kind === 'fixup' ? 'fixup (no copy)' : a.kind === 'rollback' ? `rollback to ${a.rollback?.point ?? '?'} (no copy)` : a.kind}`);
    for (const r of a.reasons) lines.push(`    ${r}`);
    for (const fs of a.filesystems ?? []) lines.push(`    copy ${fs.mountPoint} (${fs.fsType}) from a ${fs.provider} snapshot`);
    for (const s of a.skipped ?? []) lines.push(`    skip ${s.mountPoint} (${s.reason})`);
    const steps = a.sync?.steps ?? a.fixup?.steps ?? a.rollback?.steps ?? [];
    if (steps.length > 0) {
      lines.push('    steps:');
      steps.forEach((s, i) => {
        if (!s.changes) return;
        const when = s.when === 'changed' ? ' (unless the origin is unchanged)' : '';
        lines.push(`      ${String(i + 1).padStart(2)}. ${s.id}: ${s.detail}${when}`);
      });
    }
    const diffs = [...(a.sync?.fixups?.files ?? []), ...(a.fixup?.changes ?? [])].map((f) => f.diff);
    if (diffs.length > 0) {
      lines.push(`    fixups (${a.fixup ? `recovery point ${a.fixup.point} as it is now -> adapted anew` : 'the copy only'}; the origin is never changed):`);
      for (const diff of diffs) for (const line of diff.replace(/\n$/, '').split('\n')) lines.push(`      ${line}`);
    }
  }
  const count = (k: PlannedAction['kind']): number => plan.actions.filter((a) => a.kind === k).length;
  const fixup = count('fixup') > 0 ? `${count('fixup')} to fix up, ` : '';
  const rollback = count('rollback') > 0 ? `${count('rollback')} to roll back, ` : '';
  lines.push('', `Plan: ${count('sync')} to sync, ${fixup}${rollback}${count('none')} unchanged, ${count('blocked')} blocked.`);
  return `${lines.join('\n')}\n`;
}

/** `rmm plan -o json`: the plan with a format version and a summary. */
export function planJson(plan: Plan): Record<string, unknown> {
  const count = (k: PlannedAction['kind']): number => plan.actions.filter((a) => a.kind === k).length;
  return {
    formatVersion: 1,
    ...plan,
    summary: { sync: count('sync'), fixup: count('fixup'), rollback: count('rollback'), unchanged: count('none'), blocked: count('blocked') },
    changesPending: count('sync') + count('fixup') + count('rollback') > 0,
  };
}
