// The state machine store's contract and its key layout. Keys are namespaced by group and by kind,
// so the key-value data, stream messages and metadata, consumer groups and the store's own metadata
// of every group share one ordered keyspace without colliding:
//
//   internal key = group u64 big-endian (8) | kind u8 (1) | user key (0..keyBytesMax)
//
// Big-endian so that byte order is numeric order; a group's data is one contiguous range, which is
// what a snapshot exports and a restore replaces.
import type { GroupId, LogIndex } from "../raft/index.js";
import { assert, type Brand, brandedInteger } from "../util/index.js";
import { concatBytes, getU64, setU64, viewOf } from "./bytes.js";
import { StorageError } from "./storage-error.js";

/**
 * What a key belongs to: one byte of every stored key, naming a keyspace of the state machine. The
 * store does not know what the keyspaces mean (their names live in src/service); it keeps its own
 * bookkeeping (the applied index, a restore in progress) in kind 0 under names of its own.
 */
export type KeyKind = Brand<number, "KeyKind">;

const brandKind = brandedInteger("KeyKind");

/** A key kind from its byte. */
export function keyKind(code: number): KeyKind {
  assert(code <= 0xff, `a key kind is one byte, got ${code}`);
  return brandKind(code);
}

/** The kind the store's own bookkeeping keys live in ({@link appliedIndexKey}, {@link restoringKey}). */
export const storeMetaKind: KeyKind = keyKind(0);

/** One write of an applied batch. `delete-range` removes keys in [start, end) of one kind. */
export type Effect =
  | { readonly op: "put"; readonly kind: KeyKind; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly kind: KeyKind; readonly key: Uint8Array }
  | {
      readonly op: "delete-range";
      readonly kind: KeyKind;
      readonly start: Uint8Array;
      readonly end: Uint8Array;
    };

/** A range read over one kind of one group: by `prefix`, or from `start` (inclusive) to `end` (exclusive). */
export interface RangeQuery {
  readonly kind: KeyKind;
  readonly prefix?: Uint8Array;
  readonly start?: Uint8Array;
  readonly end?: Uint8Array;
  /** At most this many pairs (and never more than the store's `rangeLimitMax`). */
  readonly limit: number;
}

