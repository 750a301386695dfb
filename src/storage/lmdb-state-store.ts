import { statSync } from "node:fs";
import { join } from "node:path";
// The state machine store on lmdb: one environment per node, binary keys laid out as in
// state-store.ts, each applied batch one write transaction (effects + applied index), snapshots
// exported from one read transaction so they are consistent while writes go on.
//
// lmdb keeps no checksums of its own, so every stored value carries one: the value, then the
// CRC-32 of the stored key and the value (4 bytes, little-endian). A read that fails it is
// ERR_STATE_CORRUPT, never a wrong answer; the key in the checksum catches a value that ended up
// under another key. Damage to lmdb's own pages (its B-tree) can still crash the native code that
// reads them, so a node verifies the whole store in a separate process before it opens it
// (src/cli/verify-state.ts).
import { open, type RootDatabase } from "lmdb";
import type { GroupId, LogIndex } from "../raft/index.js";
import { groupId, logIndex } from "../raft/index.js";
import { assert, crc32, crc32Of } from "../util/index.js";
import { errnoOf } from "./file-system.js";
import {
  appliedIndexKey,
  ChunkPacker,
  checkKey,
  decodeIndex,
  defaultStateStoreOptions,
  type Effect,
  encodeIndex,
  groupBounds,
  internalKey,
  type KeyKind,
  type KeyValue,
  queryBounds,
  type RangeQuery,
  restoringKey,
  type StateExport,
  type StateStore,
  type StateStoreOptions,
  type StateView,
  storeMetaKind,
  unpackChunk,
  userKey,
} from "./state-store.js";
import { StorageError } from "./storage-error.js";

/** An lmdb read transaction (the package does not export its class). */
type Transaction = ReturnType<RootDatabase["useReadTransaction"]>;

const asBytes = (value: unknown): Uint8Array | undefined => {
  if (value === undefined) return undefined;
  assert(value instanceof Uint8Array, "lmdb binary encoding yields bytes");
  return value;
};

const checksumBytes = 4;
/** The store-wide meta key naming the stored format; absent in stores from before checksums. */
const formatKey = internalKey(groupId(0), storeMetaKind, new TextEncoder().encode("store-format"));
/** Format 2: every value carries its checksum. */
const checksummedFormat = 2;

/** `value` as stored under `key`: the value, then CRC-32(key ‖ value), little-endian. */
export function sealValue(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length + checksumBytes);
  out.set(value, 0);
  new DataView(out.buffer, out.byteOffset).setUint32(value.length, crc32Of([key, value]), true);
  return out;
}

/** The value stored under `key`, checked: ERR_STATE_CORRUPT when its checksum fails. */
export function unsealValue(key: Uint8Array, stored: Uint8Array): Uint8Array {
  const length = stored.length - checksumBytes;
  const corrupt = () =>
    new StorageError(
      "ERR_STATE_CORRUPT",
      `state store: the value of key ${Buffer.from(key).toString("hex")} fails its checksum`,
    );
  if (length < 0) throw corrupt();
  const value = stored.subarray(0, length);
  const expected = new DataView(stored.buffer, stored.byteOffset).getUint32(length, true);
  if (crc32(value, crc32(key)) !== expected) throw corrupt();
  return value;
}

/**
 * Throws ERR_STATE_CORRUPT when lmdb's file is shorter than its pages reach (by its meta page,
 * which opening reads, and nothing else yet). A file cut short can still hold every page the
 * B-tree reaches while the free pages past its end are what lmdb's next write reads: a SIGBUS in
 * the node rather than an error (found by the fault suite, seed 17015).
 */
function checkFileReach(db: RootDatabase<Uint8Array, Uint8Array>, path: string): void {
  const { pageSize, lastPageNumber } = db.getStats() as { pageSize: number; lastPageNumber: number };
  const fileBytes = statSync(join(path, "data.mdb")).size;
  const reach = (lastPageNumber + 1) * pageSize;
  if (fileBytes < reach) {
    throw new StorageError(
      "ERR_STATE_CORRUPT",
      `state store: its file holds ${fileBytes} bytes but its pages reach ${reach}: it was cut short`,
    );
  }
}

/** The lmdb-backed {@link StateStore}. */
export class LmdbStateStore implements StateStore {
  readonly #db: RootDatabase<Uint8Array, Uint8Array>;
  readonly #options: StateStoreOptions;
  readonly #onCorrupt: ((error: StorageError) => void) | undefined;
  /** Ends of the views not yet released, so that close() can end them. */
  readonly #views = new Set<(to: "released" | "closed") => void>();
  #closed = false;

  private constructor(
    db: RootDatabase<Uint8Array, Uint8Array>,
    options: StateStoreOptions,
    onCorrupt: ((error: StorageError) => void) | undefined,
  ) {
    this.#db = db;
    this.#options = options;
    this.#onCorrupt = onCorrupt;
  }

