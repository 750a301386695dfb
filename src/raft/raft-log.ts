// The core's in-memory view of the Raft log: a compacted prefix (described by the last snapshot),
// the entries after it, and the three positions that move through them: persisted, committed and
// applied. The runtime keeps the durable copy; this view says what it still has to write.
import { assert } from "../util/assert.js";
import { type Entry, type LogIndex, logIndex, type SnapshotMeta, type Term, term } from "./types.js";

/** The bytes an entry costs against the byte limits (its payload plus a fixed header estimate). */
export function entryBytes(entry: Entry): number {
  return entry.data.length + entryHeaderBytes;
}

/** A rough per-entry framing cost, so empty entries still count toward byte limits. */
export const entryHeaderBytes = 24;

/**
 * The log view. Indexes are absolute; `entries[k]` has index `snapshot.index + 1 + k`.
 *
 * Invariant: snapshot.index <= appliedIndex <= commitIndex <= lastIndex().
 * Invariant: persistedIndex <= lastIndex(), and every entry above persistedIndex is yet to be written
 * or is being written by the Ready in flight.
 */
export class RaftLog {
  #snapshot: SnapshotMeta;
  #entries: Entry[];
  /** Highest index known committed (Raft §5.3). */
  commitIndex: LogIndex;
  /** Highest index the application has applied (acknowledged through advance). */
  appliedIndex: LogIndex;
  /** Highest index handed out for applying but not yet acknowledged. */
  applyingIndex: LogIndex;
  /** Highest index the runtime reported durable. */
  persistedIndex: LogIndex;
  /** First index not yet handed out for persisting. */
  #unstableFrom: LogIndex;
  /** A received snapshot not yet handed out for installing. */
  pendingSnapshot: SnapshotMeta | undefined;

  /** Builds the view from persisted state: a snapshot (or the empty log's origin) and the entries after it. */
  constructor(
    snapshot: SnapshotMeta,
    entries: readonly Entry[],
    commitIndex: LogIndex,
    appliedIndex: LogIndex,
  ) {
    this.#snapshot = snapshot;
    this.#entries = [...entries];
    entries.forEach((e, k) => {
      assert(e.index === snapshot.index + 1 + k, `entry ${k} has index ${e.index}, not contiguous`);
      const prev = k === 0 ? snapshot.term : (entries[k - 1]?.term ?? snapshot.term);
      assert(e.term >= prev, `entry ${e.index} has a smaller term than its predecessor`);
    });
    this.persistedIndex = this.lastIndex();
    this.#unstableFrom = logIndex(this.lastIndex() + 1);
    assert(commitIndex <= this.lastIndex(), `commit ${commitIndex} beyond last index ${this.lastIndex()}`);
    this.commitIndex = logIndex(Math.max(commitIndex, snapshot.index));
    const applied = Math.max(appliedIndex, snapshot.index);
    assert(applied <= this.commitIndex, `applied ${applied} beyond commit ${this.commitIndex}`);
    this.appliedIndex = logIndex(applied);
    this.applyingIndex = this.appliedIndex;
    this.pendingSnapshot = undefined;
  }

  /**
   * Marks the entries up to `commitIndex` of a brand-new group as committed but not yet written:
   * the first Ready hands them out for persisting.
   */
  bootstrap(commitIndex: LogIndex): void {
    assert(this.appliedIndex === 0 && this.commitIndex === 0, "bootstrap of a used log");
    this.commitIndex = commitIndex;
    this.persistedIndex = logIndex(0);
    this.#unstableFrom = logIndex(1);
  }

  /** The snapshot the log starts after. */
  get snapshot(): SnapshotMeta {
    return this.#snapshot;
  }

