// A node's answer to its own damaged or missing data (docs/faults.md, "Corruption"): it moves the
// Raft log, hard state, state store and snapshots aside (into `damaged/`, for the operator), and
// records durably that it is recovering, with why. It then starts as an empty member that neither
// votes nor campaigns nor serves local reads until a leader has given it everything committed
// (PersistedState.stateLost), and clears the record once that log is durable. The record survives
// a crash during the recovery, so the node never forgets that it is not whole yet.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import {
  errnoOf,
  type FileSystem,
  readIfPresent,
  removeFileDurably,
  writeFileAtomic,
} from "../storage/index.js";

/** The data directory's parts that hold replicated state, each rebuilt from the leader. */
export const replicatedStateDirs = ["wal", "hardstate", "state", "snapshots"] as const;
/** Where discarded state goes (only the latest discard is kept). */
export const damagedDirName = "damaged";
/** Present while the node recovers from discarded state; holds the reason as text. */
export const recoveringFileName = "recovering";
/**
 * Present when the running node found damage its start-time checks may not see (a state that
 * passes its checksums but differs from the majority's): the next open discards the replicated
 * state whatever the checks say. Holds the reason as text.
 */
export const discardRequestFileName = "discard-requested";

/** Why the node in `dataDir` is recovering, or undefined when it is whole. */
export async function readRecovering(fs: FileSystem, dataDir: string): Promise<string | undefined> {
  return await readReason(fs, join(dataDir, recoveringFileName));
}

/** Why the running node asked for its replicated state to be discarded, or undefined. */
export async function readDiscardRequest(fs: FileSystem, dataDir: string): Promise<string | undefined> {
  return await readReason(fs, join(dataDir, discardRequestFileName));
}

/**
 * Records durably that the next open must discard the replicated state in `dataDir` because of
 * `reason` (damage found while running): a crash before the repair still finds it.
 */
export async function requestDiscard(fs: FileSystem, dataDir: string, reason: string): Promise<void> {
  await writeReason(fs, join(dataDir, discardRequestFileName), reason);
}

async function readReason(fs: FileSystem, path: string): Promise<string | undefined> {
  const bytes = await readIfPresent(fs, path);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes).trim();
}

async function writeReason(fs: FileSystem, path: string, reason: string): Promise<void> {
  const text = new TextEncoder().encode(`${reason}\n`);
  await writeFileAtomic(fs, path, (handle) => handle.write(text, 0));
}

/** Whether `dir` holds a WAL segment: a node that ever started has one (the WAL opens first). */
export async function hasWalSegments(fs: FileSystem, dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).some((name) => /^wal-\d{16}\.log$/.test(name));
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return false;
    throw error;
  }
}

/**
 * Moves the replicated state in `dataDir` aside into `damaged/` (replacing an earlier discard) and
 * records, durably and before anything new is written, that the node is recovering because of
 * `reason`. The identity (node.json) stays: the node rejoins under its own id.
 */
export async function discardReplicatedState(fs: FileSystem, dataDir: string, reason: string): Promise<void> {
  // The record first: a crash in the middle of the moves must still find the node recovering.
  await writeReason(fs, join(dataDir, recoveringFileName), reason);
  const damaged = join(dataDir, damagedDirName);
  await rm(damaged, { recursive: true, force: true });
  await fs.mkdir(damaged);
  for (const name of replicatedStateDirs) {
    if ((await fs.stat(join(dataDir, name))) === undefined) continue;
    await fs.rename(join(dataDir, name), join(damaged, name));
  }
  await fs.syncDir(damaged);
  // Done: a request to discard is served (a crash before this line discards once more).
  await removeFileDurably(fs, join(dataDir, discardRequestFileName));
}

/** Clears the recovering record once the node is whole again (its recovered log is durable). */
export async function clearRecovering(fs: FileSystem, dataDir: string): Promise<void> {
  await removeFileDurably(fs, join(dataDir, recoveringFileName));
}
