import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "./file-system.js";
import { errnoOf } from "./file-system.js";

const flagsOf: Record<OpenMode, string | number> = {
  read: "r",
  "read-write": "r+",
  "create-or-truncate": "w+",
  "read-write-durable": constants.O_RDWR | constants.O_DSYNC,
};

/**
 * The real {@link FileSystem} on node:fs/promises. Every call, fsync and fdatasync included, runs on
 * libuv's thread pool, so the event loop keeps serving while the disk syncs.
 */
export class NodeFileSystem implements FileSystem {
  /** Opens `path`; see {@link OpenMode}. */
  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    return new NodeFileHandle(await fsp.open(path, flagsOf[mode]));
  }

  /** The sorted names in `dir`. */
  async readdir(dir: string): Promise<string[]> {
    return (await fsp.readdir(dir)).sort();
  }

  /** Creates `dir` recursively. */
  async mkdir(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  /** rename(2). */
  async rename(from: string, to: string): Promise<void> {
    await fsp.rename(from, to);
  }

  /** unlink(2). */
  async unlink(path: string): Promise<void> {
    await fsp.unlink(path);
  }

  /** fsync(2) on the directory, which is what makes a created or renamed entry survive a crash. */
  async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** stat(2), or undefined for a missing path. */
  async stat(path: string): Promise<FileStat | undefined> {
    try {
      const s = await fsp.stat(path);
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch (error) {
      if (errnoOf(error) === "ENOENT") return undefined;
      throw error;
    }
  }
}

class NodeFileHandle implements FileHandle {
  readonly #handle: fsp.FileHandle;

  constructor(handle: fsp.FileHandle) {
    this.#handle = handle;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    // write(2) may write less than asked; loop until every byte is down.
    while (done < data.length) {
      const { bytesWritten } = await this.#handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  async datasync(): Promise<void> {
    await this.#handle.datasync();
  }

  async sync(): Promise<void> {
    await this.#handle.sync();
  }

  async truncate(size: number): Promise<void> {
    await this.#handle.truncate(size);
  }

  async size(): Promise<number> {
    return (await this.#handle.stat()).size;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}
