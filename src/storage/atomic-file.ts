import type { FileHandle, FileSystem } from "./file-system.js";
import { dirOf } from "./file-system.js";

/** The suffix of a file being written before its atomic rename; such leftovers are garbage. */
export const tempSuffix = ".tmp";

/**
 * Writes a file that appears whole or not at all: `fill` writes into `${path}.tmp`, which is then
 * fsynced, renamed over `path`, and made durable by fsyncing the directory. On failure the temp file
 * is removed (best effort; openers remove leftovers anyway) and the error propagates.
 */
export async function writeFileAtomic(
  fs: FileSystem,
  path: string,
  fill: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  const temp = `${path}${tempSuffix}`;
  const handle = await fs.open(temp, "create-or-truncate");
  try {
    await fill(handle);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  await fs.rename(temp, path);
  await fs.syncDir(dirOf(path));
}

/** Removes every leftover temp file in `dir` (an atomic write a crash interrupted). */
export async function removeTempFiles(fs: FileSystem, dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith(tempSuffix)) await fs.unlink(`${dir}/${name}`);
  }
}
