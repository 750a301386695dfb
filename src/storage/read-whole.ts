import { errnoOf, type FileSystem } from "./file-system.js";

/** {@link readWhole}, or undefined when there is no file at `path` (a side record never written). */
export async function readIfPresent(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await readWhole(fs, path);
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** Reads all of the file at `path` into one array (used for WAL segments, which `segmentBytesMax` bounds). */
export async function readWhole(fs: FileSystem, path: string): Promise<Uint8Array> {
  const handle = await fs.open(path, "read");
  try {
    const size = await handle.size();
    // Every byte up to `size` is overwritten below (or cut off), so skipping the zero-fill is safe.
    const out: Uint8Array = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const n = await handle.read(out, at, Math.min(size - at, 1 << 26), at);
      // A short read is normal; a zero read before the size is a file cut under us.
      if (n === 0) return out.subarray(0, at);
      at += n;
    }
    return out;
  } finally {
    await handle.close();
  }
}
