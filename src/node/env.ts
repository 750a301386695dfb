// Everything nondeterministic the runtime touches, behind one object: the wall clock, timers and
// randomness. Production uses the system's; the simulator passes its own, so the same runtime code
// runs under a simulated clock with every timer firing when the event queue says.
import { randomInt } from "node:crypto";
import type { RandomSource } from "../raft/index.js";
import { Prng } from "../util/index.js";

/** Cancels a timer; calling it twice, or after the timer fired, does nothing. */
export type Cancel = () => void;

/** The runtime's view of time and chance. */
export interface Env {
  /** Wall-clock milliseconds since the epoch: stamps proposals (the leader's timestamp). */
  nowMs(): number;
  /** Monotonic milliseconds, for measuring durations (never goes backwards). */
  monotonicMs(): number;
  /** Runs `run` once after `delayMs`. */
  after(delayMs: number, run: () => void): Cancel;
  /**
   * Runs `run` once at the end of the current turn of the event loop, after the I/O callbacks of
   * this turn (setImmediate): what they proposed is gathered by then.
   */
  defer(run: () => void): void;
  /** The randomness the Raft core draws election timeouts from. */
  readonly random: RandomSource;
}

/** The production environment: the system clock, Node timers and a PRNG seeded from crypto. */
export function systemEnv(): Env {
  return {
    nowMs: () => Date.now(),
    monotonicMs: () => performance.now(),
    after(delayMs, run) {
      const handle = setTimeout(run, delayMs);
      return () => clearTimeout(handle);
    },
    defer(run) {
      setImmediate(run);
    },
    random: new Prng(randomInt(0, 2 ** 47)),
  };
}
