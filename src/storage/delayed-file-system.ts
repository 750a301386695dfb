import type { FileHandle, FileStat, FileSystem, OpenMode } from "./file-system.js";

/** What a {@link DelayedFileSystem} asks of its surroundings. */
export interface DiskDelay {
  /** The delay to add to the next write or sync, read when that operation's turn comes (0: none). */
  delayMs(): number;
  /** Resolves after `delayMs`; tests pass one they control. */
  sleep(delayMs: number): Promise<void>;
}

/**
 * A slow disk, for the real-process fault suite: every write, truncate and sync waits `delayMs()`
 * before it reaches the wrapped file system, in order per file. A write still waiting lives only in
 * the process's memory, so a crash (SIGKILL) loses it exactly as a power cut loses data that was
 * never synced: a node that acknowledges only after its syncs resolve loses nothing it acknowledged.
 * Reads and metadata pass straight through.
 */
export class DelayedFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  readonly #delay: DiskDelay;

  /** Wraps `inner`; the delay applies from the next operation whenever `delay.delayMs()` changes. */
  constructor(inner: FileSystem, delay: DiskDelay) {
    this.#inner = inner;
    this.#delay = delay;
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    return new DelayedFileHandle(await this.#inner.open(path, mode), this.#delay);
  }

  readdir(dir: string): Promise<string[]> {
    return this.#inner.readdir(dir);
  }

  mkdir(dir: string): Promise<void> {
    return this.#inner.mkdir(dir);
  }

  rename(from: string, to: string): Promise<void> {
    return this.#inner.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return this.#inner.unlink(path);
  }

  async syncDir(dir: string): Promise<void> {
    await waitOut(this.#delay);
    await this.#inner.syncDir(dir);
  }

  stat(path: string): Promise<FileStat | undefined> {
    return this.#inner.stat(path);
  }
}

async function waitOut(delay: DiskDelay): Promise<void> {
  const ms = delay.delayMs();
  if (ms > 0) await delay.sleep(ms);
}

class DelayedFileHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #delay: DiskDelay;
  /** The last queued mutation: each waits for the one before, so a shorter delay cannot reorder them. */
  #queue: Promise<void> = Promise.resolve();

  constructor(inner: FileHandle, delay: DiskDelay) {
    this.#inner = inner;
    this.#delay = delay;
  }

  #enqueue(operation: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      await waitOut(this.#delay);
      await operation();
    });
    // The next operation waits for this one whether it succeeds or fails; the caller sees its error.
    this.#queue = run.catch(() => undefined);
    return run;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.#inner.read(buffer, offset, length, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.#enqueue(() => this.#inner.write(data, position));
  }

  datasync(): Promise<void> {
    return this.#enqueue(() => this.#inner.datasync());
  }

  sync(): Promise<void> {
    return this.#enqueue(() => this.#inner.sync());
  }

  truncate(size: number): Promise<void> {
    return this.#enqueue(() => this.#inner.truncate(size));
  }

  size(): Promise<number> {
    return this.#inner.size();
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#inner.close();
  }
}
