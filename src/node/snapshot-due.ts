// When a group compacts its log. Compaction moves the log's base to the state store's durable
// applied index and writes only the base's meta (GroupSnapshots.compactToState): the state store
// already holds the state durably, so no state is exported and the cost does not grow with it. A
// snapshot file is exported only when someone needs the state as bytes (a follower behind the base,
// a new member, a backup). So the interval is a plain floor on the log since the base: a longer log
// costs memory (the core holds the entries after its base), a restart's replay and disk; a shorter
// one sends more lagging followers a whole snapshot instead of entries.

/** The compaction interval's settings (docs/design.md, "Snapshots and compaction"). */
export interface SnapshotInterval {
  /** Compact once this many entries were applied since the base ... */
  readonly entriesBetween: number;
  /** ... or this many bytes of entry data (whichever comes first). */
  readonly bytesBetween?: number;
}

/** The log since the base. */
export interface LogSinceSnapshot {
  /** Entries applied since the base. */
  readonly entries: number;
  /** Their data bytes. */
  readonly bytes: number;
}

/** Whether a compaction is due: the log since the base reached either floor. */
export function snapshotDue(interval: SnapshotInterval, log: LogSinceSnapshot): boolean {
  return (
    log.entries >= interval.entriesBetween || log.bytes >= (interval.bytesBetween ?? Number.POSITIVE_INFINITY)
  );
}
