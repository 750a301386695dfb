import { assert } from "../util/index.js";

/** How reconnect delays grow: exponentially from `baseMs` up to `maxMs`. */
export interface BackoffSettings {
  readonly reconnectBackoffBaseMs: number;
  readonly reconnectBackoffMaxMs: number;
}

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry): an exponential
 * ceiling min(max, base * 2^attempt) with "equal jitter", a uniform draw in [ceiling/2, ceiling].
 * The jitter keeps a cluster whose peers all restarted at once from redialling in lockstep; the
 * floor of half the ceiling keeps a dead peer from being hammered by unlucky small draws.
 */
export function backoffDelayMs(
  attempt: number,
  settings: BackoffSettings,
  below: (bound: number) => number,
): number {
  const { reconnectBackoffBaseMs: base, reconnectBackoffMaxMs: max } = settings;
  assert(Number.isSafeInteger(attempt) && attempt >= 0, `bad backoff attempt ${attempt}`);
  assert(
    Number.isSafeInteger(base) && base >= 1 && Number.isSafeInteger(max) && max >= base,
    "bad backoff settings",
  );
  // 2^31 already exceeds any sane max; capping the exponent keeps the arithmetic exact.
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 31));
  const floor = Math.floor(ceiling / 2);
  return floor + below(ceiling - floor + 1);
}
