// The state machine store on lmdb: one environment per node, binary keys laid out as in
// state-store.ts, each applied batch one write transaction (effects + applied index), snapshots
// exported from one read transaction so they are consistent while writes go on.
import { open, type RootDatabase } from "lmdb";
import type { GroupId, LogIndex } from "../raft/index.js";
import { logIndex } from "../raft/index.js";
import { assert } from "../util/index.js";
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
  storeMetaKind,
  unpackChunk,
  userKey,
} from "./state-store.js";
import { StorageError } from "./storage-error.js";

const asBytes = (value: unknown): Uint8Array | undefined => {
  if (value === undefined) return undefined;
  assert(value instanceof Uint8Array, "lmdb binary encoding yields bytes");
  return value;
};

/** The lmdb-backed {@link StateStore}. */
export class LmdbStateStore implements StateStore {
  readonly #db: RootDatabase<Uint8Array, Uint8Array>;
  readonly #options: StateStoreOptions;

  private constructor(db: RootDatabase<Uint8Array, Uint8Array>, options: StateStoreOptions) {
    this.#db = db;
    this.#options = options;
  }

  /** Opens (creating if needed) the store at directory `path`. */
  static open(path: string, options: Partial<StateStoreOptions> = {}): LmdbStateStore {
    const db = open<Uint8Array, Uint8Array>({ path, keyEncoding: "binary", encoding: "binary" });
    return new LmdbStateStore(db, { ...defaultStateStoreOptions, ...options });
  }

  appliedIndex(group: GroupId): LogIndex {
    return logIndex(decodeIndex(asBytes(this.#db.get(internalKey(group, storeMetaKind, appliedIndexKey)))));
  }

  isRestoring(group: GroupId): boolean {
    return this.#db.get(internalKey(group, storeMetaKind, restoringKey)) !== undefined;
  }

  get(group: GroupId, kind: KeyKind, key: Uint8Array): Uint8Array | undefined {
    checkKey(key, this.#options);
    return asBytes(this.#db.get(internalKey(group, kind, key)));
  }

  range(group: GroupId, query: RangeQuery): KeyValue[] {
    const { start, end } = queryBounds(group, query);
    const limit = Math.min(query.limit, this.#options.rangeLimitMax);
    const out: KeyValue[] = [];
    for (const { key, value } of this.#db.getRange({ start, end, limit })) {
      const k = asBytes(key);
      const v = asBytes(value);
      assert(k !== undefined && v !== undefined, "range pairs are bytes");
      out.push({ key: userKey(k), value: v });
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
            case "put":
              db.putSync(internalKey(group, e.kind, e.key), e.value);
              break;
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
        db.putSync(internalKey(group, storeMetaKind, appliedIndexKey), encodeIndex(appliedIndex));
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
      asBytes(db.get(internalKey(group, storeMetaKind, appliedIndexKey), { transaction: txn })),
    );
    const { start, end } = groupBounds(group);
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
            const full = packer.add(k, v);
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
        db.putSync(internalKey(group, storeMetaKind, restoringKey), new Uint8Array([1]));
      }),
    );
    for await (const chunk of chunks) {
      const pairs = unpackChunk(group, chunk);
      await this.#write(() =>
        db.transaction(() => {
          for (const p of pairs) db.putSync(p.key, p.value);
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