/** A key (the user key, without namespace) and its value. */
export interface KeyValue {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** A consistent export of one group: its applied index and its data in bounded chunks. */
export interface StateExport {
  readonly appliedIndex: LogIndex;
  /** The group's pairs, encoded, in chunks of at most `chunkBytesMax` bytes (or one pair if larger). */
  chunks(): AsyncGenerator<Uint8Array>;
}

/**
 * A read-only view of one group's pairs as of the moment it was taken, unchanged by later writes
 * (lmdb: one read transaction). Held views keep old pages alive, so release each one soon.
 */
export interface StateView {
  /** Pairs of one kind of the group in key order, as of the view. */
  range(query: RangeQuery): KeyValue[];
  /** Ends the view; `range` must not be called afterwards. */
  release(): void;
}

/**
 * The replicated state machine's storage. `applyBatch` writes a batch's effects and the new applied
 * index in one transaction, so after a crash the runtime replays the log from `appliedIndex + 1`,
 * and a batch applied twice is ignored the second time.
 */
export interface StateStore {
  /** The index of the last applied entry of `group` (0: none). */
  appliedIndex(group: GroupId): LogIndex;
  /** The value of `key` of `kind` in `group`. */
  get(group: GroupId, kind: KeyKind, key: Uint8Array): Uint8Array | undefined;
  /** Pairs of one kind of `group` in key order. */
  range(group: GroupId, query: RangeQuery): KeyValue[];
  /** A view of `group` as of now, for long reads that must not block writes (the state hash). */
  readView(group: GroupId): StateView;
  /**
   * Applies `effects` and sets the applied index to `appliedIndex` atomically. Resolves to false
   * (and changes nothing) when `appliedIndex` is not above the current one: already applied.
   */
  applyBatch(group: GroupId, appliedIndex: LogIndex, effects: readonly Effect[]): Promise<boolean>;
  /**
   * A consistent export of `group` as of now, read from one read transaction. Its chunks come only
   * once the exported state is durable (a snapshot of it lets the log be compacted).
   */
  exportGroup(group: GroupId, chunkBytesMax: number): StateExport;
  /**
   * Replaces all of `group`'s data with an export's chunks (InstallSnapshot, Raft §7) and resolves
   * once the restored data is durable (the log may be compacted to it next). A crash midway leaves
   * the group marked as restoring ({@link StateStore.isRestoring}) until a restore completes.
   */
  restoreGroup(group: GroupId, chunks: AsyncIterable<Uint8Array>): Promise<LogIndex>;
  /** Whether a restore of `group` was interrupted: its data is incomplete and must be restored again. */
  isRestoring(group: GroupId): boolean;
  /**
   * The applied index of `group` as of the call, once every commit up to it is durable: a power
   * loss can no longer take the state back below it, so the log may be compacted to it without a
   * snapshot file (the state store is the snapshot).
   */
  durableAppliedIndex(group: GroupId): Promise<LogIndex>;
  /** Closes the store. */
  close(): Promise<void>;
}

/** Settings shared by the state store implementations. */
export interface StateStoreOptions {
  /** The longest user key; lmdb's own key limit (1978 bytes) bounds it from above. */
  readonly keyBytesMax: number;
  /** The most pairs one range read returns. */
  readonly rangeLimitMax: number;
}

/** Defaults: 1 KiB keys, 10 000 pairs per range read. */
export const defaultStateStoreOptions: StateStoreOptions = { keyBytesMax: 1024, rangeLimitMax: 10_000 };

const prefixBytes = 9;
/** The meta key holding a group's applied index. */
export const appliedIndexKey = new TextEncoder().encode("applied-index");
/** The meta key present while a restore of the group is under way. */
export const restoringKey = new TextEncoder().encode("restoring");

/** The stored key for (`group`, `kind`, `key`). */
export function internalKey(group: GroupId, kind: KeyKind, key: Uint8Array): Uint8Array {
  // Byte by byte rather than through a DataView: this runs for every read and write of the state.
  const out = new Uint8Array(prefixBytes + key.length);
  const high = Math.floor(group / 0x1_0000_0000);
  const low = group >>> 0;
  out[0] = high >>> 24;
  out[1] = (high >>> 16) & 0xff;
  out[2] = (high >>> 8) & 0xff;
  out[3] = high & 0xff;
  out[4] = low >>> 24;
  out[5] = (low >>> 16) & 0xff;
  out[6] = (low >>> 8) & 0xff;
  out[7] = low & 0xff;
  out[8] = kind;
  out.set(key, prefixBytes);
  return out;
}

/** The first stored key of `group` and the first key after it: the group's whole range. */
export function groupBounds(group: GroupId): { start: Uint8Array; end: Uint8Array } {
  const start = internalKey(group, storeMetaKind, new Uint8Array(0)).subarray(0, 8);
  const end = new Uint8Array(8);
  const view = viewOf(end);
  view.setUint32(0, Math.floor((group + 1) / 0x1_0000_0000));
  view.setUint32(4, (group + 1) >>> 0);
  return { start: start.slice(), end };
}

/** The smallest key greater than every key starting with `prefix`, or undefined if there is none. */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const out = prefix.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if ((out[i] ?? 0) < 0xff) {
      out[i] = (out[i] ?? 0) + 1;
      return out.subarray(0, i + 1);
    }
  }
  return undefined;
}

/** The stored [start, end) of a range query over `group`. */
export function queryBounds(group: GroupId, query: RangeQuery): { start: Uint8Array; end: Uint8Array } {
  const kindStart = internalKey(group, query.kind, new Uint8Array(0));
  const kindEnd = prefixEnd(kindStart);
  assert(kindEnd !== undefined, "a kind prefix always has an end");
  if (query.prefix !== undefined) {
    const start = internalKey(group, query.kind, query.prefix);
    return { start, end: prefixEnd(start) ?? kindEnd };
  }
  return {
    start: query.start === undefined ? kindStart : internalKey(group, query.kind, query.start),
    end: query.end === undefined ? kindEnd : internalKey(group, query.kind, query.end),
  };
}

/** The user key of a stored key. */
export function userKey(stored: Uint8Array): Uint8Array {
  return stored.subarray(prefixBytes);
}

/** Rejects a key longer than `keyBytesMax` with ERR_TOO_LARGE. */
export function checkKey(key: Uint8Array, options: StateStoreOptions): void {
  if (key.length > options.keyBytesMax) {
    throw new StorageError(
      "ERR_TOO_LARGE",
      `key of ${key.length} bytes exceeds keyBytesMax ${options.keyBytesMax}`,
    );
  }
}

/** Encodes an applied index for the meta key. */
export function encodeIndex(index: number): Uint8Array {
  const out = new Uint8Array(8);
  setU64(viewOf(out), 0, index);
  return out;
}

