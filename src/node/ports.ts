// What a Raft group's runtime needs from the layers around it, stated narrowly: durable storage for
// its log and hard state, a way to send messages, and the state machine it applies entries to.
// Storage and transport adapters implement these; tests and the simulator pass in-memory twins.
import type { Entry, HardState, LogIndex, Message, PersistedState, SnapshotMeta } from "../raft/index.js";

/** One Ready's writes, in the order the Raft contract requires. */
export interface PersistBatch {
  readonly snapshot?: SnapshotMeta;
  readonly entries: readonly Entry[];
  readonly hardState?: HardState;
}

/** Durable storage of one group's Raft log and hard state. */
export interface GroupStorage {
  /** What was persisted, for a restart. */
  load(): Promise<PersistedState | undefined>;
  /**
   * Makes a batch durable (fsynced) before resolving. Entries may overwrite the stored suffix
   * from their first index. Rejects with a StorageError-like object whose `code` says why.
   */
  persist(batch: PersistBatch): Promise<void>;
  /** Forgets entries up to and including `index`, which a snapshot now covers. */
  compact(snapshot: SnapshotMeta): Promise<void>;
}

/** Sends Raft messages to peers. Never throws for an unreachable peer; it reports it instead. */
export interface MessageSender {
  /**
   * Sends `messages`. `urgent` ones are on the critical path of a client's write or read (a
   * leader's new entries, an acknowledgement, a ReadIndex round) and go to the network at once;
   * others may be batched with the rest of this turn of the event loop.
   */
  send(messages: readonly Message[], urgent?: boolean): void;
}

/**
 * The replicated state machine. `apply` runs committed entries in order and must make their
 * effects and the new applied index durable together (one store transaction), so a restart
 * replays from the applied index + 1. It returns one result per entry (undefined for entries it
 * does not interpret, such as no-ops and membership changes).
 */
export interface StateMachine<R> {
  /** The index of the last entry whose effects are stored. */
  appliedIndex(): LogIndex;
  apply(entries: readonly Entry[]): Promise<readonly (R | undefined)[]>;
  /** Resolves once every applied effect reached the state store (before a snapshot replaces it). */
  settle?(): Promise<void>;
}
