// `cairn snapshot save` and `cairn snapshot restore`: backups of the replicated state and new
// clusters made from them (docs/operations.md, "Backup and restore"). A backup is a Raft snapshot
// file exactly as a node stores it and ships it to a follower (header with its checksum, chunks
// each with theirs, a trailer whose checksum covers every data byte), so there is one format, read
// and verified by the same code. A restore works as etcd's `etcdutl snapshot restore`: it is run
// once per member of the NEW cluster, with the same file and the same --initial-cluster, and makes
// that member's data directory; the members then start as a freshly bootstrapped cluster that
// already holds the data.
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import type { Command } from "commander";
import { CairnClientError } from "../client/index.js";
import { snapshotChunkBytesMax } from "../node/index.js";
import { mainGroup } from "../node-assembly/index.js";
import { nodeId } from "../raft/index.js";
import { spaceKinds } from "../service/index.js";
import {
  chunkWithoutKinds,
  dirOf,
  errnoOf,
  type FileSystem,
  HardStateStore,
  joinPath,
  makeDirDurable,
  openSnapshotFile,
  SnapshotStore,
  StorageError,
  tempSuffix,
  Wal,
  writeFileAtomic,
} from "../storage/index.js";
import { assert, crc32 } from "../util/index.js";
import { ConfigError, type InitialMember, parseMembers } from "./node-config.js";
import { bootstrapIdentity, writeIdentity } from "./node-identity.js";

/** What a saved backup is: where, which snapshot, how big, and its checksums. */
export interface SavedSnapshot {
  readonly file: string;
  readonly index: number;
  readonly term: number;
  readonly bytes: number;
  /** CRC-32 of every data byte, as the file's trailer carries it. */
  readonly crc32: string;
  /** SHA-256 of the whole file, for comparing copies. */
  readonly sha256: string;
}

/** Where `cairn snapshot save` reports progress: one line per call. */
export type Progress = (line: string) => void;

/**
 * Reads a backup file through and checks every checksum, and that every chunk holds whole state
 * pairs; ERR_SNAPSHOT_CORRUPT (a StorageError) otherwise, ERR_CONFIG when the file is missing.
 */
export async function verifyBackup(
  fs: FileSystem,
  file: string,
): Promise<{ index: number; term: number; crc32: number }> {
  const opened = await openSnapshotFile(fs, file, file, snapshotChunkBytesMax).catch((error: unknown) => {
    if (errnoOf(error) === "ENOENT") throw new ConfigError("file", `${file} does not exist`);
    throw error;
  });
  if (opened.group !== mainGroup)
    throw new StorageError(
      "ERR_SNAPSHOT_CORRUPT",
      `${file}: a snapshot of group ${opened.group}, not ${mainGroup}`,
    );
  let crc = 0;
  for await (const chunk of opened.chunks()) {
    chunkWithoutKinds(chunk, new Set());
    crc = crc32(chunk, crc);
  }
  return { index: opened.meta.index, term: opened.meta.term, crc32: crc };
}

/**
 * Streams a backup from the first of `endpoints` that gives one into `file` (written under a
 * temporary name, verified, then renamed into place: a cut or damaged download leaves no file).
 */
