/** Polls `done` every 200 ms until it holds; throws with `what()` (the state so far) after `timeoutMs`. */
export async function waitFor(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
