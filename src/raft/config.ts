// How a RawNode is configured and what it is given back on restart.
import type { ConfState, Entry, GroupId, HardState, LogIndex, NodeId, SnapshotMeta } from "./types.js";

/** A source of uniform integers; the core's only randomness (src/util/prng.ts's Prng satisfies it). */
export interface RandomSource {
  /** A uniform integer in [0, n). */
  below(n: number): number;
}

/** Settings of one Raft group member. Ticks are the runtime's logical clock; the core has no other. */
export interface RaftConfig {
  readonly id: NodeId;
  readonly groupId: GroupId;
  /**
   * The initial configuration of a brand-new group, identical on every initial member: it becomes
   * the bootstrap entry (index 1, term 0) that all of them write. A member joining an existing
   * group must start with an empty configuration and learn the real one from the leader; two
   * different bootstrap entries at index 1 would break Log Matching. Used on restart only when no
   * snapshot carries a configuration.
   */
  readonly conf: ConfState;
  /**
   * Raft §5.2: a follower that hears nothing for this many ticks (randomized into
   * [electionTimeoutTicks, 2 * electionTimeoutTicks)) starts an election.
   */
  readonly electionTimeoutTicks: number;
  /** A leader sends heartbeats every this many ticks; must be below electionTimeoutTicks. */
  readonly heartbeatTicks: number;
  /** Dissertation §9.6: campaign only after a pre-vote shows a majority would vote. */
  readonly preVote: boolean;
  /**
   * Dissertation §6.2: a leader that has not heard from a majority within an election timeout steps
   * down, and voters ignore vote requests while they believe a leader is alive (§4.2.3).
   */
  readonly checkQuorum: boolean;
  /** The most entry bytes in one append message (at least one entry is always sent). */
  readonly appendBytesMax: number;
  /** The most unacknowledged append messages in flight to one follower. */
  readonly inflightAppendsMax: number;
  /** The most entry bytes handed out for applying in one Ready (at least one entry). Default 1 MiB. */
  readonly applyBytesMax?: number;
  /** The most bytes of uncommitted entries a leader accepts before refusing proposals. Default 64 MiB. */
  readonly uncommittedBytesMax?: number;
  /** The most ReadIndex requests a leader holds waiting for confirmation. Default 4096. */
  readonly readIndexPendingMax?: number;
  readonly random: RandomSource;
}

/** What the runtime read back from disk when restarting a member. */
export interface PersistedState {
  readonly hardState: HardState;
  /** The latest snapshot; every entry up to its index is gone from the log. */
  readonly snapshot?: SnapshotMeta;
  /** The log entries after the snapshot (or from index 1), contiguous. */
  readonly entries: readonly Entry[];
  /** The state machine's applied index, when it is ahead of the snapshot (apply is idempotent). */
  readonly appliedIndex?: LogIndex;
  /**
   * Set when the runtime cut a damaged tail off the log at startup that may have held entries this
   * member had acknowledged: the highest index such an entry can have had. Until this member has
   * appended past it from a leader (of its current term or later, which holds every entry that
   * was committed), it grants no vote or pre-vote and does not campaign: its log may be shorter
   * than it promised, and a vote for a candidate missing a committed entry could elect a leader
   * that loses it (Raft §5.4 assumes acknowledged entries are never lost; protocol-aware recovery,
   * Alagappan et al., FAST 2018, keeps such a node out of elections until repaired).
   */
  readonly tailLostIndexMax?: LogIndex;
  /**
   * Set when the runtime found this member's durable state gone or damaged (an emptied data
   * directory, a corrupt log, hard state, snapshot or state store) and discarded it: the member
   * may have acknowledged entries and cast votes it no longer knows about. Until a leader has
   * given it a log through that leader's commit index, at an entry of the leader's own term (so
   * every entry committed before that term is covered, Raft §5.4.2), it grants no vote or pre-vote
   * and does not campaign, exactly as with {@link tailLostIndexMax}.
   */
  readonly stateLost?: boolean;
}
