// The in-memory twin of the lmdb state store, for the simulator: the same contract (one shared test
// suite runs against both), commits completed through an injected Scheduler, and crash semantics:
// a transaction whose commit completed survives crash() (a killed process: lmdb's pages are in the
// OS's cache), one still in flight does not. With `flushDelayMs` set it also has lmdb's overlapping
// sync: a commit is visible once it completes but durable only when a later flush completes, and
// powerLoss() takes back every commit since the last flush (a restore can be left half done).
import type { GroupId, LogIndex } from "../raft/index.js";
import { logIndex } from "../raft/index.js";
import { assert } from "../util/index.js";
import { immediateScheduler, type Scheduler } from "./sim-file-system.js";
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

const text = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");

/** A byte-ordered map: latin1 strings compare exactly as their bytes do. */
class SortedBytesMap {
  /** Bytes of keys and values held. */
  bytes = 0;
  #keys: string[] = [];
  readonly #pairs = new Map<string, { key: Uint8Array; value: Uint8Array }>();

  /** Old values of keys changed since `record()`, so a transaction can be undone. */
  #journal: Map<string, { key: Uint8Array; value: Uint8Array | undefined }> | undefined;

  /**
   * Starts recording changes; `rollback()` restores the state as of this call, `keep()` ends the
   * recording. `rollback()` still works after `keep()` as long as later recordings were rolled back
   * first (newest first): that is how a power loss takes back commits that were never flushed.
   */
  record(): { bytesBefore: number; rollback(): void; keep(): void } {
    const journal = new Map<string, { key: Uint8Array; value: Uint8Array | undefined }>();
    this.#journal = journal;
    const bytesBefore = this.bytes;
    return {
      bytesBefore,
      rollback: () => {
        this.#journal = undefined;
        for (const { key, value } of journal.values()) {
          if (value === undefined) this.delete(key);
          else this.set(key, value);
        }
      },
      keep: () => {
        this.#journal = undefined;
      },
    };
  }

  #remember(k: string, key: Uint8Array): void {
    if (this.#journal === undefined || this.#journal.has(k)) return;
    this.#journal.set(k, { key: key.slice(), value: this.#pairs.get(k)?.value });
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#pairs.get(text(key))?.value;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    const k = text(key);
    this.#remember(k, key);
    const old = this.#pairs.get(k);
    if (old === undefined) this.#keys.splice(this.#lowerBound(k), 0, k);
    else this.bytes -= old.key.length + old.value.length;
    this.#pairs.set(k, { key: key.slice(), value: value.slice() });
    this.bytes += key.length + value.length;
  }

  delete(key: Uint8Array): void {
    const k = text(key);
    const old = this.#pairs.get(k);
    if (old === undefined) return;
    this.#remember(k, key);
    this.#pairs.delete(k);
    this.bytes -= old.key.length + old.value.length;
    this.#keys.splice(this.#lowerBound(k), 1);
  }

  /** Pairs with start <= key < end, in order, at most `limit`. */
  range(
    start: Uint8Array,
    end: Uint8Array,
    limit = Number.POSITIVE_INFINITY,
  ): { key: Uint8Array; value: Uint8Array }[] {
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    const endText = text(end);
    for (let i = this.#lowerBound(text(start)); i < this.#keys.length && out.length < limit; i++) {
      const k = this.#keys[i] as string;
      if (k >= endText) break;
      const pair = this.#pairs.get(k);
      assert(pair !== undefined, "sorted keys and pairs agree");
      out.push(pair);
    }
    return out;
  }

  #lowerBound(k: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#keys[mid] as string) < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Settings of a {@link MemoryStateStore}. */
export interface MemoryStateStoreOptions extends StateStoreOptions {
  /** Completes commits (after `commitDelayMs`); the simulator's event queue. */
  readonly scheduler: Scheduler;
  readonly commitDelayMs: number;
  /** The byte quota (keys plus values) standing in for a full disk: a commit past it is ERR_NO_SPACE. */
  readonly bytesMax: number;
  /**
   * lmdb's overlapping sync: when set, a completed commit is visible at once but durable only once
   * a flush that started after it has completed, this many milliseconds after it started (a flush
   * starts whenever something is unflushed and none runs). Undefined: a completed commit is durable.
   */
  readonly flushDelayMs: number | undefined;
}

/** A completed commit that no flush covers yet, and how to take it back. */
interface Unflushed {
  readonly seq: number;
  readonly rollback: () => void;
}

/** The in-memory {@link StateStore}: what lmdb does, minus the disk, plus a crash switch. */
export class MemoryStateStore implements StateStore {
  readonly #data = new SortedBytesMap();
  readonly #options: MemoryStateStoreOptions;
  #epoch = 0;
  #bytesMax: number;
  /** Commits completed so far, and how many of them (the oldest) are durable. */
  #committedSeq = 0;
  #durableSeq = 0;
  /** Completed commits after `#durableSeq`, oldest first. */
  #unflushed: Unflushed[] = [];
  #flushRunning = false;
  /** Callers waiting until the commits through `seq` are durable. */
  #flushWaiters: { seq: number; resolve: () => void }[] = [];