export async function saveSnapshot(
  fs: FileSystem,
  options: { endpoints: readonly string[]; token?: string; file: string; progress: Progress },
): Promise<SavedSnapshot> {
  const response = await fetchBackup(options.endpoints, options.token);
  const total = Number(response.headers.get("content-length") ?? Number.NaN);
  const sha = createHash("sha256");
  let bytes = 0;
  let reported = -1;
  const report = (done: boolean) => {
    const percent = Number.isFinite(total) && total > 0 ? Math.floor((bytes * 100) / total) : undefined;
    // One line per tenth (or per MiB when the size is unknown), and the last one.
    const step = percent !== undefined ? Math.floor(percent / 10) : Math.floor(bytes / (1024 * 1024));
    if (!done && step === reported) return;
    reported = step;
    options.progress(
      `snapshot: ${bytes} bytes${percent !== undefined ? ` of ${total} (${percent}%)` : ""}${done ? ", done" : ""}`,
    );
  };
  let verified: Awaited<ReturnType<typeof verifyBackup>> | undefined;
  // Under a temporary name until verified: a cut or damaged download leaves no FILE.
  await writeFileAtomic(fs, options.file, async (handle) => {
    if (response.body === null)
      throw new CairnClientError("ERR_UNAVAILABLE", "the snapshot response has no body");
    for await (const piece of response.body) {
      await handle.write(piece, bytes);
      sha.update(piece);
      bytes += piece.length;
      report(false);
    }
    if (Number.isFinite(total) && bytes !== total)
      throw new StorageError("ERR_SNAPSHOT_CORRUPT", `the download ended at ${bytes} of ${total} bytes`);
    report(true);
    verified = await verifyBackup(fs, `${options.file}${tempSuffix}`);
  });
  assert(verified !== undefined, "a written backup was verified");
  return {
    file: options.file,
    index: verified.index,
    term: verified.term,
    bytes,
    crc32: verified.crc32.toString(16).padStart(8, "0"),
    sha256: sha.digest("hex"),
  };
}

/** The first answer with a backup among `endpoints`; a refusal (auth, bad request) ends the search. */
async function fetchBackup(endpoints: readonly string[], token: string | undefined): Promise<Response> {
  let last: Error = new CairnClientError("ERR_UNAVAILABLE", "no endpoints");
  for (const endpoint of endpoints) {
    let response: Response;
    try {
      response = await fetch(`${endpoint}/v1/cluster/snapshot`, {
        headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
      });
    } catch (error) {
      last = new CairnClientError(
        "ERR_UNAVAILABLE",
        `${endpoint}: ${String(error)}`,
        undefined,
        {},
        { cause: error },
      );
      continue;
    }
    if (response.ok) return response;
    const body: unknown = await response.json().catch(() => undefined);
    const error =
      typeof body === "object" && body !== null && "error" in body && typeof body.error === "object"
        ? (body.error as { code?: unknown; message?: unknown })
        : {};
    last = new CairnClientError(
      typeof error.code === "string" ? error.code : "ERR_UNAVAILABLE",
      `${endpoint}: ${typeof error.message === "string" ? error.message : `HTTP ${response.status}`}`,
      response.status,
    );
    if (response.status < 500) throw last;
  }
  throw last;
}

/** What `cairn snapshot restore` made. */
export interface RestoredMember {
  readonly dataDir: string;
  readonly name: string;
  readonly id: number;
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
}

/**
 * Makes the data directory of member `name` of a new cluster bootstrapped with `initial` from the
 * backup `file`. The file is verified through first; the directory is built under a temporary name
 * and renamed into place, so a bad file or a failure leaves nothing behind. `dataDir` must not
 * exist or be empty (ERR_CONFIG). The new directory holds: the snapshot, with the new cluster's
 * voters as its configuration and without the old cluster's member registry (the new members
 * register themselves as a bootstrapped cluster does); a log compacted to it; a hard state at its
 * term; the identity file. At first start the node installs the snapshot into its state store
 * through its crash-recovery path (a state store behind a compacted log).
 */
