// How one group's log position moves as WAL records are applied. The writer (checking what callers
// hand it) and recovery (replaying what is on disk) share this one definition, so the checkpoint a
// writer puts at the start of a segment is exactly what recovery computes at that point.
import type { Entry, GroupId } from "../raft/index.js";
import type { WalRecord } from "./wal-format.js";

/** One group's position in the log: plain numbers, so it can be copied and compared cheaply. */
export interface GroupState {
  /** Index of the last entry (or of the compaction point when the log after it is empty). */
  lastIndex: number;
  /** Entries through this index are covered by a snapshot (Raft §7). */
  compactIndex: number;
  compactTerm: number;
  /** Records of this group ever written. */
  recordCount: number;
}

/** A fresh group: empty log, nothing compacted. */
export function emptyGroupState(): GroupState {
  return { lastIndex: 0, compactIndex: 0, compactTerm: 0, recordCount: 0 };
}

/**
 * Applies `record` to `state` in place, or returns why it cannot follow the state (a gap, a
 * truncation below the compaction point, a compaction going backwards) and changes nothing.
 */
export function applyToGroupState(state: GroupState, record: WalRecord): string | undefined {
  switch (record.type) {
    case "entries": {
      const first = record.entries[0];
      const last = record.entries[record.entries.length - 1];
      if (first === undefined || last === undefined) return "empty entries record";
      // Raft §5.3: an append may overlap the log (replacing a conflicting suffix) but never leave a gap.
      if (first.index > state.lastIndex + 1) return `gap: entry ${first.index} after last ${state.lastIndex}`;
      if (first.index <= state.compactIndex) {
        return `entry ${first.index} at or below compaction point ${state.compactIndex}`;
      }
      state.lastIndex = last.index;
      break;
    }
    case "truncate-suffix":
      if (record.fromIndex <= state.compactIndex) {
        return `truncation from ${record.fromIndex} at or below compaction point ${state.compactIndex}`;
      }
      if (record.fromIndex > state.lastIndex + 1)
        return `truncation from ${record.fromIndex} past ${state.lastIndex}`;
      state.lastIndex = record.fromIndex - 1;
      break;
    case "compact":
      if (record.throughIndex < state.compactIndex) {
        return `compaction to ${record.throughIndex} below ${state.compactIndex}`;
      }
      state.compactIndex = record.throughIndex;
      state.compactTerm = record.term;
      // A snapshot may reach past the log (InstallSnapshot, Raft §7): the log then resumes after it.
      state.lastIndex = Math.max(state.lastIndex, record.throughIndex);
      break;
  }
  state.recordCount++;
  return undefined;
}

/**
 * One group's entries as recovery rebuilds them. Entries at or below `base` are not held: either a
 * snapshot covers them, or they lived in segments deleted because a snapshot covered them.
 */
export class RecoveredLog {
  readonly group: GroupId;
  readonly state: GroupState;
  base: number;
  entries: Entry[] = [];

  /** Starts a group's log at a checkpoint's state (or empty). */
  constructor(group: GroupId, state: GroupState) {
    this.group = group;
    this.state = { ...state };
    this.base = state.lastIndex;
  }

  /** Applies a record to the state and the entries, or returns why it does not fit. */
  apply(record: WalRecord): string | undefined {
    const problem = applyToGroupState(this.state, record);
    if (problem !== undefined) return problem;
    switch (record.type) {
      case "entries": {
        const first = record.entries[0]?.index ?? 0;
        this.#cutFrom(first);
        for (const e of record.entries) this.entries.push(e);
        break;
      }
      case "truncate-suffix":
        this.#cutFrom(record.fromIndex);
        break;
      case "compact": {
        const through = record.throughIndex;
        if (through >= this.base + this.entries.length) {
          this.entries = [];
          this.base = through;
        } else if (through > this.base) {
          this.entries.splice(0, through - this.base);
          this.base = through;
        }
        break;
      }
    }
    return undefined;
  }

  #cutFrom(index: number): void {
    if (index - 1 < this.base) {
      this.base = index - 1;
      this.entries = [];
    } else {
      this.entries.length = index - 1 - this.base;
    }
  }
}