  /** Creates an empty store. */
  constructor(options: Partial<MemoryStateStoreOptions> = {}) {
    this.#options = {
      ...defaultStateStoreOptions,
      scheduler: immediateScheduler,
      commitDelayMs: 0,
      bytesMax: Number.POSITIVE_INFINITY,
      flushDelayMs: undefined,
      ...options,
    };
    this.#bytesMax = this.#options.bytesMax;
  }

  /** Changes the byte quota (freeing space is raising it); reads never depend on it. */
  setBytesMax(bytesMax: number): void {
    this.#bytesMax = bytesMax;
  }

  /** Bytes of keys and values stored. */
  get usedBytes(): number {
    return this.#data.bytes;
  }

  /**
   * The process dies: transactions not yet committed are lost and never settle; committed ones stay
   * (lmdb's pages outlive the process). Waits for a flush never settle either.
   */
  crash(): void {
    this.#epoch++;
    this.#flushRunning = false;
    this.#flushWaiters = [];
  }

  /**
   * The machine loses power: as {@link MemoryStateStore.crash}, and every commit that no completed
   * flush covers is taken back, newest first. Without `flushDelayMs` this is a crash.
   */
  powerLoss(): void {
    this.crash();
    for (const commit of this.#unflushed.reverse()) commit.rollback();
    this.#unflushed = [];
    this.#committedSeq = this.#durableSeq;
  }

  /** Whether every completed commit is durable (no flush is due). */
  get flushed(): boolean {
    return this.#durableSeq === this.#committedSeq;
  }

  appliedIndex(group: GroupId): LogIndex {
    return logIndex(decodeIndex(this.#data.get(internalKey(group, storeMetaKind, appliedIndexKey))));
  }

  isRestoring(group: GroupId): boolean {
    return this.#data.get(internalKey(group, storeMetaKind, restoringKey)) !== undefined;
  }

  async durableAppliedIndex(group: GroupId): Promise<LogIndex> {
    const applied = this.appliedIndex(group);
    await this.#flushedThrough(this.#committedSeq);
    return applied;
  }

  get(group: GroupId, kind: KeyKind, key: Uint8Array): Uint8Array | undefined {
    checkKey(key, this.#options);
    return this.#data.get(internalKey(group, kind, key))?.slice();
  }

  range(group: GroupId, query: RangeQuery): KeyValue[] {
    const { start, end } = queryBounds(group, query);
    const limit = Math.min(query.limit, this.#options.rangeLimitMax);
    return this.#data
      .range(start, end, limit)
      .map((p) => ({ key: userKey(p.key).slice(), value: p.value.slice() }));
  }

  readView(group: GroupId): StateView {
    // Values are never mutated in place, so a copy of the group's pairs is a view as of now.
    const { start, end } = groupBounds(group);
    const copy = new SortedBytesMap();
    for (const p of this.#data.range(start, end)) copy.set(p.key, p.value);
    let released = false;
    return {
      range: (query) => {
        assert(!released, "a released state view was read");
        const bounds = queryBounds(group, query);
        return copy
          .range(bounds.start, bounds.end, Math.min(query.limit, this.#options.rangeLimitMax))
          .map((p) => ({ key: userKey(p.key).slice(), value: p.value.slice() }));
      },
      release: () => {
        released = true;
      },
    };
  }

  async applyBatch(group: GroupId, appliedIndex: LogIndex, effects: readonly Effect[]): Promise<boolean> {
    for (const e of effects) checkKey(e.op === "delete-range" ? e.start : e.key, this.#options);
    return this.#commit(() => {
      if (appliedIndex <= this.appliedIndex(group)) return false;
      for (const e of effects) {
        switch (e.op) {
          case "put":
            this.#data.set(internalKey(group, e.kind, e.key), e.value);
            break;
          case "delete":
            this.#data.delete(internalKey(group, e.kind, e.key));
            break;
          case "delete-range":
            for (const p of this.#data.range(
              internalKey(group, e.kind, e.start),
              internalKey(group, e.kind, e.end),
            )) {
              this.#data.delete(p.key);
            }
            break;
        }
      }
      this.#data.set(internalKey(group, storeMetaKind, appliedIndexKey), encodeIndex(appliedIndex));
      return true;
    });
  }

  exportGroup(group: GroupId, chunkBytesMax: number): StateExport {
    assert(!this.isRestoring(group), "cannot export a group whose restore is incomplete");
    // The pairs as of now: values are never mutated in place, so holding references is a snapshot.
    const { start, end } = groupBounds(group);
    const pairs = this.#data.range(start, end);
    // As lmdb's export does: the snapshot lets the log be compacted, so the state it holds must be
    // durable here first.
    const durable = this.#flushedThrough(this.#committedSeq);
    return {
      appliedIndex: this.appliedIndex(group),
      async *chunks(): AsyncGenerator<Uint8Array> {
        await durable;
        const packer = new ChunkPacker(chunkBytesMax);
        for (const p of pairs) {
          const full = packer.add(p.key, p.value);
          if (full !== undefined) yield full;
        }
        const last = packer.flush();
        if (last !== undefined) yield last;
      },
    };
  }

  async restoreGroup(group: GroupId, chunks: AsyncIterable<Uint8Array>): Promise<LogIndex> {
    const { start, end } = groupBounds(group);
    await this.#commit(() => {
      for (const p of this.#data.range(start, end)) this.#data.delete(p.key);
      this.#data.set(internalKey(group, storeMetaKind, restoringKey), new Uint8Array([1]));
    });
    for await (const chunk of chunks) {
      const pairs = unpackChunk(group, chunk);
      await this.#commit(() => {
        for (const p of pairs) this.#data.set(p.key, p.value);
      });
    }
    await this.#commit(() => this.#data.delete(internalKey(group, storeMetaKind, restoringKey)));
    // The runtime compacts the log to the snapshot once this resolves: a restore that a power loss
    // could still take back would leave the state behind a log whose entries are gone.
    await this.#flushedThrough(this.#committedSeq);
    return this.appliedIndex(group);
  }

  async close(): Promise<void> {
    // Nothing to release.
  }

  /** Notes a completed commit: durable now, or once a flush covers it. */
  #completed(rollback: () => void): void {
    this.#committedSeq++;
    if (this.#options.flushDelayMs === undefined) {
      this.#durableSeq = this.#committedSeq;
      return;
    }
    this.#unflushed.push({ seq: this.#committedSeq, rollback });
    this.#maybeFlush();
  }

  /** Starts a flush of every completed commit unless one runs (the next one starts when it ends). */
  #maybeFlush(): void {
    const delayMs = this.#options.flushDelayMs;
    if (delayMs === undefined || this.#flushRunning || this.#committedSeq === this.#durableSeq) return;
    this.#flushRunning = true;
    const epoch = this.#epoch;
    const through = this.#committedSeq;
    this.#options.scheduler.after(delayMs, () => {
      if (epoch !== this.#epoch) return;
      this.#flushRunning = false;
      this.#durableSeq = through;
      this.#unflushed = this.#unflushed.filter((c) => c.seq > through);
      const ready = this.#flushWaiters.filter((w) => w.seq <= through);
      this.#flushWaiters = this.#flushWaiters.filter((w) => w.seq > through);
      for (const w of ready) w.resolve();
      this.#maybeFlush();
    });
  }

  /** Resolves once the commits through `seq` are durable (never, if the process dies first). */
  #flushedThrough(seq: number): Promise<void> {
    if (seq <= this.#durableSeq) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#flushWaiters.push({ seq, resolve });
    });
  }

  /**
   * Runs `apply` as one commit, later, unless the process crashes first. A commit that would leave
   * more than `bytesMax` stored is undone whole and rejected with ERR_NO_SPACE.
   */
  #commit<T>(apply: () => T): Promise<T> {
    const epoch = this.#epoch;
    return new Promise<T>((resolve, reject) => {
      this.#options.scheduler.after(this.#options.commitDelayMs, () => {
        if (epoch !== this.#epoch) return;
        const undo = this.#data.record();
        try {
          const result = apply();
          if (this.#data.bytes > this.#bytesMax && this.#data.bytes > undo.bytesBefore) {
            undo.rollback();
            reject(new StorageError("ERR_NO_SPACE", "state store: no space left"));
            return;
          }
          undo.keep();
          this.#completed(undo.rollback);
          resolve(result);
        } catch (error) {
          undo.rollback();
          reject(error);
        }
      });
    });
  }
}
