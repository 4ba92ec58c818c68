import type { Alert } from './alerts.js';

/** What of a webhook's URL may be shown: scheme, host and port (its path or query may be a token). */
export function shownUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(an invalid URL)';
  }
}

/**
 * Posts one alert as JSON. Bounded: each try ends after `timeoutMs`, and a failed one (no answer,
 * or a 5xx) is tried again twice, 1 s then 2 s later; a 4xx is not (the receiver refuses it).
 * Never throws: says whether it was delivered, and why not.
 */
export async function postAlert(url: string, alert: Alert, { timeoutMs = 10_000, attempts = 3 } = {}): Promise<{ delivered: boolean; problem?: string }> {
  let problem = '';
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000 * 2 ** (i - 1)));
    try {
      const answer = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'rmm-watch' },
        body: JSON.stringify(alert),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      await answer.arrayBuffer().catch(() => undefined); // the connection is let go
      if (answer.ok) return { delivered: true };
      problem = `HTTP ${answer.status}`;
      if (answer.status < 500) break;
    } catch (err) {
      // fetch's message names the URL in some versions: only the cause's code is kept.
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      problem = (err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : cause ? `cannot reach it (${cause})` : 'cannot reach it';
    }
  }
  return { delivered: false, problem };
}
