// Wakes long-polls and event streams when the state machine applies entries. The apply path calls
// notify() once per applied batch; a waiter passes the version it last saw, so a batch applied
// between its read and its wait is never missed. The number of waiters is bounded.
import type { Env } from "../node/env.js";
import { CairnError } from "./errors.js";

/** The clock and timers a notifier's waits use. */
export type WaitClock = Pick<Env, "monotonicMs" | "after">;

/** Node's clock and timers: the default, for code that is not simulated. */
const systemClock: WaitClock = {
  monotonicMs: () => performance.now(),
  after: (delayMs, run) => {
    const handle = setTimeout(run, delayMs);
    return () => clearTimeout(handle);
  },
};

/** A bounded set of waiters woken whenever entries are applied. */
export class ApplyNotifier {
  readonly #waitersMax: number;
  readonly #clock: WaitClock;
  readonly #waiters = new Set<() => void>();
  #version = 0;

  /**
   * Creates a notifier that holds at most `waitersMax` waiters at once; waits are timed on `clock`
   * (the runtime's Env, so the simulator controls them).
   */
  constructor(waitersMax = 4096, clock: WaitClock = systemClock) {
    this.#waitersMax = waitersMax;
    this.#clock = clock;
  }

  /** The waits' clock: monotonic milliseconds, for deadlines of long-polls. */
  monotonicMs(): number {
    return this.#clock.monotonicMs();
  }

  /** Increments with every applied batch. */
  get version(): number {
    return this.#version;
  }

  /** How many waiters are waiting. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Called by the apply path after a batch is applied: wakes every waiter. */
  notify(): void {
    this.#version++;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Resolves once a batch is applied after `sinceVersion` (at once if one already was), after
   * `timeoutMs`, or when `signal` aborts. Throws ERR_BUSY when `waitersMax` are already waiting.
   */
  wait(sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#version !== sinceVersion || timeoutMs <= 0 || signal?.aborted === true)
      return Promise.resolve();
    if (this.#waiters.size >= this.#waitersMax) {
      return Promise.reject(
        new CairnError("ERR_BUSY", `too many waiting requests on this node (${this.#waitersMax}); retry`),
      );
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        cancel();
        signal?.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      const cancel = this.#clock.after(timeoutMs, done);

      signal?.addEventListener("abort", done, { once: true });
      this.#waiters.add(done);
    });
  }
}