  /** The first index still held as an entry (snapshot.index + 1 even when the view is empty). */
  firstIndex(): LogIndex {
    return logIndex(this.#snapshot.index + 1);
  }

  /** The index of the last entry, or the snapshot's index when no entry follows it. */
  lastIndex(): LogIndex {
    return logIndex(this.#snapshot.index + this.#entries.length);
  }

  /** The term of the last entry (or of the snapshot). */
  lastTerm(): Term {
    return this.#entries.at(-1)?.term ?? this.#snapshot.term;
  }

  /** The term of the entry at `index`, or undefined when it is compacted away or beyond the end. */
  termAt(index: number): Term | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.term;
    if (index < this.#snapshot.index || index > this.lastIndex()) return undefined;
    return this.#entries[index - this.#snapshot.index - 1]?.term;
  }

  /** Whether the log holds an entry (or the snapshot point) at `index` with term `t` (Raft §5.3). */
  matchTerm(index: number, t: Term): boolean {
    return this.termAt(index) === t;
  }

  /** The entry at `index`, or undefined when compacted or beyond the end. */
  entryAt(index: number): Entry | undefined {
    if (index <= this.#snapshot.index) return undefined;
    return this.#entries[index - this.#snapshot.index - 1];
  }

  /**
   * Entries in [lo, hi), cut after `bytesMax` bytes but always at least one entry when the range is
   * non-empty, so one oversized entry still moves. `lo` must not be compacted.
   */
  slice(lo: number, hi: number, bytesMax = Number.POSITIVE_INFINITY): Entry[] {
    assert(lo >= this.firstIndex(), `slice from ${lo} below first index ${this.firstIndex()}`);
    assert(hi <= this.lastIndex() + 1, `slice to ${hi} beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#entries[i - this.#snapshot.index - 1];
      assert(e !== undefined, `missing entry ${i}`);
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Raft §5.4.1: whether a candidate whose last entry is (lastIndex, lastTerm) is at least as
   * up-to-date as this log.
   */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    return lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index <= `index` whose term is <= `t`, with that term: the probe point for fast
   * backtracking. Every entry after it has a term above `t`, so it cannot match a log whose entry
   * at that position has term `t` or less.
   */
  findConflictByTerm(index: LogIndex, t: Term): { index: LogIndex; term: Term } {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.#snapshot.index; i--) {
      const ti = this.termAt(i);
      if (ti !== undefined && ti <= t) return { index: logIndex(i), term: ti };
    }
    return { index: logIndex(i), term: this.termAt(i) ?? term(0) };
  }

  /**
   * Appends the leader's own new entries (which follow the last index). Returns nothing; the
   * entries become unstable until a Ready hands them out.
   */
  appendNew(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, `appendNew out of order at ${e.index}`);
      assert(e.term >= this.lastTerm(), `appendNew with a smaller term at ${e.index}`);
      this.#entries.push(e);
    }
  }

  /**
   * Follower side of AppendEntries (Raft §5.3 receiver rules 2-4): if the entry at prevLogIndex has
   * prevLogTerm, skip entries already present, truncate at the first conflict and append the rest.
   * Returns the index of the last new entry and the first index that was (re)written, or undefined
   * when the consistency check fails.
   */
  maybeAppend(
    prevLogIndex: LogIndex,
    prevLogTerm: Term,
    entries: readonly Entry[],
  ): { lastNewIndex: LogIndex; firstWritten: LogIndex | undefined } | undefined {
    if (!this.matchTerm(prevLogIndex, prevLogTerm)) return undefined;
    let k = 0;
    // Entries at or below the snapshot are committed and therefore already match (Log Matching).
    while (k < entries.length && (entries[k]?.index ?? 0) <= this.#snapshot.index) k++;
    for (; k < entries.length; k++) {
      const e = entries[k];
      assert(e !== undefined, "hole in entries");
      const existing = this.termAt(e.index);
      if (existing === e.term) continue;
      if (existing !== undefined) {
        // Raft §5.3 rule 3: a conflicting entry and all that follow it are deleted. Committed entries
        // can never conflict (Leader Completeness, §5.4).
        assert(e.index > this.commitIndex, `conflict at committed index ${e.index}`);
        this.#truncateFrom(e.index);
      }
      const firstWritten = e.index;
      for (; k < entries.length; k++) {
        const next = entries[k];
        assert(next !== undefined && next.index === this.lastIndex() + 1, "non-contiguous append");
        assert(next.term >= this.lastTerm(), `entry ${next.index} has a smaller term than its predecessor`);
        this.#entries.push(next);
      }
      return { lastNewIndex: logIndex(prevLogIndex + entries.length), firstWritten };
    }
    return { lastNewIndex: logIndex(prevLogIndex + entries.length), firstWritten: undefined };
  }

  #truncateFrom(index: LogIndex): void {
    this.#entries.length = index - this.#snapshot.index - 1;
    if (this.#unstableFrom > index) this.#unstableFrom = index;
    if (this.persistedIndex >= index) this.persistedIndex = logIndex(index - 1);
  }

  /** Raft §5.3: raises the commit index (never lowers it; a stale leader's commit is ignored). */
  commitTo(index: LogIndex): void {
    if (index <= this.commitIndex) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.commitIndex = index;
  }

  /** Entries not yet handed out for persisting. */
  unstableEntries(): Entry[] {
    if (this.#unstableFrom > this.lastIndex()) return [];
    return this.slice(this.#unstableFrom, this.lastIndex() + 1);
  }

  /** Marks every unstable entry as handed out for persisting. */
  markHandedOut(): void {
    this.#unstableFrom = logIndex(this.lastIndex() + 1);
  }

  /**
   * The runtime made entries up to `index` durable. Entries that were overwritten after they were
   * handed out are not counted: their replacements are unstable again.
   */
  persistedTo(index: LogIndex): void {
    // Until the snapshot the entries build on is installed, nothing above it is durable either.
    if (this.installingSnapshot()) return;
    const durable = Math.min(index, this.#unstableFrom - 1, this.lastIndex());
    if (durable > this.persistedIndex) this.persistedIndex = logIndex(durable);
  }

  /** Committed, persisted entries not yet handed out for applying, up to `bytesMax` bytes (>= 1 entry). */
  entriesToApply(bytesMax: number): Entry[] {
    const hi = Math.min(this.commitIndex, this.persistedIndex);
    if (this.installingSnapshot() || hi <= this.applyingIndex) return [];
    return this.slice(this.applyingIndex + 1, hi + 1, bytesMax);
  }

  /** The application acknowledged applying everything up to `index`. */
  appliedTo(index: LogIndex): void {
    assert(index <= this.commitIndex, `applied ${index} beyond commit ${this.commitIndex}`);
    if (index > this.appliedIndex) this.appliedIndex = index;
    if (index > this.applyingIndex) this.applyingIndex = index;
  }

  /** Records handing out entries up to `index` for applying. */
  applyingTo(index: LogIndex): void {
    if (index > this.applyingIndex) this.applyingIndex = index;
  }

  /**
   * Replaces the log with a received snapshot (Raft §7 receiver rule 7): the caller has checked that
   * the log does not already hold the snapshot's last entry, so every entry is discarded.
   */
  restore(snapshot: SnapshotMeta): void {
    assert(snapshot.index > this.commitIndex, "restore of a snapshot that is not ahead of commit");
    this.#entries = [];
    this.#snapshot = snapshot;
    this.commitIndex = snapshot.index;
    this.pendingSnapshot = snapshot;
    this.#unstableFrom = logIndex(snapshot.index + 1);
    this.persistedIndex = logIndex(Math.min(this.persistedIndex, snapshot.index - 1));
  }

  /** Whether a received snapshot is still waiting to be installed by the runtime. */
  installingSnapshot(): boolean {
    return this.applyingIndex < this.#snapshot.index;
  }

  /** The runtime installed and persisted the snapshot handed out by a Ready. */
  snapshotInstalled(snapshot: SnapshotMeta): void {
    if (this.persistedIndex < snapshot.index) this.persistedIndex = snapshot.index;
    if (this.appliedIndex < snapshot.index) this.appliedIndex = snapshot.index;
    if (this.applyingIndex < snapshot.index) this.applyingIndex = snapshot.index;
  }

  /**
   * Discards entries up to `snapshot.index`, which the application has captured in a snapshot
   * (Raft §7). Only applied, persisted entries may be compacted.
   */
  compact(snapshot: SnapshotMeta): void {
    assert(snapshot.index > this.#snapshot.index, "compaction must move forward");
    assert(snapshot.index <= this.appliedIndex, "compaction beyond the applied index");
    assert(snapshot.index <= this.persistedIndex, "compaction beyond the persisted index");
    assert(this.termAt(snapshot.index) === snapshot.term, "compaction with the wrong term");
    this.#entries = this.#entries.slice(snapshot.index - this.#snapshot.index);
    this.#snapshot = snapshot;
  }

  /** Total bytes (see {@link entryBytes}) of the entries in (after, upTo]. */
  bytesBetween(after: number, upTo: number): number {
    let bytes = 0;
    for (let i = Math.max(after, this.#snapshot.index) + 1; i <= Math.min(upTo, this.lastIndex()); i++) {
      const e = this.entryAt(i);
      if (e !== undefined) bytes += entryBytes(e);
    }
    return bytes;
  }

  /** Whether entries wait to be handed out for persisting. */
  hasUnstable(): boolean {
    return this.#unstableFrom <= this.lastIndex();
  }
}
