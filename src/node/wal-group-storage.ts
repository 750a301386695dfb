// A group's durable Raft storage on the node's shared write-ahead log, plus a small hard-state file
// per group. Term and vote must be durable before this member answers anyone, so they are written
// (atomically, fsynced) whenever they change; the commit index alone is not needed for safety and
// is written only along with them: on restart commit is recovered as at least what was applied.
import {
  type Entry,
  type GroupId,
  type HardState,
  logIndex,
  type NodeId,
  nodeId,
  type PersistedState,
  type SnapshotMeta,
  term,
} from "../raft/index.js";
import type { FileSystem } from "../storage/file-system.js";
import { joinPath } from "../storage/file-system.js";
import { StorageError } from "../storage/storage-error.js";
import type { Wal, WalRecovery } from "../storage/wal.js";
import { groupCorruptionError } from "../storage/wal.js";
import { assert } from "../util/assert.js";
import { ByteReader, ByteWriter, DecodeError } from "../util/bytes.js";
import { crc32 } from "../util/crc.js";
import type { GroupStorage, PersistBatch } from "./ports.js";

const HARD_STATE_MAGIC = 0x43484153; // "CHAS"
const HARD_STATE_VERSION = 1;

function encodeHardState(hs: HardState): Uint8Array {
  const body = new ByteWriter(32)
    .u64(hs.term)
    .u64(hs.votedFor ?? 0)
    .u64(hs.commitIndex)
    .finish();
  return new ByteWriter(48).u32(HARD_STATE_MAGIC).u8(HARD_STATE_VERSION).u32(crc32(body)).raw(body).finish();
}

function decodeHardState(bytes: Uint8Array, file: string): HardState {
  const corrupt = (why: string) =>
    new StorageError("ERR_HARD_STATE_CORRUPT", `${file}: ${why}`, { site: { file, offset: 0 } });
  try {
    const r = new ByteReader(bytes);
    if (r.u32() !== HARD_STATE_MAGIC) throw corrupt("bad magic");
    if (r.u8() !== HARD_STATE_VERSION) throw corrupt("unknown version");
    const checksum = r.u32();
    const body = r.raw(24);
    r.end();
    if (crc32(body) !== checksum) throw corrupt("checksum mismatch");
    const b = new ByteReader(body);
    const t = b.u64();
    const vote = b.u64();
    const commit = b.u64();
    return { term: term(t), votedFor: vote === 0 ? null : nodeId(vote), commitIndex: logIndex(commit) };
  } catch (error) {
    if (error instanceof DecodeError) throw corrupt(error.message);
    throw error;
  }
}

/** Durable storage of one group: its entries in the shared WAL, its hard state in its own file. */
export class WalGroupStorage implements GroupStorage {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #wal: Wal;
  readonly #recovery: WalRecovery;
  readonly #group: GroupId;
  #durableTerm = 0;
  #durableVote: NodeId | null = null;

  /** Creates the storage of `group`, whose hard-state file lives in `dir`. */
  constructor(fs: FileSystem, dir: string, wal: Wal, recovery: WalRecovery, group: GroupId) {
    this.#fs = fs;
    this.#dir = dir;
    this.#wal = wal;
    this.#recovery = recovery;
    this.#group = group;
  }

  get #path(): string {
    return joinPath(this.#dir, `hardstate-${this.#group}.bin`);
  }

  async load(): Promise<PersistedState | undefined> {
    const corruption = groupCorruptionError(this.#recovery, this.#group);
    // A corrupt log must never vote or lead: refuse to start the group at all.
    if (corruption !== undefined) throw corruption;
    const hardState = await this.#readHardState();
    const recovered = this.#recovery.groups.get(this.#group);
    if (hardState === undefined && (recovered === undefined || recovered.entries.length === 0))
      return undefined;
    assert(
      recovered === undefined || recovered.compactIndex === 0,
      "log compaction needs snapshot support in the runtime",
    );
    const entries: readonly Entry[] = recovered?.entries ?? [];
    const hs = hardState ?? { term: term(0), votedFor: null, commitIndex: logIndex(0) };
    this.#durableTerm = hs.term;
    this.#durableVote = hs.votedFor;
    const last = entries.at(-1);
    return {
      // The stored commit may lag; it can never exceed what the log holds.
      hardState: { ...hs, commitIndex: logIndex(Math.min(hs.commitIndex, last?.index ?? 0)) },
      entries,
    };
  }

  async persist(batch: PersistBatch): Promise<void> {
    assert(batch.snapshot === undefined, "snapshot install needs snapshot support in the runtime");
    const writes: Promise<void>[] = [];
    if (batch.entries.length > 0)
      writes.push(this.#wal.write([{ type: "entries", group: this.#group, entries: batch.entries }]));
    const hs = batch.hardState;
    if (hs !== undefined && (hs.term !== this.#durableTerm || hs.votedFor !== this.#durableVote)) {
      writes.push(this.#writeHardState(hs));
    }
    await Promise.all(writes);
    if (hs !== undefined) {
      this.#durableTerm = hs.term;
      this.#durableVote = hs.votedFor;
    }
  }

  async compact(snapshot: SnapshotMeta): Promise<void> {
    await this.#wal.compact(this.#group, snapshot.index, snapshot.term);
  }

  async #readHardState(): Promise<HardState | undefined> {
    const stat = await this.#fs.stat(this.#path);
    if (stat === undefined) return undefined;
    const handle = await this.#fs.open(this.#path, "read");
    try {
      const bytes = new Uint8Array(stat.size);
      let read = 0;
      while (read < bytes.length) {
        const n = await handle.read(bytes, read, bytes.length - read, read);
        if (n === 0) break;
        read += n;
      }
      return decodeHardState(bytes.subarray(0, read), `hardstate-${this.#group}.bin`);
    } finally {
      await handle.close();
    }
  }

  /** Temp file, fsync, rename, fsync the directory: the file is always whole, old or new. */
  async #writeHardState(hs: HardState): Promise<void> {
    const temp = `${this.#path}.tmp`;
    const handle = await this.#fs.open(temp, "create-or-truncate");
    try {
      await handle.write(encodeHardState(hs), 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.#fs.rename(temp, this.#path);
    await this.#fs.syncDir(this.#dir);
  }
}
