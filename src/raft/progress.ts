// What a leader knows about one follower's log and how it is currently sending to it: the probe,
// replicate and snapshot states (see docs/design.md, "Raft core") and the bounded in-flight window.
import { assert } from "../util/assert.js";
import { type LogIndex, logIndex } from "./types.js";

/**
 * How the leader replicates to a peer.
 * - `probe`: the follower's log position is unknown; send one append at a time and wait for its
 *   answer (or a heartbeat answer) before sending the next.
 * - `replicate`: the follower is known to match; stream appends optimistically, at most
 *   `inflightAppendsMax` messages ahead of the acknowledgements.
 * - `snapshot`: the follower needs entries the leader compacted away; a snapshot is on its way and
 *   nothing else is sent until it is reported done or failed.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The window of appends sent to one follower and not yet acknowledged, by the last index each
 * carried. Bounded: when full, the leader stops sending to that follower (flow control).
 */
export class Inflights {
  readonly capacity: number;
  #lastIndexes: number[] = [];

  /** Creates an empty window holding at most `capacity` (>= 1) appends. */
  constructor(capacity: number) {
    assert(
      Number.isSafeInteger(capacity) && capacity >= 1,
      `inflight capacity must be >= 1, got ${capacity}`,
    );
    this.capacity = capacity;
  }

  /** How many appends are in flight. */
  get count(): number {
    return this.#lastIndexes.length;
  }

  /** Whether the window is full. */
  full(): boolean {
    return this.#lastIndexes.length >= this.capacity;
  }

  /** Records an append whose last entry is `lastIndex`; indexes must grow. */
  add(lastIndex: number): void {
    assert(!this.full(), "inflights overflow");
    const prev = this.#lastIndexes.at(-1);
    assert(prev === undefined || lastIndex > prev, "inflight indexes must grow");
    this.#lastIndexes.push(lastIndex);
  }

  /** Releases every append whose last index is <= `index` (they are acknowledged). */
  freeLE(index: number): void {
    let k = 0;
    while (k < this.#lastIndexes.length && (this.#lastIndexes[k] ?? 0) <= index) k++;
    if (k > 0) this.#lastIndexes.splice(0, k);
  }

  /** Releases the oldest append in flight (it was probably lost). */
  freeFirst(): void {
    this.#lastIndexes.shift();
  }

  /** Forgets every append in flight. */
  reset(): void {
    this.#lastIndexes = [];
  }
}

/**
 * The leader's record of one peer (Raft Figure 2: nextIndex and matchIndex, plus flow control).
 *
 * Invariant: matchIndex < nextIndex.
 */
export class Progress {
  /** Highest index known replicated durably on the peer. */
  matchIndex: LogIndex;
  /** Index of the next entry to send. */
  nextIndex: LogIndex;
  state: ProgressState = "probe";
  /** In `snapshot` state: the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = logIndex(0);
  /** In `probe` state: an append was sent and its answer is awaited. */
  probeSent = false;
  /** Whether the peer was heard from since the last check-quorum round. */
  recentActive = false;
  /** The tick count when the peer was last heard from (for status and metrics). */
  lastContactTick = 0;
  /**
   * The commit index the latest append sent to this peer carried (a heartbeat's is capped at the
   * match); 0 once an append was rejected or a snapshot is due, since theirs did not land.
   */
  commitSent: LogIndex = logIndex(0);
  /** Heartbeat intervals since the last append sent to this peer (see RawNode's refresh). */
  heartbeatsSinceAppend = 0;
  readonly inflights: Inflights;

  /** Creates a progress in probe state, about to send from `nextIndex`. */
  constructor(nextIndex: LogIndex, inflightAppendsMax: number) {
    this.matchIndex = logIndex(0);
    this.nextIndex = nextIndex;
    this.inflights = new Inflights(inflightAppendsMax);
  }

  /** Switches to probing from just after the last known match (or after a sent snapshot). */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.nextIndex = logIndex(Math.max(this.matchIndex + 1, this.pendingSnapshot + 1));
    } else {
      this.nextIndex = logIndex(this.matchIndex + 1);
    }
    this.#reset("probe");
  }

  /** Switches to optimistic streaming after a successful answer. */
  becomeReplicate(): void {
    this.nextIndex = logIndex(this.matchIndex + 1);
    this.#reset("replicate");
  }

  /** Switches to waiting for the snapshot at `index` to reach the peer. */
  becomeSnapshot(index: LogIndex): void {
    this.#reset("snapshot");
    this.pendingSnapshot = index;
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = logIndex(0);
    this.inflights.reset();
  }

  /**
   * Records that the peer holds everything up to `index`. Returns whether matchIndex moved (a stale,
   * reordered answer does not move it).
   */
  maybeUpdate(index: LogIndex): boolean {
    const updated = index > this.matchIndex;
    if (updated) {
      this.matchIndex = index;
      this.probeSent = false;
    }
    if (this.nextIndex < index + 1) this.nextIndex = logIndex(index + 1);
    return updated;
  }

  /**
   * Handles a rejected append for prevLogIndex `rejected`, given the follower's hint that entries
   * above `hintIndex` cannot match. `entriesLost` is the follower's own report that it no longer
   * holds entries it acknowledged (AppendResponseMessage.entriesLost). Returns false when the
   * rejection is stale (answers an older append) and must be ignored.
   */
  maybeDecrTo(rejected: LogIndex, hintIndex: LogIndex, entriesLost: boolean): boolean {
    if (rejected <= this.matchIndex) {
      // About an entry the peer acknowledged: an answer to an older append that a reordering or
      // duplicating network delivered late, unless the peer says it lost what it acknowledged
      // (its data was emptied, or discarded as damaged). Only the peer knows which, so only its
      // flag may lower the match: guessing from the hint stalls replication on every late answer.
      if (!entriesLost) return false;
      // Nothing it acknowledged counts any more: probe from its hint (or send a snapshot) as for
      // a new member. Lowering the match never lowers the commit index; a late duplicate of an old
      // report costs one probe, answered from the peer's commit index.
      this.matchIndex = logIndex(0);
      this.nextIndex = logIndex(Math.max(Math.min(rejected, hintIndex + 1), 1));
      this.#reset("probe");
      return true;
    }
    if (this.state === "replicate") {
      this.nextIndex = logIndex(this.matchIndex + 1);
      return true;
    }
    // In probe state only the answer to the latest probe (sent from nextIndex - 1) counts.
    if (this.nextIndex - 1 !== rejected) return false;
    this.nextIndex = logIndex(Math.max(Math.min(rejected, hintIndex + 1), this.matchIndex + 1, 1));
    this.probeSent = false;
    return true;
  }

  /** Records that an append carrying entries up to `lastIndex` (possibly none) was sent. */
  sentAppend(entryCount: number, lastIndex: LogIndex): void {
    switch (this.state) {
      case "replicate":
        if (entryCount > 0) {
          this.nextIndex = logIndex(lastIndex + 1);
          this.inflights.add(lastIndex);
        }
        break;
      case "probe":
        this.probeSent = true;
        break;
      case "snapshot":
        assert(false, "append sent to a peer in snapshot state");
    }
  }

  /** Whether the leader must hold back appends to this peer right now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
