/**
 * The stable codes of every expected storage failure. A protocol or the runtime maps each one through
 * a `Record<StorageErrorCode, ...>` table, so adding a code forces every mapping to be completed.
 */
export type StorageErrorCode =
  /** A WAL record or segment failed its checksum or framing before the tail: the data is corrupt. */
  | "ERR_WAL_CORRUPT"
  /** The disk is full (ENOSPC): the write was rejected and nothing of it counts; reads still work. */
  | "ERR_NO_SPACE"
  /** An earlier fsync/fdatasync (or write) failed: the store stopped and refuses everything (fail-stop). */
  | "ERR_STORAGE_FAILED"
  /** A snapshot file failed its checksum or framing; it must not be installed. */
  | "ERR_SNAPSHOT_CORRUPT"
  /** The hard state file failed its checksum or framing. */
  | "ERR_HARD_STATE_CORRUPT"
  /** A group whose WAL data is corrupt was asked to serve; it must not vote or lead. */
  | "ERR_GROUP_CORRUPT"
  /** A record, chunk, key or value is larger than its configured `*Max` limit. */
  | "ERR_TOO_LARGE"
  /** The store was closed. */
  | "ERR_CLOSED"
  /**
   * The state machine store holds less than the compacted log assumes (a restore cut short, or
   * state taken back by a power loss) and no snapshot is there to restore it from: the node must
   * not start on it.
   */
  | "ERR_STATE_BEHIND_LOG"
  /** A state store value failed its checksum: this node's copy of the state is damaged. */
  | "ERR_STATE_CORRUPT";

/** Every storage error code, for tables and tests that must cover them all. */
export const storageErrorCodes: readonly StorageErrorCode[] = [
  "ERR_WAL_CORRUPT",
  "ERR_NO_SPACE",
  "ERR_STORAGE_FAILED",
  "ERR_SNAPSHOT_CORRUPT",
  "ERR_HARD_STATE_CORRUPT",
  "ERR_GROUP_CORRUPT",
  "ERR_TOO_LARGE",
  "ERR_CLOSED",
  "ERR_STATE_BEHIND_LOG",
  "ERR_STATE_CORRUPT",
];

/** Where corrupt data was found: the file (relative to the store's directory) and the byte offset. */
export interface CorruptionSite {
  readonly file: string;
  readonly offset: number;
}

/** An expected storage failure with a stable {@link StorageErrorCode}; the lower-level error is its `cause`. */
export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly code: StorageErrorCode;
  /** Set for corruption errors: which file and byte offset were bad. */
  readonly site: CorruptionSite | undefined;

  /** Creates an error with `code`; `site` names the corrupt file and offset where there is one. */
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown; site?: CorruptionSite }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.site = options?.site;
  }
}

/** Whether `error` is a {@link StorageError} with the given code. */
export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
