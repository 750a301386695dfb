// The checks that find a node's durable state damaged before the node loads it: a corrupt log
// record, hard-state file or snapshot. The state store has its own check (verify-state.ts).
import { snapshotChunkBytesMax } from "../node/index.js";
import type { GroupId } from "../raft/index.js";
import {
  type FileSystem,
  groupCorruptionError,
  HardStateStore,
  joinPath,
  SnapshotStore,
  StorageError,
  Wal,
} from "../storage/index.js";

/**
 * Why the group's durable state in `dataDir` cannot be trusted, or undefined when every check
 * passed: a corrupt WAL record (not a torn tail, which recovery cuts), hard state that fails its
 * checksum, or a snapshot the group needs (the one its log is compacted to, or the newest) that
 * fails its checksums. Only damage is reported; an I/O failure is thrown. Opens and closes the
 * files itself (the node opens them again).
 */
export async function findDamage(
  fs: FileSystem,
  dataDir: string,
  group: GroupId,
  segmentBytesMax: number,
): Promise<StorageError | undefined> {
  const { wal, recovery } = await Wal.open(fs, joinPath(dataDir, "wal"), { segmentBytesMax });
  try {
    const corrupt = groupCorruptionError(recovery, group);
    if (corrupt !== undefined) return corrupt;
    const damage = async (check: () => Promise<unknown>): Promise<StorageError | undefined> => {
      try {
        await check();
        return undefined;
      } catch (error) {
        if (
          error instanceof StorageError &&
          (error.code === "ERR_HARD_STATE_CORRUPT" || error.code === "ERR_SNAPSHOT_CORRUPT")
        )
          return error;
        throw error;
      }
    };
    const hardStates = await HardStateStore.open(fs, joinPath(dataDir, "hardstate"));
    const hard = await damage(() => hardStates.load(group));
    if (hard !== undefined) return hard;
    const files = await SnapshotStore.open(fs, joinPath(dataDir, "snapshots"), {
      chunkBytesMax: snapshotChunkBytesMax,
    });
    // The record of a base without a file (the log compacted to the state store).
    const base = await damage(() => files.base(group));
    if (base !== undefined) return base;
    const { compactIndex } = wal.position(group);
    const stored = await files.list(group);
    const needed = new Set<number>(stored.slice(0, 1));
    if (compactIndex > 0 && stored.includes(compactIndex)) needed.add(compactIndex);
    for (const index of needed) {
      const snapshot = await damage(() => files.verify(group, index));
      if (snapshot !== undefined) return snapshot;
    }
    return undefined;
  } finally {
    await wal.close();
  }
}
