// A group's durable Raft storage: entries in the node's shared write-ahead log, hard state in the
// node's hard-state store (one atomically replaced file per group), and the snapshot that a
// compacted log starts from. Term and vote must be durable before this member answers anyone, so
// they are written whenever they change; the commit index alone is not needed for safety and is
// written only along with them (on restart it is recovered as at least what was applied).
import {
  type Entry,
  type GroupId,
  type LogIndex,
  logIndex,
  type NodeId,
  type PersistedState,
  type SnapshotMeta,
  term,
} from "../raft/index.js";
import type { HardStateStore, Wal, WalRecord, WalRecovery } from "../storage/index.js";
import { groupCorruptionError, StorageError } from "../storage/index.js";
import type { GroupSnapshots } from "./group-snapshots.js";
import type { GroupStorage, PersistBatch } from "./ports.js";

/** Durable storage of one group. */
export class WalGroupStorage implements GroupStorage {
  readonly #hardStates: HardStateStore;
  readonly #wal: Wal;
  readonly #recovery: WalRecovery;
  readonly #snapshots: GroupSnapshots | undefined;

  readonly #group: GroupId;
  /**
   * The highest compaction point handed to the WAL. A capture runs beside the ready loop, so a
   * snapshot installed meanwhile may have compacted the log past the capture's index.
   */
  #compactedThrough: number;
  #durableTerm = 0;
  #durableVote: NodeId | null = null;
  /** Set when the runtime discarded this node's damaged or missing state (see PersistedState.stateLost). */
  readonly #stateLost: boolean;

  /**
   * Creates the storage of `group`. Without `snapshots` the group never compacts and cannot install
   * a snapshot (the simulator's runs). `stateLost`: the node is recovering from discarded state;
   * every load says so until it is whole again.
   */
  constructor(
    hardStates: HardStateStore,
    wal: Wal,
    recovery: WalRecovery,
    group: GroupId,
    snapshots?: GroupSnapshots,
    stateLost = false,
  ) {
    this.#stateLost = stateLost;
    this.#hardStates = hardStates;
    this.#wal = wal;
    this.#recovery = recovery;
    this.#snapshots = snapshots;
    this.#group = group;
    this.#compactedThrough = wal.position(group).compactIndex;
  }