/** Decodes an applied index; a malformed one is a broken invariant (only this code writes it). */
export function decodeIndex(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  assert(bytes.length === 8, "applied index is 8 bytes");
  const n = getU64(viewOf(bytes), 0);
  assert(n !== undefined, "applied index is a safe integer");
  return n;
}

/**
 * Packs (key without group prefix, value) pairs into chunks: each pair is key length u32, value
 * length u32, key (kind byte + user key), value. A chunk holds whole pairs only; a pair larger
 * than a chunk is a chunk of its own. Each pair is written straight into the chunk being built
 * (a snapshot export packs every pair of the state: no array per pair).
 */
export class ChunkPacker {
  readonly #max: number;
  #chunk: Uint8Array | undefined;
  #view: DataView | undefined;
  #size = 0;

  /** Creates a packer for chunks of at most `chunkBytesMax` bytes. */
  constructor(chunkBytesMax: number) {
    assert(chunkBytesMax >= 16, "chunkBytesMax too small");
    this.#max = chunkBytesMax;
  }

  /** Adds one pair; returns a finished chunk when the pair did not fit in the current one. */
  add(storedKey: Uint8Array, value: Uint8Array): Uint8Array | undefined {
    const keyLength = storedKey.length - 8;
    const pairBytes = 8 + keyLength + value.length;
    let full: Uint8Array | undefined;
    if (this.#size > 0 && this.#size + pairBytes > this.#max) full = this.flush();
    let chunk = this.#chunk;
    let view = this.#view;
    if (chunk === undefined || view === undefined || this.#size + pairBytes > chunk.length) {
      chunk = new Uint8Array(Math.max(this.#max, pairBytes));
      view = viewOf(chunk);
      this.#chunk = chunk;
      this.#view = view;
    }
    const at = this.#size;
    view.setUint32(at, keyLength, true);
    view.setUint32(at + 4, value.length, true);
    chunk.set(storedKey.subarray(8), at + 8);
    chunk.set(value, at + 8 + keyLength);
    this.#size = at + pairBytes;
    return full;
  }

  /** The chunk built so far (undefined when empty), starting a new one. */
  flush(): Uint8Array | undefined {
    if (this.#size === 0 || this.#chunk === undefined) return undefined;
    const out = this.#chunk.subarray(0, this.#size);
    this.#chunk = undefined;
    this.#view = undefined;
    this.#size = 0;
    return out;
  }
}

/**
 * A chunk without its pairs of the key kinds in `dropped` (a restore leaves the old cluster's
 * member registry behind); ERR_SNAPSHOT_CORRUPT when malformed.
 */
export function chunkWithoutKinds(chunk: Uint8Array, dropped: ReadonlySet<KeyKind>): Uint8Array {
  const kept: Uint8Array[] = [];
  const view = viewOf(chunk);
  let at = 0;
  while (at < chunk.length) {
    if (at + 8 > chunk.length) throw new StorageError("ERR_SNAPSHOT_CORRUPT", "state chunk: pair header cut");
    const keyLength = view.getUint32(at, true);
    const end = at + 8 + keyLength + view.getUint32(at + 4, true);
    if (keyLength < 1 || end > chunk.length)
      throw new StorageError("ERR_SNAPSHOT_CORRUPT", "state chunk: pair cut");
    if (!dropped.has(chunk[at + 8] as KeyKind)) kept.push(chunk.subarray(at, end));
    at = end;
  }
  return concatBytes(kept);
}

/** Decodes a chunk into (stored key for `group`, value) pairs; ERR_SNAPSHOT_CORRUPT when malformed. */
export function unpackChunk(group: GroupId, chunk: Uint8Array): { key: Uint8Array; value: Uint8Array }[] {
  const out: { key: Uint8Array; value: Uint8Array }[] = [];
  const view = viewOf(chunk);
  const groupPrefix = groupBounds(group).start;
  let at = 0;
  while (at < chunk.length) {
    if (at + 8 > chunk.length) throw new StorageError("ERR_SNAPSHOT_CORRUPT", "state chunk: pair header cut");
    const keyLength = view.getUint32(at, true);
    const valueLength = view.getUint32(at + 4, true);
    const end = at + 8 + keyLength + valueLength;
    if (keyLength < 1 || end > chunk.length)
      throw new StorageError("ERR_SNAPSHOT_CORRUPT", "state chunk: pair cut");
    const key = new Uint8Array(8 + keyLength);
    key.set(groupPrefix, 0);
    key.set(chunk.subarray(at + 8, at + 8 + keyLength), 8);
    out.push({ key, value: chunk.slice(at + 8 + keyLength, end) });
    at = end;
  }
  return out;
}
