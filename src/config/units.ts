/** Parses durations of the language (30s, 15m, 1h30m, 7d) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') return undefined;
  const [d, h, min, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number];
  return (((d * 24 + h) * 60 + min) * 60 + s) * 1000;
}

export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join('');
}

const RATE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses bandwidth limits (800KiB/s, 50MiB/s, 1GB/s) into bytes per second. */
export function parseRate(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|KB|MB|GB)\/s$/.exec(text);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * RATE_UNITS[m[2]!]!);
}
