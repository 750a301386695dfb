// The workloads' clock for real processes: wall time in whole milliseconds since the run began, and
// real timers. The simulator's workloads (test/sim) run on it unchanged.
import type { TimerId, WorkloadClock } from "../sim/scheduler.js";

/** A {@link WorkloadClock} on real time. */
export class RealClock implements WorkloadClock {
  #startMs = performance.now();
  readonly #timers = new Map<TimerId, NodeJS.Timeout>();
  #nextId = 1;

  /**
   * Milliseconds since the clock was made, rounded down: monotonic, so an operation never returns
   * before its call, and two events in one millisecond count as concurrent, never as ordered.
   */
  get nowMs(): number {
    return Math.floor(performance.now() - this.#startMs);
  }

  /** Starts the run's time at zero now (after the cluster came up); call before any timer is set. */
  reset(): void {
    this.#startMs = performance.now();
  }

  after(delayMs: number, fn: () => void, _label = "event"): TimerId {
    const id = this.#nextId++;
    this.#timers.set(
      id,
      setTimeout(() => {
        this.#timers.delete(id);
        fn();
      }, delayMs),
    );
    return id;
  }

  cancel(id: TimerId): boolean {
    const timer = this.#timers.get(id);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.#timers.delete(id);
    return true;
  }

  /** Cancels every timer still pending (the run is over). */
  cancelAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
