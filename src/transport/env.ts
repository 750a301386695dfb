import { randomInt } from "node:crypto";

/** A scheduled callback that can be cancelled; cancelling twice or after it ran is harmless. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Time and randomness as the transport sees them, injected so tests (and the node layer's `Env`)
 * decide them: reconnect backoff, jitter, handshake and resume timeouts all go through here.
 */
export interface TransportEnv {
  /** Milliseconds on a monotonic clock. */
  nowMs(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): TimerHandle;
  /** A uniform integer in [0, bound); `Prng` from src/util/prng.ts satisfies this. */
  below(bound: number): number;
}

/** The production environment: the monotonic clock, real timers and crypto-grade randomness. */
export function systemTransportEnv(): TransportEnv {
  return {
    nowMs: () => performance.now(),
    setTimer(delayMs, callback) {
      const timer = setTimeout(callback, delayMs);
      return { cancel: () => clearTimeout(timer) };
    },
    below: (bound) => (bound <= 1 ? 0 : randomInt(bound)),
  };
}
