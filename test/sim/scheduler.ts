// A discrete-event scheduler with a simulated clock: the only source of time and ordering in a
// simulation. Events run in (time, insertion order), so two runs that schedule the same events in the
// same order run them identically, ties included.
import { assert } from "../../src/util/assert.js";

/** A handle to cancel a scheduled event. */
export type TimerId = number;

/**
 * The part of a clock a client workload uses: the time, and timers it can cancel. The simulator's
 * {@link Scheduler} is one; the real-process fault suite (test/faults) runs the same workloads on a
 * real-time one.
 */
export type WorkloadClock = Pick<Scheduler, "nowMs" | "after" | "cancel">;

/** Limits that turn a runaway simulation into a clear failure instead of a hang. */
export interface SchedulerOptions {
  /** Events run over the scheduler's life before it throws. Default 10 million. */
  readonly eventsMax?: number;
  /** Events queued at once before `after` throws. Default 1 million. */
  readonly pendingEventsMax?: number;
}

/** Thrown when a limit is reached: a livelock, a timer that reschedules itself at zero delay, a flood. */
export class SimulationLimitError extends Error {
  override readonly name = "SimulationLimitError";
  readonly code = "ERR_SIM_LIMIT";
}

interface ScheduledEvent {
  readonly timeMs: number;
  readonly seq: number;
  readonly label: string;
  readonly fn: () => void;
}

const eventsMaxDefault = 10_000_000;
const pendingEventsMaxDefault = 1_000_000;
const recentLabelsMax = 8;

/** Whether `a` runs before `b`: earlier time first, then earlier insertion. */
function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}

/**
 * The simulated clock and event queue. Time is an integer number of milliseconds and moves only when
 * an event runs (or `runUntil` reaches its target time).
 */
export class Scheduler {
  readonly #eventsMax: number;
  readonly #pendingEventsMax: number;
  /** A binary min-heap of events by (time, seq); cancelled events stay until popped. */
  readonly #heap: ScheduledEvent[] = [];
  /** Ids of events queued and not cancelled; a popped event not in it was cancelled. */
  readonly #live = new Set<number>();
  #nowMs = 0;
  #nextSeq = 0;
  #executed = 0;
  readonly #recentLabels: string[] = [];
  /**
   * Runs after every event, when set: the fault injector watches for a moment of the leader's
   * through it, so an aimed fault strikes between two events, before anything else can happen.
   */
  afterEvent: (() => void) | undefined;

