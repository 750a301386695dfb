// Simulated time for tests that run the real, asynchronous runtime in one process: the simulator's
// Scheduler is the only clock, and a driver runs its events one at a time, letting every promise
// reaction run between two events, for as long as the clock is started. A test awaits product calls
// as usual; their timers fire when the event queue says, so a run is a function of its seed and never
// of the machine's speed or load.
import type { Cancel, Env } from "../../src/node/env.js";
import { Prng } from "../../src/util/prng.js";
import { Scheduler, type TimerId } from "../sim/scheduler.js";

/** The simulated clock starts here as epoch milliseconds (the leader's timestamp on proposals). */
const epochMs = 1_700_000_000_000;

/** Lets every pending promise reaction run before the next event. */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A condition someone waits on, checked after every event. */
interface Waiter {
  readonly holds: () => boolean;
  readonly deadlineMs: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly what: string;
  /** The wakeup at the deadline, cancelled once the condition holds. */
  readonly deadlineEvent: TimerId;
}

/** A simulated clock that advances by itself while started, one event at a time. */
export class SimClock {
  readonly scheduler = new Scheduler();
  readonly #prng: Prng;
  readonly #waiters = new Set<Waiter>();
  #started = false;
  /** The driver loop while it runs; it ends when the clock is paused or nothing is queued. */
  #driving: Promise<void> | undefined;

  /** Creates a clock at time 0 whose environments draw randomness from `seed`. */
  constructor(seed: number) {
    this.#prng = new Prng(seed);
  }

  /** Simulated milliseconds since the clock was created. */
  get nowMs(): number {
    return this.scheduler.nowMs;
  }

  /** An Env on this clock, with its own random stream (one per node, forked in creation order). */
  env(): Env {
    return {
      nowMs: () => epochMs + this.scheduler.nowMs,
      monotonicMs: () => this.scheduler.nowMs,
      after: (delayMs: number, run: () => void): Cancel => {
        const id = this.scheduler.after(Math.max(0, Math.ceil(delayMs)), run, "timer");
        this.#kick();
        return () => void this.scheduler.cancel(id);
      },
      defer: (run: () => void): void => {
        this.scheduler.after(0, run, "defer");
        this.#kick();
      },
      random: this.#prng.fork(),
    };
  }

  /** Runs `fn` on the clock after `delayMs` simulated milliseconds. */
  after(delayMs: number, fn: () => void, label = "event"): void {
    this.scheduler.after(delayMs, fn, label);
    this.#kick();
  }

  /** Resolves after `ms` simulated milliseconds. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve, "sleep"));
  }

  /**
   * Resolves once `holds()` is true (checked now and after every event), or rejects naming `what`
   * once `timeoutMs` simulated milliseconds pass without it.
   */
  waitFor(what: string, holds: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (holds()) return Promise.resolve();
    const deadlineMs = this.scheduler.nowMs + timeoutMs;
    return new Promise((resolve, reject) => {
      // A wakeup at the deadline, so a timeout is noticed even when nothing else is queued.
      const deadlineEvent = this.scheduler.after(timeoutMs, () => {}, `deadline: ${what}`);
      this.#waiters.add({ holds, deadlineMs, resolve, reject, what, deadlineEvent });
      this.#kick();
    });
  }

  /** Whether the clock is started (it advances whenever events are queued). */
  get started(): boolean {
    return this.#started;
  }

  /** Starts driving the clock: queued events run, one at a time, until {@link pause}. */
  start(): void {
    this.#started = true;
    this.#kick();
  }

  /** Stops driving once the current event's reactions have run; events stay queued. */
  async pause(): Promise<void> {
    this.#started = false;
    await this.#driving;
  }

  #kick(): void {
    if (!this.#started || this.#driving !== undefined) return;
    this.#driving = this.#drive();
  }

  async #drive(): Promise<void> {
    try {
      await settleMicrotasks();
      for (;;) {
        // A woken waiter's continuation runs before time moves on: it sees the event that woke it last.
        if (this.#checkWaiters()) await settleMicrotasks();
        if (!this.#started || !this.scheduler.step()) return;
        await settleMicrotasks();
      }
    } finally {
      // Synchronously with the loop's end, so a timer set by the next reaction starts a new driver.
      this.#driving = undefined;
    }
  }

  /** Ends the waits whose condition holds or whose deadline passed; returns whether any ended. */
  #checkWaiters(): boolean {
    let ended = false;
    for (const waiter of this.#waiters) {
      if (waiter.holds()) {
        this.#waiters.delete(waiter);
        this.scheduler.cancel(waiter.deadlineEvent);
        waiter.resolve();
        ended = true;
      } else if (this.scheduler.nowMs >= waiter.deadlineMs) {
        this.#waiters.delete(waiter);
        waiter.reject(
          new Error(`timed out after waiting until ${waiter.deadlineMs} simulated ms for ${waiter.what}`),
        );
        ended = true;
      }
    }
    return ended;
  }
}
