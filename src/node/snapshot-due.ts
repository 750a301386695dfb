// When a group takes its next snapshot. A capture writes the WHOLE state to a new file (a checksum
// pass and an fsync on every node), so a fixed interval of log makes the snapshot work per byte
// written grow with the state: at a million keys each 64 MiB of log rewrote up to 381 MiB of state
// (docs/benchmarks.md, "Scale"). The interval here grows with the state instead: the log since the
// last snapshot must also hold a set share of that snapshot's size. A snapshot of size S is then
// followed by at least share * S bytes of log, and the next one is at most S plus what that log
// added, so the snapshot bytes written per log byte stay below 1 / share plus the snapshot bytes
// one log byte turns into (3 or so at the default 50%), whatever the state's size. The price is a longer log, on disk and in memory (the core holds the
// entries after its snapshot), so a ceiling takes a snapshot anyway once the log reaches it.

/** The snapshot interval's settings (docs/operations.md, "Snapshots"). */
export interface SnapshotInterval {
  /** The floor: never before this many entries were applied since the last snapshot ... */
  readonly entriesBetween: number;
  /** ... or this many bytes of entry data (whichever comes first). */
  readonly bytesBetween?: number;
  /**
   * The proportional rule: past the floor, wait until the log's data bytes since the last snapshot
   * reach this percentage of that snapshot's size. 0 (or absent) leaves the floor alone.
   */
  readonly stateSharePercent?: number;
  /** The ceiling on the log kept: at this many data bytes since the last snapshot, take one anyway. */
  readonly logBytesMax?: number;
  /** ... or at this many entries (the in-memory log's size has a per-entry part too). */
  readonly logEntriesMax?: number;
}

/** The log since the last snapshot, and that snapshot's size. */
export interface LogSinceSnapshot {
  /** Entries applied since the last snapshot. */
  readonly entries: number;
  /** Their data bytes. */
  readonly bytes: number;
  /** The last snapshot's size in bytes; undefined when there is none or it is not known. */
  readonly snapshotBytes: number | undefined;
}

/** Whether a snapshot is due: past the floor and the proportional share, or at a ceiling. */
export function snapshotDue(interval: SnapshotInterval, log: LogSinceSnapshot): boolean {
  const { entries, bytes } = log;
  if (entries >= (interval.logEntriesMax ?? Number.POSITIVE_INFINITY)) return true;
  if (bytes >= (interval.logBytesMax ?? Number.POSITIVE_INFINITY)) return true;
  const floorReached =
    entries >= interval.entriesBetween || bytes >= (interval.bytesBetween ?? Number.POSITIVE_INFINITY);
  if (!floorReached) return false;
  // Integers only: bytes / snapshotBytes >= percent / 100.
  return bytes * 100 >= (interval.stateSharePercent ?? 0) * (log.snapshotBytes ?? 0);
}