  /** Creates a scheduler at time 0. */
  constructor(options: SchedulerOptions = {}) {
    this.#eventsMax = options.eventsMax ?? eventsMaxDefault;
    this.#pendingEventsMax = options.pendingEventsMax ?? pendingEventsMaxDefault;
    assert(this.#eventsMax >= 1 && this.#pendingEventsMax >= 1, "scheduler limits must be >= 1");
  }

  /** The simulated time in milliseconds. */
  get nowMs(): number {
    return this.#nowMs;
  }

  /** How many events have run. */
  get executedEvents(): number {
    return this.#executed;
  }

  /** How many events are queued and not cancelled. */
  get pendingEvents(): number {
    return this.#live.size;
  }

  /** Runs `fn` `delayMs` (a non-negative integer) from now; `label` names it in limit errors. */
  after(delayMs: number, fn: () => void, label = "event"): TimerId {
    assert(
      Number.isSafeInteger(delayMs) && delayMs >= 0,
      `delay must be a non-negative integer, got ${delayMs}`,
    );
    return this.at(this.#nowMs + delayMs, fn, label);
  }

  /** Runs `fn` at absolute time `timeMs` (not in the past). */
  at(timeMs: number, fn: () => void, label = "event"): TimerId {
    assert(
      Number.isSafeInteger(timeMs) && timeMs >= this.#nowMs,
      `cannot schedule at ${timeMs}, now is ${this.#nowMs}`,
    );
    if (this.pendingEvents >= this.#pendingEventsMax) {
      throw new SimulationLimitError(
        `more than ${this.#pendingEventsMax} events pending at t=${this.#nowMs}ms (scheduling "${label}"); recent: ${this.#recentLabels.join(", ")}`,
      );
    }
    const event: ScheduledEvent = { timeMs, seq: this.#nextSeq++, label, fn };
    this.#push(event);
    this.#live.add(event.seq);
    return event.seq;
  }

  /** Cancels a scheduled event; returns false if it already ran, was cancelled, or never existed. */
  cancel(id: TimerId): boolean {
    const removed = this.#live.delete(id);
    // Cancelled events stay in the heap until popped; rebuild it when they dominate, so a timer that
    // is reset on every heartbeat cannot grow the heap without bound.
    if (removed && this.#heap.length > 2 * this.#live.size + 1024) this.#compact();
    return removed;
  }

  /**
   * Runs the next event, advancing the clock to its time. Returns false when nothing is queued.
   * Throws {@link SimulationLimitError} once `eventsMax` events have run.
   */
  step(): boolean {
    for (;;) {
      const event = this.#pop();
      if (event === undefined) return false;
      if (!this.#live.delete(event.seq)) continue;
      if (this.#executed >= this.#eventsMax) {
        throw new SimulationLimitError(
          `more than ${this.#eventsMax} events by t=${this.#nowMs}ms: a runaway loop? recent: ${this.#recentLabels.join(", ")}`,
        );
      }
      // Invariant: the clock never moves backwards.
      assert(event.timeMs >= this.#nowMs, "event queue out of order");
      this.#nowMs = event.timeMs;
      this.#executed++;
      this.#recentLabels.push(event.label);
      if (this.#recentLabels.length > recentLabelsMax) this.#recentLabels.shift();
      event.fn();
      this.afterEvent?.();
      return true;
    }
  }

  /**
   * Runs events until a target. With a number: every event due at or before that time, then the clock
   * stands at that time. With a predicate: until it holds (checked before each event) or the queue is
   * empty or `deadlineMs` (default unbounded) passes. Returns whether the target was reached.
   */
  runUntil(target: number | (() => boolean), deadlineMs = Number.POSITIVE_INFINITY): boolean {
    if (typeof target === "number") {
      assert(
        Number.isSafeInteger(target) && target >= this.#nowMs,
        `cannot run until ${target}, now is ${this.#nowMs}`,
      );
      for (;;) {
        const next = this.#peekLive();
        if (next === undefined || next.timeMs > target) break;
        this.step();
      }
      this.#nowMs = target;
      return true;
    }
    for (;;) {
      if (target()) return true;
      const next = this.#peekLive();
      if (next === undefined || next.timeMs > deadlineMs) {
        if (Number.isFinite(deadlineMs) && deadlineMs > this.#nowMs) this.#nowMs = deadlineMs;
        return target();
      }
      this.step();
    }
  }

  /** Runs every queued event (and those they schedule) until the queue is empty. */
  runAll(): void {
    while (this.step()) {
      // Each step runs one event; the limits stop a queue that never drains.
    }
  }

  #compact(): void {
    const live = this.#heap.filter((e) => this.#live.has(e.seq));
    // A sorted array is a valid binary heap.
    live.sort((x, y) => (before(x, y) ? -1 : 1));
    this.#heap.length = 0;
    for (const e of live) this.#heap.push(e);
  }

  /** Entries in the heap, cancelled ones included (for tests of the compaction bound). */
  get heapSize(): number {
    return this.#heap.length;
  }

  #peekLive(): ScheduledEvent | undefined {
    for (;;) {
      const top = this.#heap[0];
      if (top === undefined || this.#live.has(top.seq)) return top;
      this.#pop();
    }
  }

  #push(event: ScheduledEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (p === undefined || !before(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  #pop(): ScheduledEvent | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = last;
      let at = -1;
      const l = heap[left];
      if (l !== undefined && before(l, smallest)) {
        smallest = l;
        at = left;
      }
      const r = heap[right];
      if (r !== undefined && before(r, smallest)) {
        smallest = r;
        at = right;
      }
      if (at === -1) break;
      heap[i] = smallest;
      i = at;
    }
    heap[i] = last;
    return top;
  }
}