  /**
   * Opens (creating if needed) the store at directory `path`. A store written before values carried
   * checksums gets them now, in one transaction. `onCorrupt` hears of every value that fails its
   * checksum on a read, before the reader gets ERR_STATE_CORRUPT (the node repairs itself on it).
   */
  static open(
    path: string,
    options: Partial<StateStoreOptions> & { readonly onCorrupt?: (error: StorageError) => void } = {},
  ): LmdbStateStore {
    const { onCorrupt, ...storeOptions } = options;
    const db = open<Uint8Array, Uint8Array>({ path, keyEncoding: "binary", encoding: "binary" });
    try {
      checkFileReach(db, path);
    } catch (error) {
      db.close().catch(() => undefined);
      throw error;
    }
    if (db.get(formatKey) === undefined) {
      db.transactionSync(() => {
        const pairs = [...db.getRange({})].map(({ key, value }) => ({
          key: asBytes(key),
          value: asBytes(value),
        }));
        for (const { key, value } of pairs) {
          assert(key !== undefined && value !== undefined, "range pairs are bytes");
          db.putSync(key, sealValue(key, value));
        }
        db.putSync(formatKey, sealValue(formatKey, new Uint8Array([checksummedFormat])));
      });
    }
    return new LmdbStateStore(db, { ...defaultStateStoreOptions, ...storeOptions }, onCorrupt);
  }

  /**
   * Reads every stored value and checks its checksum; ERR_STATE_CORRUPT names the first that fails.
   * Run it where a crash of lmdb's native code on a damaged page cannot take the node down with it.
   */
  verify(): { pairs: number } {
    let pairs = 0;
    if (this.#db.get(formatKey) === undefined) return { pairs };
    for (const { key, value } of this.#db.getRange({})) {
      const k = asBytes(key);
      const v = asBytes(value);
      assert(k !== undefined && v !== undefined, "range pairs are bytes");
      this.#unseal(k, v);
      pairs++;
    }
    return { pairs };
  }

  /** The checked value at stored key `key`. */
  #read(key: Uint8Array, options?: Parameters<RootDatabase["get"]>[1]): Uint8Array | undefined {
    const stored = asBytes(this.#db.get(key, options));
    return stored === undefined ? undefined : this.#unseal(key, stored);
  }

  /** unsealValue, telling `onCorrupt` of a value that fails its checksum. */
  #unseal(key: Uint8Array, stored: Uint8Array): Uint8Array {
    try {
      return unsealValue(key, stored);
    } catch (error) {
      if (error instanceof StorageError) this.#onCorrupt?.(error);
      throw error;
    }
  }