  async load(): Promise<PersistedState | undefined> {
    const corruption = groupCorruptionError(this.#recovery, this.#group);
    // A corrupt log must never vote or lead: refuse to start the group at all.
    if (corruption !== undefined) throw corruption;
    const hardState = await this.#hardStates.load(this.#group);
    const recovered = this.#recovery.groups.get(this.#group)?.entries ?? [];
    const { entries, snapshot } = await this.#startingPoint(recovered);
    if (hardState === undefined && entries.length === 0 && snapshot === undefined && !this.#stateLost)
      return undefined;
    const hs = hardState ?? { term: term(0), votedFor: null, commitIndex: logIndex(0) };
    this.#durableTerm = hs.term;
    this.#durableVote = hs.votedFor;
    const lastIndex = entries.at(-1)?.index ?? snapshot?.index ?? 0;
    // Applied entries were durable in the log first, so a state store past the log's end means
    // the log lost entries the state holds (a damaged tail cut at open, found by the real-process
    // corruption test): the core cannot start on that (its commit would pass its log), so it is
    // damage, repaired from the leader like any other.
    const applied = this.#snapshots?.appliedIndex() ?? 0;
    if (applied > lastIndex)
      throw new StorageError(
        "ERR_STATE_CORRUPT",
        `the state store applied entries through ${applied}, past the log's last entry ${lastIndex}: the log lost entries the state holds`,
      );
    const tailLost = this.#tailLostIndexMax(lastIndex);
    return {
      // The stored commit may lag; it is at least the snapshot and never beyond the log.
      hardState: {
        ...hs,
        commitIndex: logIndex(Math.min(Math.max(hs.commitIndex, snapshot?.index ?? 0), lastIndex)),
      },
      ...(snapshot !== undefined ? { snapshot } : {}),
      entries,
      ...(tailLost !== undefined ? { tailLostIndexMax: tailLost } : {}),
      ...(this.#stateLost ? { stateLost: true } : {}),
    };
  }

  /**
   * The highest index this group may have acknowledged and lost with a torn tail the WAL cut (at
   * this open or an earlier one, while the log has not reached it again), or undefined: the core
   * then withholds votes until a leader has given it a log past it.
   */
  #tailLostIndexMax(lastIndex: number): LogIndex | undefined {
    const lost = this.#recovery.tailLost.get(this.#group);
    return lost !== undefined && lost > lastIndex ? logIndex(lost) : undefined;
  }

  /**
   * Where the core's log starts after a restart: the base the log is compacted to (a snapshot file,
   * or the state store itself: see GroupSnapshots.compactToState) and the entries after it.
   *
   * A crash may come between installing, capturing or recording a base and compacting the log to
   * it, and a power loss may take back state store commits that were visible but not yet durable.
   * Redo an install the state store says was cut short, or one whose state the store no longer
   * holds, then compact the log to the newest base whose data the state store holds: the log's
   * entries up to it are then redundant.
   */
  async #startingPoint(
    entries: readonly Entry[],
  ): Promise<{ entries: readonly Entry[]; snapshot: SnapshotMeta | undefined }> {
    const snapshots = this.#snapshots;
    const { compactIndex } = this.#wal.position(this.#group);
    if (snapshots === undefined) {
      if (compactIndex > 0)
        throw new StorageError("ERR_SNAPSHOT_CORRUPT", "the log is compacted but snapshots are off");
      return { entries, snapshot: undefined };
    }
    const latest = await snapshots.latest();
    const stateBase = await snapshots.stateBase();
    // Invariant: compactIndex <= the state store's durable applied index. Entries up to the
    // compaction point are gone from the log, so only a snapshot file can bring the state back to it.
    const stateLost = snapshots.isRestoring() || snapshots.appliedIndex() < compactIndex;
    // The base the log is compacted to: the state store's (its meta recorded at or past the
    // compaction point: a crash may have come before the log's compaction), else a file. Snapshots
    // received but not installed (a power loss came first) count toward the store's retention and
    // may have pruned the file the log is compacted to: the newest one then takes its place.
    const onState =
      !stateLost &&
      stateBase !== undefined &&
      stateBase.index >= compactIndex &&
      stateBase.index <= snapshots.appliedIndex();
    const baseGone = compactIndex > 0 && !onState && !(await snapshots.has(compactIndex));
    if (stateLost || baseGone) {
      if (latest === undefined || latest.index < compactIndex) {
        throw new StorageError(
          "ERR_STATE_BEHIND_LOG",
          `the state store is at ${snapshots.appliedIndex()}${snapshots.isRestoring() ? " (restore cut short)" : ""}, the log is compacted to ${compactIndex}, and no snapshot at or after it is stored`,
        );
      }
      // A state already past the newest snapshot only needs the log compacted to it (below).
      if (stateLost || snapshots.appliedIndex() < latest.index) await snapshots.install(latest);
    }
    // The newest base whose data the state store holds (a received file may be ahead of it).
    const applied = snapshots.appliedIndex();
    let newest: SnapshotMeta | undefined = onState ? stateBase : undefined;
    if (latest !== undefined && latest.index <= applied && latest.index > (newest?.index ?? 0))
      newest = latest;
    if (newest === undefined || newest.index < compactIndex) {
      if (compactIndex === 0) return { entries, snapshot: undefined };
      return { entries, snapshot: await this.#openBase(snapshots, compactIndex) };
    }
    if (newest.index === compactIndex) return { entries, snapshot: newest };
    const atBase = entries.find((e) => e.index === newest.index);
    const matches = atBase !== undefined && atBase.term === newest.term;
    await this.#wal.write(this.#compactRecords(newest, !matches));
    // Raft §7: a log that holds the snapshot's last entry keeps what follows; any other is replaced.
    return { entries: matches ? entries.filter((e) => e.index > newest.index) : [], snapshot: newest };
  }

  /** The meta of the snapshot file the log is compacted to. */
  async #openBase(snapshots: GroupSnapshots, compactIndex: number): Promise<SnapshotMeta> {
    const opened = await snapshots.open(compactIndex).catch((cause: unknown) => {
      throw new StorageError(
        "ERR_SNAPSHOT_CORRUPT",
        `the log is compacted to ${compactIndex} but that snapshot cannot be read`,
        { cause },
      );
    });
    return opened.meta;
  }

  /** Records that compact the log to `snapshot`, dropping the rest of the log when `discard`. */
  #compactRecords(snapshot: SnapshotMeta, discard: boolean): WalRecord[] {
    const records: WalRecord[] = [];
    const { lastIndex } = this.#wal.position(this.#group);
    if (discard && lastIndex > snapshot.index) {
      records.push({ type: "truncate-suffix", group: this.#group, fromIndex: logIndex(snapshot.index + 1) });
    }
    records.push({ type: "compact", group: this.#group, throughIndex: snapshot.index, term: snapshot.term });
    this.#compactedThrough = Math.max(this.#compactedThrough, snapshot.index);
    return records;
  }

  async persist(batch: PersistBatch): Promise<void> {
    const records: WalRecord[] = [];
    // An installed snapshot replaces the whole log (the core keeps a matching log without one).
    if (batch.snapshot !== undefined) records.push(...this.#compactRecords(batch.snapshot, true));
    if (batch.entries.length > 0)
      records.push({ type: "entries", group: this.#group, entries: batch.entries });
    const writes: Promise<void>[] = [];
    if (records.length > 0) writes.push(this.#wal.write(records));
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
    // A snapshot installed while this one was captured already compacted the log at least as far:
    // it covers everything this one does, and compacting back would go against the log's order.
    if (snapshot.index <= this.#compactedThrough) return;
    this.#compactedThrough = snapshot.index;
    await this.#wal.compact(this.#group, snapshot.index, snapshot.term);
  }
}
