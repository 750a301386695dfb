// The vocabulary shared by the Raft core and everything that persists or carries its data. The
// storage layer encodes these shapes in the write-ahead log and snapshots, so a change here is a
// change of the on-disk format.
import { type Brand, brandedInteger } from "../util/brand.js";

/** A Raft term (Raft §5.1): a logical clock that only grows. 0 before any election. */
export type Term = Brand<number, "Term">;
/** A position in the Raft log. The first entry has index 1; 0 means "before the log". */
export type LogIndex = Brand<number, "LogIndex">;
/** A member of a Raft group. Always >= 1; 0 is never a node. */
export type NodeId = Brand<number, "NodeId">;
/** A Raft group hosted by a node process; every message, WAL record and state key carries one. */
export type GroupId = Brand<number, "GroupId">;

/** Checks and brands a term. */
export const term: (n: number) => Term = brandedInteger("Term");
/** Checks and brands a log index. */
export const logIndex: (n: number) => LogIndex = brandedInteger("LogIndex");
/** Checks and brands a group id. */
export const groupId: (n: number) => GroupId = brandedInteger("GroupId");
const brandNode = brandedInteger("NodeId");
/** Checks and brands a node id (must be >= 1). */
export function nodeId(n: number): NodeId {
  const id = brandNode(n);
  if (id === 0) throw new RangeError("NodeId must be >= 1");
  return id;
}

/**
 * What an entry carries. `normal`: application data (an empty payload is the no-op a new leader
 * appends, Raft §8). `conf-change`: a membership change the core interprets itself.
 */
export type EntryKind = "normal" | "conf-change";

/** One Raft log entry. */
export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** The state a node must persist before it answers any message (Raft Figure 2, plus commit). */
export interface HardState {
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly commitIndex: LogIndex;
}

/** Who votes and who only learns, as of some log index. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** Describes a snapshot: it replaces every entry up to and including `index`. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly conf: ConfState;
}