  appliedIndex(group: GroupId): LogIndex {
    return logIndex(decodeIndex(this.#read(internalKey(group, storeMetaKind, appliedIndexKey))));
  }

  isRestoring(group: GroupId): boolean {
    return this.#db.get(internalKey(group, storeMetaKind, restoringKey)) !== undefined;
  }

  async durableAppliedIndex(group: GroupId): Promise<LogIndex> {
    const applied = this.appliedIndex(group);
    // lmdb makes a commit visible before its sync finishes (overlapping sync): this resolves once
    // every commit made visible before it is on disk, the one that wrote `applied` included.
    await this.#db.flushed;
    return applied;
  }

  get(group: GroupId, kind: KeyKind, key: Uint8Array): Uint8Array | undefined {
    checkKey(key, this.#options);
    return this.#read(internalKey(group, kind, key));
  }

  range(group: GroupId, query: RangeQuery): KeyValue[] {
    return this.#range(group, query, undefined);
  }

  readView(group: GroupId): StateView {
    if (this.#closed) throw new StorageError("ERR_CLOSED", "the state store is closed");
    const txn = this.#db.useReadTransaction();
    let state: "open" | "released" | "closed" = "open";
    const end = (to: "released" | "closed") => {
      if (state !== "open") return;
      state = to;
      this.#views.delete(end);
      txn.done();
    };
    this.#views.add(end);
    return {
      range: (query) => {
        // A view outlives the store only when the node stops under a long read: an expected end.
        if (state === "closed") throw new StorageError("ERR_CLOSED", "the state store closed under a view");
        assert(state === "open", "a released state view was read");
        return this.#range(group, query, txn);
      },
      release: () => end("released"),
    };
  }

  #range(group: GroupId, query: RangeQuery, transaction: Transaction | undefined): KeyValue[] {
    const { start, end } = queryBounds(group, query);
    const limit = Math.min(query.limit, this.#options.rangeLimitMax);
    const out: KeyValue[] = [];
    const options = transaction === undefined ? { start, end, limit } : { start, end, limit, transaction };
    for (const { key, value } of this.#db.getRange(options)) {
      const k = asBytes(key);
      const v = asBytes(value);
      assert(k !== undefined && v !== undefined, "range pairs are bytes");
      out.push({ key: userKey(k), value: this.#unseal(k, v) });
    }
    return out;
  }

  async applyBatch(group: GroupId, appliedIndex: LogIndex, effects: readonly Effect[]): Promise<boolean> {
    for (const e of effects) checkKey(e.op === "delete-range" ? e.start : e.key, this.#options);
    const db = this.#db;
    return this.#write(() =>
      db.transaction(() => {
        // The applied index guards the batch: replaying an applied entry changes nothing.
        if (appliedIndex <= this.appliedIndex(group)) return false;
        for (const e of effects) {
          switch (e.op) {
            case "put": {
              const key = internalKey(group, e.kind, e.key);
              db.putSync(key, sealValue(key, e.value));
              break;
            }
            case "delete":
              db.removeSync(internalKey(group, e.kind, e.key));
              break;
            case "delete-range": {
              const start = internalKey(group, e.kind, e.start);
              const end = internalKey(group, e.kind, e.end);
              for (const key of db.getKeys({ start, end })) db.removeSync(key);
              break;
            }
          }
        }
        const indexKey = internalKey(group, storeMetaKind, appliedIndexKey);
        db.putSync(indexKey, sealValue(indexKey, encodeIndex(appliedIndex)));
        return true;
      }),
    );
  }

  exportGroup(group: GroupId, chunkBytesMax: number): StateExport {
    assert(!this.isRestoring(group), "cannot export a group whose restore is incomplete");
    const db = this.#db;
    // One read transaction for the index and every pair: a consistent cut while writes go on.
    const txn = db.useReadTransaction();
    const applied = decodeIndex(
      this.#read(internalKey(group, storeMetaKind, appliedIndexKey), { transaction: txn }),
    );
    const { start, end } = groupBounds(group);
    const unseal = (k: Uint8Array, v: Uint8Array) => this.#unseal(k, v);
    return {
      appliedIndex: logIndex(applied),
      async *chunks(): AsyncGenerator<Uint8Array> {
        try {
          // lmdb makes a commit visible before its sync finishes (overlapping sync). A snapshot
          // lets the log be compacted up to its index, so the state it holds must be durable in
          // this store too before the snapshot is: after a power loss the store must not restart
          // from below a snapshot whose log entries are gone.
          await db.flushed;
          const packer = new ChunkPacker(chunkBytesMax);
          for (const { key, value } of db.getRange({ start, end, transaction: txn })) {
            const k = asBytes(key);
            const v = asBytes(value);
            assert(k !== undefined && v !== undefined, "range pairs are bytes");
            // A snapshot never carries a damaged value: the capture fails instead.
            const full = packer.add(k, unseal(k, v));
            if (full !== undefined) yield full;
          }
          const last = packer.flush();
          if (last !== undefined) yield last;
        } finally {
          txn.done();
        }
      },
    };
  }

  async restoreGroup(group: GroupId, chunks: AsyncIterable<Uint8Array>): Promise<LogIndex> {
    const db = this.#db;
    const { start, end } = groupBounds(group);
    await this.#write(() =>
      db.transaction(() => {
        for (const key of db.getKeys({ start, end })) db.removeSync(key);
        const key = internalKey(group, storeMetaKind, restoringKey);
        db.putSync(key, sealValue(key, new Uint8Array([1])));
      }),
    );
    for await (const chunk of chunks) {
      const pairs = unpackChunk(group, chunk);
      await this.#write(() =>
        db.transaction(() => {
          for (const p of pairs) db.putSync(p.key, sealValue(p.key, p.value));
        }),
      );
    }
    await this.#write(() => db.remove(internalKey(group, storeMetaKind, restoringKey)));
    // A commit resolves once it is visible, before lmdb synced it (overlapping sync). The runtime
    // compacts the log to the snapshot once this resolves, so the restore must be durable first:
    // else a power loss brings back the old state (or a half restore) while the log entries that
    // led from it to the snapshot are gone.
    await db.flushed;
    return this.appliedIndex(group);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const end of [...this.#views]) end("closed");
    await this.#db.close();
  }

  /** Runs a write, mapping a full disk to ERR_NO_SPACE (lmdb reports its own map-full as MDB_MAP_FULL). */
  async #write<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      const message = error instanceof Error ? error.message : "";
      if (errnoOf(error) === "ENOSPC" || message.includes("MDB_MAP_FULL") || message.includes("No space")) {
        throw new StorageError("ERR_NO_SPACE", "state store: no space left", { cause: error });
      }
      throw error;
    }
  }
}
