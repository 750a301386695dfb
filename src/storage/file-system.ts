// The one door through which storage reaches a disk. Everything in src/storage takes a FileSystem, so
// the simulator can swap the real disk for one that loses unsynced writes, tears them, flips bits
// and runs out of space, all decided by a seed.

/** How a file is opened. */
export type OpenMode =
  /** Read only; the file must exist. */
  | "read"
  /** Read and write; the file must exist. */
  | "read-write"
  /** Read and write; creates the file, or empties it if it exists. */
  | "create-or-truncate"
  /**
   * Read and write, the file must exist, and every write is durable (its data and the size needed to
   * read it) when it resolves: O_DSYNC, one system call and one thread-pool trip instead of write
   * followed by fdatasync. A crash during such a write may leave a torn prefix of it.
   */
  | "read-write-durable";

/** An open file. Positions are absolute byte offsets; writes never move a shared cursor. */
export interface FileHandle {
  /** Reads up to `length` bytes at `position` into `buffer` from `offset`; resolves to the count read (0 at end). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Writes all of `data` at `position`, extending the file as needed. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes the file's data (and the size needed to read it) durable: fdatasync(2). */
  datasync(): Promise<void>;
  /** Makes the file's data and metadata durable: fsync(2). */
  sync(): Promise<void>;
  /** Cuts (or zero-extends) the file to `size` bytes. Durable only after a sync. */
  truncate(size: number): Promise<void>;
  /** The file's current size in bytes. */
  size(): Promise<number>;
  /** Closes the handle; later calls on it fail. */
  close(): Promise<void>;
}

/** A file's metadata as storage needs it. */
export interface FileStat {
  readonly size: number;
  readonly isDirectory: boolean;
}

/**
 * A promise-based file system: {@link NodeFileSystem} for real disks, {@link SimFileSystem} for
 * tests and the simulator. Errors carry the POSIX `code` (`ENOENT`, `ENOSPC`, `EIO`, ...) as Node's do.
 */
export interface FileSystem {
  /** Opens `path` in `mode`. */
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** The names (not paths) in directory `dir`, sorted. */
  readdir(dir: string): Promise<string[]>;
  /** Creates `dir` and its missing parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Atomically replaces `to` with `from`. Durable only after the directory is synced. */
  rename(from: string, to: string): Promise<void>;
  /** Removes the file at `path`. Durable only after the directory is synced. */
  unlink(path: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, removals) durable: fsync(2) on the directory. */
  syncDir(dir: string): Promise<void>;
  /** Metadata of `path`, or undefined when it does not exist. */
  stat(path: string): Promise<FileStat | undefined>;
}

/** The POSIX error code (`ENOSPC`, `EIO`, ...) carried by a file system error, if any. */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code: unknown = error.code;
  return typeof code === "string" ? code : undefined;
}

/** Joins path pieces with "/" (storage paths are always POSIX-style and built only here). */
export function joinPath(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

/** The directory part of `path` ("a/b/c" -> "a/b", "c" -> "."). */
export function dirOf(path: string): string {
  const at = path.lastIndexOf("/");
  if (at < 0) return ".";
  if (at === 0) return "/";
  return path.slice(0, at);
}

/** The last part of `path` ("a/b/c" -> "c"). */
export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
