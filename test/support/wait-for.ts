// Waiting on a condition in tests that run on real time (HTTP servers, child processes, sockets):
// poll the condition itself instead of sleeping "long enough" and hoping it happened. The timeout is
// generous and only turns a hang into a clear failure; it is never what a test asserts.
import { setTimeout as delay } from "node:timers/promises";

/** How long {@link waitFor} waits by default before it fails: far above any expected wait. */
const waitTimeoutMsDefault = 15_000;

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Fails after this many milliseconds without the condition. Default 15 s. */
  readonly timeoutMs?: number;
  /** Milliseconds between two checks. Default 5. */
  readonly intervalMs?: number;
}

/** Thrown when a condition does not hold in time; the message names what was awaited. */
export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError";
}

/**
 * Resolves once `condition()` holds (it may be asynchronous), checking it now and then every
 * `intervalMs`; rejects with a {@link WaitTimeoutError} naming `what` after `timeoutMs`.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? waitTimeoutMsDefault;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (performance.now() >= deadline)
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(options.intervalMs ?? 5);
  }
}
