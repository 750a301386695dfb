// The proposals of one Raft group waiting for their entries: each is settled when the entry at its
// index applies (with the state machine's result, or as superseded when another term's entry took
// the index), when it times out (outcome unknown), or when the group fails them all. Every
// proposal waits equally long and they are tracked in the order they were made, so one timer, set
// for the oldest, serves them all (not a timer armed and cleared per proposal).
import type { Entry, LogIndex } from "../raft/index.js";
import type { Cancel, Env } from "./env.js";
import type { GroupMetrics } from "./metrics.js";
import { NodeError } from "./node-error.js";

interface PendingProposal<R> {
  readonly term: number;
  /** When it times out, on the monotonic clock. */
  readonly deadlineMs: number;
  readonly resolve: (result: R | undefined) => void;
  readonly reject: (error: NodeError) => void;
}

/** Settings of a {@link ProposalTracker}. */
export interface ProposalTrackerOptions {
  /** How long a proposal may wait to be applied before failing with ERR_TIMEOUT. */
  readonly timeoutMs: number;
  /** The most proposals waiting at once. */
  readonly pendingMax: number;
}

/** Pending proposals by log index, their timeouts and their outcomes. */
export class ProposalTracker<R> {
  readonly #env: Env;
  readonly #metrics: GroupMetrics;
  readonly #options: ProposalTrackerOptions;
  /** By index, in the order proposed; so their deadlines are in order too. */
  readonly #pending = new Map<number, PendingProposal<R>>();
  /** The timer set for the oldest proposal's deadline, if one is set. */
  #cancelTimer: Cancel | undefined;

  /** Creates an empty tracker; it counts proposals and their latency in `metrics`. */
  constructor(env: Env, metrics: GroupMetrics, options: ProposalTrackerOptions) {
    this.#env = env;
    this.#metrics = metrics;
    this.#options = options;
  }

  /** Whether no more proposals may wait (the next is refused with ERR_UNAVAILABLE). */
  get full(): boolean {
    return this.#pending.size >= this.#options.pendingMax;
  }

  /** Waits for the entry proposed at (index, term) to be applied, or to be superseded, or times out. */
  track(index: LogIndex, term: number): Promise<R | undefined> {
    this.#metrics.proposals++;
    const startedMs = this.#env.monotonicMs();
    const promise = new Promise<R | undefined>((resolve, reject) => {
      // Invariant: a new proposal's index follows every pending one (the core appends in order).
      this.#pending.set(index, { term, deadlineMs: startedMs + this.#options.timeoutMs, resolve, reject });
    });
    if (this.#cancelTimer === undefined) this.#armTimer();
    return promise.then(
      (result) => {
        this.#metrics.proposalMs.observe(this.#env.monotonicMs() - startedMs);
        this.#metrics.countOutcome("applied");
        return result;
      },
      (error: unknown) => {
        this.#metrics.proposalsFailed++;
        this.#metrics.countOutcome(error instanceof NodeError ? error.code : "ERR_INTERNAL");
        throw error;
      },
    );
  }

  /** Settles the proposal waiting for `entry`'s index, if any, now that `entry` applied with `result`. */
  applied(entry: Entry, result: R | undefined): void {
    const waiter = this.#pending.get(entry.index);
    if (waiter === undefined) return;
    this.#pending.delete(entry.index);
    if (waiter.term === entry.term) waiter.resolve(result);
    // Another leader's entry took this index: ours was never committed and never will be.
    else
      waiter.reject(
        new NodeError("ERR_UNAVAILABLE", "leadership changed before the write committed; it was not applied"),
      );
  }

  /**
   * Fails fast what a deposed leader cannot know the fate of: its proposals above the commit
   * index may or may not commit under the next leader, and waiting for the proposal timeout helps
   * no client. Proposals at or below the commit index stay: they are committed, and apply settles
   * them (with their result, or as superseded by another term's entry).
   */
  failAbove(commitIndex: number): void {
    for (const [index, p] of this.#pending) {
      if (index <= commitIndex) continue;
      this.#pending.delete(index);
      p.reject(
        new NodeError(
          "ERR_TIMEOUT",
          "leadership was lost before the write was applied; it may still commit: retry with the same idempotency key",
        ),
      );
    }
  }

  /** Fails every waiting proposal with `error`. */
  failAll(error: NodeError): void {
    for (const [, p] of this.#pending) p.reject(error);
    this.#pending.clear();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  /**
   * Sets the timer for the oldest proposal's deadline. When it fires it times out every proposal
   * past its deadline and sets itself for the next; one settled early leaves it to fire for nothing
   * and move on, which costs less than clearing a timer per proposal.
   */
  #armTimer(): void {
    const oldest = this.#pending.values().next();
    if (oldest.done === true) return;
    const delayMs = Math.max(0, oldest.value.deadlineMs - this.#env.monotonicMs());
    this.#cancelTimer = this.#env.after(delayMs, () => {
      this.#cancelTimer = undefined;
      this.#expire();
      this.#armTimer();
    });
  }

  #expire(): void {
    const now = this.#env.monotonicMs();
    for (const [index, p] of this.#pending) {
      if (p.deadlineMs > now) break;
      this.#pending.delete(index);
      p.reject(new NodeError("ERR_TIMEOUT", "the write was not applied in time; it may still commit"));
    }
  }
}
