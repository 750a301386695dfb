// The proposals of one Raft group waiting for their entries: each is settled when the entry at its
// index applies (with the state machine's result, or as superseded when another term's entry took
// the index), when it times out (outcome unknown), or when the group fails them all.
import type { Entry, LogIndex } from "../raft/index.js";
import type { Cancel, Env } from "./env.js";
import type { GroupMetrics } from "./metrics.js";
import { NodeError } from "./node-error.js";

interface PendingProposal<R> {
  readonly term: number;
  readonly resolve: (result: R | undefined) => void;
  readonly reject: (error: NodeError) => void;
  readonly cancelTimer: Cancel;
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
  readonly #pending = new Map<number, PendingProposal<R>>();

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
      const cancelTimer = this.#env.after(this.#options.timeoutMs, () => {
        if (this.#pending.get(index)?.cancelTimer !== cancelTimer) return;
        this.#pending.delete(index);
        reject(new NodeError("ERR_TIMEOUT", "the write was not applied in time; it may still commit"));
      });
      this.#pending.set(index, { term, resolve, reject, cancelTimer });
    });
    return promise.then(
      (result) => {
        this.#metrics.proposalMs.observe(this.#env.monotonicMs() - startedMs);
        return result;
      },
      (error: unknown) => {
        this.#metrics.proposalsFailed++;
        throw error;
      },
    );
  }

  /** Settles the proposal waiting for `entry`'s index, if any, now that `entry` applied with `result`. */
  applied(entry: Entry, result: R | undefined): void {
    const waiter = this.#pending.get(entry.index);
    if (waiter === undefined) return;
    this.#pending.delete(entry.index);
    waiter.cancelTimer();
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
      p.cancelTimer();
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
    for (const [, p] of this.#pending) {
      p.cancelTimer();
      p.reject(error);
    }
    this.#pending.clear();
  }
}
