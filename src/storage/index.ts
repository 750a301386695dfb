// The public surface of the storage layer: the file system seam (real and simulated), the
// write-ahead log, hard state and snapshot files, the state machine store, and the error codes.
export { makeDirDurable, removeFileDurably, tempSuffix, writeFileAtomic } from "./atomic-file.js";
export { DelayedFileSystem, type DiskDelay } from "./delayed-file-system.js";
export {
  dirOf,
  errnoOf,
  type FileHandle,
  type FileStat,
  type FileSystem,
  joinPath,
  type OpenMode,
} from "./file-system.js";
export { decodeHardState, encodeHardState, HardStateStore } from "./hard-state-store.js";
export { LmdbStateStore } from "./lmdb-state-store.js";
export { MemoryStateStore, type MemoryStateStoreOptions } from "./memory-state-store.js";
export { NodeFileSystem } from "./node-file-system.js";
export { readIfPresent, readWhole } from "./read-whole.js";
export {
  type Chance,
  immediateScheduler,
  noFaults,
  type Scheduler,
  type SimFaults,
  SimFileSystem,
  SimFsError,
} from "./sim-file-system.js";
export {
  defaultSnapshotStoreOptions,
  openSnapshotFile,
  type SnapshotFile,
  type SnapshotReader,
  SnapshotStore,
  type SnapshotStoreOptions,
  type SnapshotWriter,
} from "./snapshot-store.js";
export {
  appliedIndexKey,
  chunkWithoutKinds,
  defaultStateStoreOptions,
  type Effect,
  type KeyKind,
  type KeyValue,
  keyKind,
  type RangeQuery,
  restoringKey,
  type StateExport,
  type StateStore,
  type StateStoreOptions,
  type StateView,
  storeMetaKind,
} from "./state-store.js";
export {
  type CorruptionSite,
  isStorageError,
  StorageError,
  type StorageErrorCode,
  storageErrorCodes,
} from "./storage-error.js";
export {
  defaultWalOptions,
  Wal,
  type WalOptions,
} from "./wal.js";
export {
  type DurableEnd,
  decodeDurableEnd,
  durableEndFileName,
  encodeDurableEnd,
  readDurableEnd,
} from "./wal-durable-end.js";
export type { WalRecord } from "./wal-format.js";
export {
  type GroupRecovery,
  groupCorruptionError,
  segmentName,
  type TornTail,
  type WalCorruption,
  type WalRecovery,
  walCorruptionError,
} from "./wal-recovery.js";
export { readTailLost, type TailLost, tailLostFileName } from "./wal-tail-lost.js";
