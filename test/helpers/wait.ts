/**
 * The waits every suite shares. Both poll a condition the test cannot be told
 * about by an event (a file another process writes, a log line, a kernel
 * counter); the limit only bounds a hung run, it is never asserted on.
 */

/** Polls `condition` every `everyMs` until it holds; false when `limitMs` passed first. */
export async function pollUntil(condition: () => boolean, limitMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(everyMs);
  }
}

/** Polls `probe` until it returns a value that is not undefined; rejects naming `what` after `limitMs`. */
export async function waitForValue<T>(what: string, probe: () => T | undefined, limitMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await delay(everyMs);
  }
}

/** Resolves after ms milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
