import type { FileHandle, FileSystem } from "./file-system.js";
import { dirOf, errnoOf } from "./file-system.js";

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

/** Removes the file at `path` if there is one, durably (its directory is fsynced after). */
export async function removeFileDurably(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  await fs.syncDir(dirOf(path));
}

/** Removes every leftover temp file in `dir` (an atomic write a crash interrupted). */
export async function removeTempFiles(fs: FileSystem, dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith(tempSuffix)) await fs.unlink(`${dir}/${name}`);
  }
}

/**
 * Creates `dir` and its missing parents so that they survive a power loss: a new directory is only
 * an entry in its parent, durable once the parent is fsynced (as a renamed file is), so each level
 * created here gets its parent synced, top down. The parent of `dir` itself is synced even when
 * `dir` already existed: a process that crashed between its mkdir and that fsync left a directory
 * that is visible but not yet durable.
 */
export async function makeDirDurable(fs: FileSystem, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !isRootDir(d) && (await fs.stat(d)) === undefined; d = dirOf(d)) missing.push(d);
  await fs.mkdir(dir);
  const synced = new Set<string>();
  for (const d of [...missing.reverse(), ...(missing.includes(dir) ? [] : [dir])]) {
    const parent = dirOf(d);
    if (isRootDir(d) || synced.has(parent)) continue;
    await fs.syncDir(parent);
    synced.add(parent);
  }
}

function isRootDir(dir: string): boolean {
  return dir === "/" || dir === "." || dir === "";
}
