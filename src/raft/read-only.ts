// The leader's side of ReadIndex (Raft dissertation §6.4), as etcd keeps it in read_only.go: reads
// wait for a heartbeat round that started after they arrived and that a majority acknowledged, and
// reads that arrive before the leader has committed an entry of its term wait for that first. The
// core (raw-node.ts) decides when a read is taken, sends the heartbeats and answers the reads this
// module releases.
import { committedIndex } from "./quorum.js";
import { type LogIndex, logIndex, type NodeId } from "./types.js";

/** A read that may be answered at `index`: to its own node as a ReadState, or back to `from`. */
export interface ReleasedRead {
  readonly from: NodeId;
  readonly context: string;
  readonly index: LogIndex;
}

/** A read waiting for its leadership confirmation round. */
interface PendingRead extends ReleasedRead {
  readonly round: number;
}

/** The reads a leader holds and the heartbeat rounds that confirm them. */
export class ReadOnly {
  readonly #pendingMax: number;
  /** The last round started; it only grows, so an acknowledgement of an old round never counts twice. */
  #roundSent = 0;
  #roundConfirmed = 0;
  #roundWanted = false;
  #acks = new Map<NodeId, number>();
  #pending: PendingRead[] = [];
  #awaitingCommit: { from: NodeId; context: string }[] = [];

  /** Creates an empty set; at most `pendingMax` reads wait at once. */
  constructor(pendingMax: number) {
    this.#pendingMax = pendingMax;
  }

  /** The number of the last round started (heartbeats carry it; followers echo it). */
  get roundSent(): number {
    return this.#roundSent;
  }

  /** Whether as many reads wait as allowed (a further one is refused). */
  full(): boolean {
    return this.#pending.length + this.#awaitingCommit.length >= this.#pendingMax;
  }

  /**
   * Dissertation §6.4 step 1: until an entry of its term commits, a new leader does not know the
   * latest commit index, so the read waits for {@link takeAwaitingCommit}.
   */
  awaitCommit(from: NodeId, context: string): void {
    this.#awaitingCommit.push({ from, context });
  }

  /** The reads that waited for the leader's first commit of its term, handed back to be taken again. */
  takeAwaitingCommit(): { from: NodeId; context: string }[] {
    const waiting = this.#awaitingCommit;
    this.#awaitingCommit = [];
    return waiting;
  }

  /**
   * Batching: a read waits for the next heartbeat round, which starts at the next ready() (or,
   * while a round is out, at the first ready() after it is confirmed), so every read that arrives
   * in between shares one round. The round starts after the read arrived, as §6.4 requires.
   */
  add(from: NodeId, context: string, index: LogIndex): void {
    this.#pending.push({ from, context, index, round: this.#roundSent + 1 });
    this.#roundWanted = true;
  }

  /** Whether a read round should start now: reads wait and no round is out. */
  roundDue(): boolean {
    return this.#roundWanted && this.#roundSent === this.#roundConfirmed;
  }

  /** Starts the round that is due; the caller broadcasts the heartbeats that carry it. */
  startRound(): void {
    this.#roundWanted = false;
    this.#roundSent++;
  }

  /**
   * Records that `from` acknowledged round `round`; returns the reads a majority of `voters` (the
   * leader `self` counting for its own latest round) has now confirmed.
   */
  ack(from: NodeId, round: number, voters: readonly NodeId[], self: NodeId): ReleasedRead[] {
    if (round <= (this.#acks.get(from) ?? 0)) return [];
    this.#acks.set(from, round);
    const confirmed = committedIndex(voters, (id) =>
      logIndex(id === self ? this.#roundSent : (this.#acks.get(id) ?? 0)),
    );
    if (confirmed <= this.#roundConfirmed) return [];
    this.#roundConfirmed = confirmed;
    const ready = this.#pending.filter((r) => r.round <= confirmed);
    this.#pending = this.#pending.filter((r) => r.round > confirmed);
    return ready;
  }

  /** Forgets every read and acknowledgement (a role change); the round count carries on. */
  reset(): void {
    this.#pending = [];
    this.#awaitingCommit = [];
    this.#roundWanted = false;
    this.#roundConfirmed = this.#roundSent;
    this.#acks = new Map();
  }
}
