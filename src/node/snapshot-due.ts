// When a group compacts its log. Compaction moves the log's base to the state store's durable
// applied index and writes only the base's meta (GroupSnapshots.compactToState): the state store
// already holds the state durably, so no state is exported and the cost does not grow with it. A
// snapshot file is exported only when someone needs the state as bytes (a follower behind the base,
// a new member, a backup). So the interval is a plain floor on the log since the base: a longer log
// costs memory (the core holds the entries after its base), a restart's replay and disk; a shorter
// one sends more lagging followers a whole snapshot instead of entries. A leader therefore keeps
// the entries its slowest follower lacks (one back from a restart, say) up to a ceiling, past which
// it compacts anyway and the follower gets a snapshot.

/** The compaction interval's settings (docs/design.md, "Snapshots and compaction"). */
export interface SnapshotInterval {
  /** Compact once this many entries were applied since the base ... */
  readonly entriesBetween: number;
  /** ... or this many bytes of entry data (whichever comes first). */
  readonly bytesBetween?: number;
  /**
   * A leader keeps the entries a follower still lacks, so that a follower back from a restart or a
   * pause catches up from the log rather than a whole snapshot, until the log since the base holds
   * this many bytes of entry data ...
   */
  readonly logBytesMax?: number;
  /** ... or this many entries: then it compacts past the follower anyway. */
  readonly logEntriesMax?: number;
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

/**
 * Where a due compaction goes (the state store's durable applied index may hold it lower still):
 * the applied index, or on a leader the lowest index a follower has (`followerMatchMin`) while the
 * log is below its ceiling. Undefined when nothing is due, or when holding back for a follower
 * would leave most of the log: less than half of it would go, so it waits for the follower or the
 * ceiling rather than compacting again and again in small steps.
 */
export function compactionPoint(
  interval: SnapshotInterval,
  log: LogSinceSnapshot & { readonly base: number; readonly applied: number },
  followerMatchMin: number | undefined,
): number | undefined {
  if (!snapshotDue(interval, log)) return undefined;
  const atCeiling =
    log.entries >= (interval.logEntriesMax ?? Number.POSITIVE_INFINITY) ||
    log.bytes >= (interval.logBytesMax ?? Number.POSITIVE_INFINITY);
  if (followerMatchMin === undefined || atCeiling || followerMatchMin >= log.applied) return log.applied;
  return (followerMatchMin - log.base) * 2 >= log.applied - log.base ? followerMatchMin : undefined;
}
