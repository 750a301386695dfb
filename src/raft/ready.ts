// The batch of work the core hands to the runtime, and the values its methods return.
import type { Message } from "./messages.js";
import type { ProgressState } from "./progress.js";
import type { ConfState, Entry, GroupId, HardState, LogIndex, NodeId, SnapshotMeta, Term } from "./types.js";

/** A member's role (Raft §5.1, plus the pre-vote phase of dissertation §9.6). */
export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Volatile state worth reporting when it changes: who leads, and in what role this node is. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
}

/** A ReadIndex answer (dissertation §6.4): a read for `context` is linearizable once `index` is applied. */
export interface ReadState {
  readonly context: string;
  readonly index: LogIndex;
}

/**
 * One batch of work. The runtime handles it in this order, then calls `advance(ready)`:
 *
 * 1. Send `messages` at once; they do not depend on this batch's writes (the leader's appends,
 *    heartbeats, snapshots and pre-votes: the leader writes its own entries in parallel with
 *    replicating them).
 * 2. Persist, in this order and durably (fsync): `snapshot` (install its data, which the runtime
 *    received alongside the snapshot message), `entries` (the first one may overwrite the stored
 *    log from its index on: truncate the stored suffix first), then `hardState`. One fsync may
 *    cover all three; if a crash keeps the entries but loses the hard state, the core recovers
 *    (it adopts the entries' term), but a hard state whose commit index is beyond the stored log
 *    means acknowledged entries were lost, and the core refuses to start.
 * 3. Only then send `messagesAfterPersist`: votes and follower acknowledgements promise that the
 *    writes of this batch (and every earlier batch) are durable.
 * 4. Apply `committedEntries` in order (after a `snapshot`, which they follow). They are always
 *    durable locally already, so applying may overlap with step 2 of the next batch.
 * 5. Serve reads in `readStates` once the applied index reaches their index.
 * 6. Report `softState` (role and leader changes); pending client requests of a node that is no
 *    longer leader will not complete and should be failed or redirected.
 *
 * A `snapshot` message names the snapshot by (index, term). If the runtime no longer holds it (it
 * compacted further meanwhile), it reports `reportSnapshot(peer, false)` instead of sending; the
 * core then offers the newer snapshot.
 *
 * `advance(ready)` tells the core the batch is durable and applied: only then does a leader count
 * its own copy of these entries toward a commit majority. At most one Ready is outstanding; the
 * runtime may keep calling step/tick/propose while it works on one.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: SnapshotMeta;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/** The result of a proposal: where the entry landed, or why it was not accepted. */
export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | { readonly ok: false; readonly reason: "not-leader"; readonly leaderHint: NodeId | null }
  | { readonly ok: false; readonly reason: "transfer-in-progress" }
  | { readonly ok: false; readonly reason: "too-many-uncommitted" };

/** The result of a membership change proposal. */
export type ConfChangeResult =
  | ProposeResult
  | { readonly ok: false; readonly reason: "conf-change-pending" }
  | { readonly ok: false; readonly reason: "no-commit-in-term" }
  | { readonly ok: false; readonly reason: "invalid-conf-change"; readonly detail: string };

/** The result of a ReadIndex request; the answer arrives later as a {@link ReadState}. */
export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "not-leader"; readonly leaderHint: null }
  | { readonly ok: false; readonly reason: "too-many-pending-reads" };

/** The result of a leadership transfer request. */
export type TransferResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "not-leader"; readonly leaderHint: NodeId | null }
  | { readonly ok: false; readonly reason: "not-a-voter" }
  | { readonly ok: false; readonly reason: "already-leader" };

/** The result of compacting the log up to a snapshot the application took. */
export type CompactResult =
  | { readonly ok: true; readonly snapshot: SnapshotMeta }
  | { readonly ok: false; readonly reason: "not-applied" | "already-compacted" };

/** What the leader knows about one peer, for the dashboard and metrics. */
export interface PeerStatus {
  readonly id: NodeId;
  readonly voter: boolean;
  readonly matchIndex: LogIndex;
  readonly nextIndex: LogIndex;
  readonly state: ProgressState;
  readonly inflight: number;
  readonly lastContactTick: number;
  readonly recentActive: boolean;
}

/** A snapshot of a member's state for the dashboard, metrics and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly groupId: GroupId;
  readonly role: Role;
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly persistedIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly snapshotIndex: LogIndex;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId | null;
  /**
   * Ticks since this member last heard from its leader (0 on the leader; null when no leader is
   * known): how stale a local read may be.
   */
  readonly ticksSinceLeaderContact: number | null;
  readonly ticks: number;
  /** Per peer (leader only; empty otherwise), sorted by id. */
  readonly peers: readonly PeerStatus[];
  /**
   * Whether this member neither votes nor campaigns because it may have lost entries it had
   * acknowledged (a damaged log tail, or state it discarded) and no leader has given them back yet.
   */
  readonly votesWithheld: boolean;
}
