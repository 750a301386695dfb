// Wakes long-polls and event streams when the state machine applies entries. The apply path calls
// notify() once per applied batch with the streams the batch touched, and wakes only the waiters
// of those streams (and those that wait for any change); a waiter passes the version it last saw,
// so a batch applied between its read and its wait is never missed (it wakes at once, and reads
// again). The number of waiters is bounded.
import type { Env } from "../node/index.js";
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

/** A bounded set of waiters, each woken when entries that touch what it waits for are applied. */
export class ApplyNotifier {
  readonly #waitersMax: number;
  readonly #clock: WaitClock;
  /** Every waiter, to count and bound them. */
  readonly #waiters = new Set<() => void>();
  /** Waiters for any change. */
  readonly #waitingForAny = new Set<() => void>();
  /** Waiters by the stream they wait for (a waiter may wait for several). */
  readonly #waitingFor = new Map<string, Set<() => void>>();
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

  /**
   * Called by the apply path after a batch is applied: wakes the waiters of the streams in
   * `touched` and those waiting for any change; every waiter when `touched` is not given.
   */
  notify(touched?: Iterable<string>): void {
    this.#version++;
    if (touched === undefined) {
      for (const wake of [...this.#waiters]) wake();
      return;
    }
    const woken = new Set(this.#waitingForAny);
    for (const key of touched) for (const wake of this.#waitingFor.get(key) ?? []) woken.add(wake);
    for (const wake of woken) wake();
  }

  /**
   * Resolves once a batch that touches one of the streams `keys` (any batch, without `keys`) is
   * applied after `sinceVersion` (at once if any batch already was), after `timeoutMs`, or when
   * `signal` aborts. Throws ERR_BUSY when `waitersMax` are already waiting.
   */
  wait(
    sinceVersion: number,
    timeoutMs: number,
    signal?: AbortSignal,
    keys?: readonly string[],
  ): Promise<void> {
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
        if (keys === undefined) this.#waitingForAny.delete(done);
        else {
          for (const key of keys) {
            const set = this.#waitingFor.get(key);
            set?.delete(done);
            if (set?.size === 0) this.#waitingFor.delete(key);
          }
        }
        resolve();
      };
      const cancel = this.#clock.after(timeoutMs, done);

      signal?.addEventListener("abort", done, { once: true });
      this.#waiters.add(done);
      if (keys === undefined) this.#waitingForAny.add(done);
      else {
        for (const key of keys) {
          let set = this.#waitingFor.get(key);
          if (set === undefined) {
            set = new Set();
            this.#waitingFor.set(key, set);
          }
          set.add(done);
        }
      }
    });
  }
}
