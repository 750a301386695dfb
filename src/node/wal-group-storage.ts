// A group's durable Raft storage: entries in the node's shared write-ahead log, hard state in the
// node's hard-state store (one atomically replaced file per group). Term and vote must be durable before this member answers anyone, so they are written
// (atomically, fsynced) whenever they change; the commit index alone is not needed for safety and
// is written only along with them: on restart commit is recovered as at least what was applied.
import {
  type Entry,
  type GroupId,
  type HardState,
  logIndex,
  type NodeId,
  nodeId,
  type PersistedState,
  type SnapshotMeta,
  term,
} from "../raft/index.js";
import type { HardStateStore } from "../storage/hard-state-store.js";
import type { Wal, WalRecovery } from "../storage/wal.js";
import { groupCorruptionError } from "../storage/wal.js";
import { assert } from "../util/assert.js";
import type { GroupStorage, PersistBatch } from "./ports.js";

/** Durable storage of one group: its entries in the shared WAL, its hard state in its own file. */
export class WalGroupStorage implements GroupStorage {
  readonly #hardStates: HardStateStore;
  readonly #wal: Wal;
  readonly #recovery: WalRecovery;
  readonly #group: GroupId;
  #durableTerm = 0;
  #durableVote: NodeId | null = null;

  /** Creates the storage of `group`. */
  constructor(hardStates: HardStateStore, wal: Wal, recovery: WalRecovery, group: GroupId) {
    this.#hardStates = hardStates;
    this.#wal = wal;
    this.#recovery = recovery;
    this.#group = group;
  }

  async load(): Promise<PersistedState | undefined> {
    const corruption = groupCorruptionError(this.#recovery, this.#group);
    // A corrupt log must never vote or lead: refuse to start the group at all.
    if (corruption !== undefined) throw corruption;
    const hardState = await this.#hardStates.load(this.#group);
    const recovered = this.#recovery.groups.get(this.#group);
    if (hardState === undefined && (recovered === undefined || recovered.entries.length === 0))
      return undefined;
    assert(
      recovered === undefined || recovered.compactIndex === 0,
      "log compaction needs snapshot support in the runtime",
    );
    const entries: readonly Entry[] = recovered?.entries ?? [];
    const hs = hardState ?? { term: term(0), votedFor: null, commitIndex: logIndex(0) };
    this.#durableTerm = hs.term;
    this.#durableVote = hs.votedFor;
    const last = entries.at(-1);
    return {
      // The stored commit may lag; it can never exceed what the log holds.
      hardState: { ...hs, commitIndex: logIndex(Math.min(hs.commitIndex, last?.index ?? 0)) },
      entries,
    };
  }

  async persist(batch: PersistBatch): Promise<void> {
    assert(batch.snapshot === undefined, "snapshot install needs snapshot support in the runtime");
    const writes: Promise<void>[] = [];
    if (batch.entries.length > 0)
      writes.push(this.#wal.write([{ type: "entries", group: this.#group, entries: batch.entries }]));
    const hs = batch.hardState;
    if (hs !== undefined && (hs.term !== this.#durableTerm || hs.votedFor !== this.#durableVote)) {
      writes.push(this.#hardStates.save(this.#group, hs));
    }
    await Promise.all(writes);
    if (hs !== undefined) {
      this.#durableTerm = hs.term;
      this.#durableVote = hs.votedFor;
    }
  }

  async compact(snapshot: SnapshotMeta): Promise<void> {
    await this.#wal.compact(this.#group, snapshot.index, snapshot.term);
  }
}
