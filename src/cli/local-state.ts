// The durable state of one node's Raft group, opened together (WAL, hard state, state store,
// snapshots), and the checks that find it damaged before the group loads it: a corrupt log
// record, hard-state file or snapshot, or a state store that fails its own check.
import { join } from "node:path";
import { GroupSnapshots, snapshotChunkBytesMax } from "../node/group-snapshots.js";
import { WalGroupStorage } from "../node/wal-group-storage.js";
import type { GroupId } from "../raft/index.js";
import { makeDirDurable } from "../storage/atomic-file.js";
import type { FileSystem } from "../storage/file-system.js";
import { HardStateStore } from "../storage/hard-state-store.js";
import { LmdbStateStore } from "../storage/lmdb-state-store.js";
import { SnapshotStore } from "../storage/snapshot-store.js";
import { StorageError } from "../storage/storage-error.js";
import { groupCorruptionError, Wal, type WalRecovery } from "../storage/wal.js";

/** The opened state of a node's group. */
export interface LocalState {
  readonly wal: Wal;
  readonly recovery: WalRecovery;
  readonly hardStates: HardStateStore;
  readonly store: LmdbStateStore;
  readonly snapshotFiles: SnapshotStore;
  readonly snapshots: GroupSnapshots;
  readonly storage: WalGroupStorage;
  /** Closes the WAL and the state store. */
  close(): Promise<void>;
}

/** Settings for {@link openLocalState}. */
export interface LocalStateOptions {
  readonly dataDir: string;
  readonly group: GroupId;
  readonly segmentBytesMax: number;
  readonly onFailure: (error: StorageError) => void;
  /** The node is recovering from discarded state (PersistedState.stateLost). */
  readonly stateLost: boolean;
}

/** Opens the group's state in `options.dataDir`; on a failure, closes what it had opened. */
export async function openLocalState(fs: FileSystem, options: LocalStateOptions): Promise<LocalState> {
  const { dataDir, onFailure } = options;
  const { wal, recovery } = await Wal.open(fs, join(dataDir, "wal"), {
    segmentBytesMax: options.segmentBytesMax,
    onFailure,
  });
  let store: LmdbStateStore | undefined;
  try {
    const hardStates = await HardStateStore.open(fs, join(dataDir, "hardstate"), { onFailure });
    // lmdb creates its directory without syncing the parent; create it durably first.
    await makeDirDurable(fs, join(dataDir, "state"));
    store = LmdbStateStore.open(join(dataDir, "state"), { keyBytesMax: 1900 });
    const snapshotFiles = await SnapshotStore.open(fs, join(dataDir, "snapshots"), {
      chunkBytesMax: snapshotChunkBytesMax,
      onFailure,
    });
    const snapshots = new GroupSnapshots(snapshotFiles, store, options.group);
    const storage = new WalGroupStorage(
      hardStates,
      wal,
      recovery,
      options.group,
      snapshots,
      options.stateLost,
    );
    const opened = store;
    return {
      wal,
      recovery,
      hardStates,
      store: opened,
      snapshotFiles,
      snapshots,
      storage,
      close: async () => {
        await wal.close();
        await opened.close();
      },
    };
  } catch (error) {
    await wal.close();
    await store?.close();
    throw error;
  }
}

/**
 * Why the group's durable state cannot be trusted, or undefined when every check passed: a
 * corrupt WAL record (not a torn tail, which recovery cuts), hard state that fails its checksum,
 * or a snapshot the group needs (the one its log is compacted to, or the newest) that fails its
 * checksums. Only damage is reported; an I/O failure is thrown.
 */
export async function findDamage(state: LocalState, group: GroupId): Promise<StorageError | undefined> {
  const corrupt = groupCorruptionError(state.recovery, group);
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
  const hard = await damage(() => state.hardStates.load(group));
  if (hard !== undefined) return hard;
  const { compactIndex } = state.wal.position(group);
  const needed = new Set<number>();
  if (compactIndex > 0) needed.add(compactIndex);
  const [newest] = await state.snapshotFiles.list(group);
  if (newest !== undefined) needed.add(newest);
  for (const index of needed) {
    if (!(await state.snapshots.has(index))) continue;
    const snapshot = await damage(() => state.snapshotFiles.verify(group, index));
    if (snapshot !== undefined) return snapshot;
  }
  return undefined;
}
