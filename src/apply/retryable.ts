import { ConnectError, TimeoutError } from '../transport/index.js';

/** Errors that another run may not meet (a lost connection, a held lock, a timeout); the rest need a person. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof TimeoutError) return true;
  if (err instanceof ConnectError) return ['closed', 'timeout', 'refused', 'unreachable', 'other'].includes(err.facts.reason);
  const code = (err as { code?: unknown })?.code;
  return code === 'replica.locked' || code === 'replica.moved' || code === 'apply.interrupted';
}