export async function restoreSnapshot(
  fs: FileSystem,
  options: { file: string; dataDir: string; name: string; initial: readonly InitialMember[] },
): Promise<RestoredMember> {
  const verified = await verifyBackup(fs, options.file);
  // A new cluster id: the restored cluster never takes peers of the old one for its own.
  const identity = bootstrapIdentity(
    options.name,
    options.initial,
    `restored:${verified.term}:${verified.index}:${verified.crc32}`,
  );
  const existing = await fs.readdir(options.dataDir).catch((error: unknown) => {
    if (errnoOf(error) === "ENOENT") return [];
    throw error;
  });
  if (existing.length > 0)
    throw new ConfigError(
      "data-dir",
      `${options.dataDir} is not empty; a restore makes a new data directory`,
    );
  const temp = `${options.dataDir}.restoring`;
  await rm(temp, { recursive: true, force: true });
  await makeDirDurable(fs, temp);
  try {
    const opened = await openSnapshotFile(fs, options.file, options.file, snapshotChunkBytesMax);
    const meta = {
      index: opened.meta.index,
      term: opened.meta.term,
      conf: { voters: identity.initialVoters.map(nodeId), learners: [] },
    };
    const files = await SnapshotStore.open(fs, joinPath(temp, "snapshots"), {
      chunkBytesMax: snapshotChunkBytesMax,
    });
    const writer = await files.create(mainGroup, meta);
    const dropped = new Set([spaceKinds.members]);
    try {
      for await (const chunk of opened.chunks()) await writer.write(chunkWithoutKinds(chunk, dropped));
    } catch (error) {
      await writer.abort();
      throw error;
    }
    await writer.commit();
    const { wal } = await Wal.open(fs, joinPath(temp, "wal"));
    try {
      await wal.compact(mainGroup, meta.index, meta.term);
    } finally {
      await wal.close();
    }
    const hardStates = await HardStateStore.open(fs, joinPath(temp, "hardstate"));
    await hardStates.save(mainGroup, { term: meta.term, votedFor: null, commitIndex: meta.index });
    await writeIdentity(fs, temp, identity);
    // rename(2) replaces an empty directory.
    await fs.rename(temp, options.dataDir);
    await fs.syncDir(dirOf(options.dataDir));
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  return {
    dataDir: options.dataDir,
    name: identity.name,
    id: identity.id,
    clusterId: identity.clusterId,
    index: verified.index,
    term: verified.term,
  };
}

/** What the snapshot commands need from the CLI around them. */
export interface SnapshotCommandsContext {
  readonly fs: FileSystem;
  readonly clientOptions: (flag: string | undefined) => { endpoints: string[]; token?: string };
  readonly print: (value: unknown) => void;
  readonly warn: Progress;
}

/** Registers `cairn snapshot save` and `cairn snapshot restore`. */
export function registerSnapshotCommands(program: Command, context: SnapshotCommandsContext): void {
  const snapshot = program
    .command("snapshot")
    .description("back up the replicated state, and make a new cluster from a backup (docs/operations.md)");
  snapshot
    .command("save <file>")
    .description("stream a consistent snapshot from the cluster into FILE (admin when auth is on)")
    .option("--endpoints <urls>", "comma-separated node URLs")
    .option("--token <token>", "an admin token (default: CAIRN_TOKEN)")
    .action(async (file: string, options: { endpoints?: string; token?: string }) => {
      const client = context.clientOptions(options.endpoints);
      const token = options.token ?? client.token;
      context.print(
        await saveSnapshot(context.fs, {
          endpoints: client.endpoints,
          ...(token !== undefined ? { token } : {}),
          file,
          progress: context.warn,
        }),
      );
    });
  snapshot
    .command("restore <file>")
    .description("make the data directory of one member of a NEW cluster from a backup (run once per member)")
    .requiredOption("--data-dir <dir>", "the new member's data directory (must not exist or be empty)")
    .requiredOption("--name <name>", "the new member's name, as in --initial-cluster")
    .requiredOption(
      "--initial-cluster <members>",
      "the new cluster: name=host:port,... (the same for every member)",
    )
    .action(async (file: string, options: { dataDir: string; name: string; initialCluster: string }) => {
      const initial = parseMembers(options.initialCluster, "initial-cluster");
      if (initial.length === 0) throw new ConfigError("initial-cluster", "names no member");
      context.print(
        await restoreSnapshot(context.fs, { file, dataDir: options.dataDir, name: options.name, initial }),
      );
    });
}
