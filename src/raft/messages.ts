// The messages Raft peers exchange. Every message names its group, sender, receiver and the sender's
// term, so one process can host many groups and a receiver can order any message against its own term.
import type { Entry, GroupId, LogIndex, NodeId, SnapshotMeta, Term } from "./types.js";

/** Fields every Raft message carries. */
export interface MessageHeader {
  readonly groupId: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term; for a pre-vote request, the term the sender would campaign in. */
  readonly term: Term;
}

/** AppendEntries (Raft §5.3): entries after (prevLogIndex, prevLogTerm), plus the leader's commit. */
export interface AppendMessage extends MessageHeader {
  readonly type: "append";
  readonly prevLogIndex: LogIndex;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly commitIndex: LogIndex;
}

/**
 * The answer to an append or a snapshot. On success `index` is the last index the follower now holds
 * durably. On rejection `index` is the prevLogIndex that did not match, and (`hintIndex`, `hintTerm`)
 * name the follower's last entry whose term is <= the leader's prevLogTerm, so the leader can skip
 * a whole term of conflicting entries per round trip (fast backtracking, Raft §5.3 end).
 */
export interface AppendResponseMessage extends MessageHeader {
  readonly type: "append-response";
  readonly reject: boolean;
  readonly index: LogIndex;
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
  /**
   * On a rejection: the follower knows it no longer holds entries it acknowledged (it recovers
   * from discarded or damaged state, or a heartbeat's commit index, which never exceeds its
   * match, is past its log). Only such a rejection may lower the leader's match index; any other
   * rejection at or below the match is a late answer to an older append. Always false on success.
   */
  readonly entriesLost: boolean;
}

/** A leader's heartbeat (Raft §5.2); `readRound` confirms leadership for ReadIndex batches. */
export interface HeartbeatMessage extends MessageHeader {
  readonly type: "heartbeat";
  readonly commitIndex: LogIndex;
  readonly readRound: number;
}

/** The answer to a heartbeat, echoing its read round. */
export interface HeartbeatResponseMessage extends MessageHeader {
  readonly type: "heartbeat-response";
  readonly readRound: number;
}

/**
 * RequestVote (Raft §5.2, §5.4.1), or a pre-vote (dissertation §9.6) that asks "would you vote for
 * me?" without anyone changing term. `transfer` marks a campaign started by TimeoutNow, which
 * voters honour even while they believe a leader is alive.
 */
export interface VoteRequestMessage extends MessageHeader {
  readonly type: "vote-request";
  readonly preVote: boolean;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  readonly transfer: boolean;
}

/** The answer to a vote or pre-vote request. */
export interface VoteResponseMessage extends MessageHeader {
  readonly type: "vote-response";
  readonly preVote: boolean;
  readonly reject: boolean;
}

/**
 * InstallSnapshot (Raft §7), as the core sees it: only the metadata. The runtime resolves the
 * snapshot named by (snapshot.index, snapshot.term) from its store, streams it in chunks, and on the
 * receiving side steps this message into the core once the data is fully reassembled.
 */
export interface SnapshotMessage extends MessageHeader {
  readonly type: "snapshot";
  readonly snapshot: SnapshotMeta;
}

/** Tells an up-to-date follower to campaign at once (leadership transfer, dissertation §3.10). */
export interface TimeoutNowMessage extends MessageHeader {
  readonly type: "timeout-now";
}

/** A follower forwarding a ReadIndex request (dissertation §6.4) to its leader. */
export interface ReadIndexMessage extends MessageHeader {
  readonly type: "read-index";
  readonly context: string;
}

/** The leader's answer to a forwarded ReadIndex: reads may be served once `index` is applied. */
export interface ReadIndexResponseMessage extends MessageHeader {
  readonly type: "read-index-response";
  readonly context: string;
  readonly index: LogIndex;
}

/** Any Raft message. */
export type Message =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteRequestMessage
  | VoteResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

/** The `type` tag of a message. */
export type MessageType = Message["type"];

/** Distributes Omit over a union so each member keeps its own fields. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A message before the header fields the core fills in. */
export type MessageBody = DistributiveOmit<Message, keyof MessageHeader>;
