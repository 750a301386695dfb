// What key-value commands do to replicated state. Deterministic: the only clock is the leader's
// timestamp carried in each entry, so every replica applying the same log reaches the same state.
import { assertNever, ByteReader, ByteWriter, bytesEqual, compareBytes, utf8 } from "../../util/index.js";
import type { Refusal, Refusals } from "../errors.js";
import { keyAfter, prefixEnd, type StateReader, type StateWriter } from "../state.js";
import {
  applyStream,
  getStreamMeta,
  listStreams,
  type StreamMeta,
  type StreamResult,
  type StreamResultKind,
  streamOfCommand,
} from "../streams/index.js";
import type {
  KvCommand,
  KvCopy,
  KvDelete,
  KvExpiry,
  KvIncrement,
  KvPut,
  KvPutMany,
  KvSet,
  KvSetTtl,
  KvStep,
  KvTransaction,
  KvUpdate,
  TransactionStep,
} from "./kv-command.js";

/** A stored key with its history counters (etcd's create/mod revision and version). */
export interface KvRecord {
  readonly value: Uint8Array;
  /** The group revision of the write that created this incarnation of the key. */
  readonly createRevision: number;
  /** The group revision of the latest write to the key. */
  readonly modRevision: number;
  /** Writes since creation, starting at 1. */
  readonly version: number;
  /** Leader time (ms since the epoch) at which the key expires; 0 for never. */
  readonly expireAtMs: number;
}

/** A conditional write of kind `K` whose condition did not hold; nothing changed. */
export type KvConflict<K extends KvResultKind> = Refusal<K, "ERR_CONFLICT">;

/** An increment of a value that is not a 64-bit signed decimal integer, or that would overflow. */
export type KvNotInteger = Refusal<"kv.increment", "ERR_NOT_INTEGER">;

/** The outcome of a put. */
export type KvPutResult =
  | { readonly kind: "kv.put"; readonly ok: true; readonly revision: number; readonly created: boolean }
  | KvConflict<"kv.put">;
/** The outcome of a delete; `revision` is the group revision after it. */
export type KvDeleteResult =
  | { readonly kind: "kv.delete"; readonly ok: true; readonly deleted: boolean; readonly revision: number }
  | KvConflict<"kv.delete">;
/** The outcome of an increment: the new value as a decimal string. */
export type KvIncrementResult =
  | { readonly kind: "kv.increment"; readonly ok: true; readonly value: string; readonly revision: number }
  | KvNotInteger;
/** The outcome of an expiry sweep. */
export interface KvExpireResult {
  readonly kind: "kv.expire";
  readonly ok: true;
  readonly expired: number;
}
/**
 * The outcome of a TTL change: `changed` is false when the key does not exist, its condition did not
 * hold, or there was nothing to clear. `revision` is the group revision after it.
 */
export interface KvSetTtlResult {
  readonly kind: "kv.set-ttl";
  readonly ok: true;
  readonly changed: boolean;
  readonly revision: number;
}
/** The outcome of a multi-key write: `written` is false when `ifNoneExist` found a key. */
export interface KvPutManyResult {
  readonly kind: "kv.put-many";
  readonly ok: true;
  readonly written: boolean;
  readonly revision: number;
}
/**
 * The outcome of a SET: `written` is false when its NX or XX condition did not hold; `old` is the
 * value before (null when absent), given only when asked for, else null.
 */
export interface KvSetResult {
  readonly kind: "kv.set";
  readonly ok: true;
  readonly written: boolean;
  readonly old: Uint8Array | null;
  readonly revision: number;
}
/**
 * The outcome of a read-modify-write: `value` is the value after it (APPEND, SETRANGE,
 * INCRBYFLOAT) or before it (GETDEL, GETEX), null when the key is absent; `length` its length.
 */
export type KvUpdateResult =
  | {
      readonly kind: "kv.update";
      readonly ok: true;
      readonly value: Uint8Array | null;
      readonly length: number;
      readonly revision: number;
    }
  | Refusal<"kv.update", "ERR_NOT_INTEGER">
  | Refusal<"kv.update", "ERR_TOO_LARGE">;
/** The outcome of a copy or rename: `done` is false when the target existed and was kept. */
export type KvCopyResult =
  | { readonly kind: "kv.copy"; readonly ok: true; readonly done: boolean; readonly revision: number }
  | Refusal<"kv.copy", "ERR_NOT_FOUND">;
/** The outcome of a flush: how many keys it removed. */
export interface KvFlushResult {
  readonly kind: "kv.flush";
  readonly ok: true;
  readonly removed: number;
}
/**
 * A key read inside a transaction: its value and expiry then (null and 0 when absent); in a
 * shared keyspace, `stream` when no key but a stream has the name.
 */
export interface KvReadResult {
  readonly kind: "kv.read";
  readonly ok: true;
  readonly value: Uint8Array | null;
  readonly expireAtMs: number;
  readonly stream: boolean;
}
/** The outcome of a transaction: `aborted` when a watched key changed; else each command's result. */
export interface KvTransactionResult {
  readonly kind: "kv.transaction";
  readonly ok: true;
  readonly aborted: boolean;
  readonly results: readonly StepResult[];
}

/**
 * A step of a shared-keyspace transaction refused for its name's type: a key command on a stream
 * (ERR_WRONG_TYPE), an expiry, copy or rename of a stream (ERR_BAD_REQUEST: Cairn's streams have
 * neither), or a stream command on a key (ERR_WRONG_TYPE). Nothing changed.
 */
export type SharedKeyspaceRefusal = Refusals<
  "kv.set" | "kv.put" | "kv.increment" | "kv.update" | "kv.set-ttl" | "kv.copy" | StreamResultKind,
  "ERR_WRONG_TYPE" | "ERR_BAD_REQUEST"
>;

/** The result of one step of a transaction: a key-value result, or a stream command's. */
export type StepResult = KvResult | StreamResult | SharedKeyspaceRefusal;
/** The outcome of any key-value command, tagged with its command's kind. */
export type KvResult =
  | KvReadResult
  | KvTransactionResult
  | KvPutResult
  | KvDeleteResult
  | KvIncrementResult
  | KvExpireResult
  | KvSetTtlResult
  | KvPutManyResult
  | KvSetResult
  | KvUpdateResult
  | KvCopyResult
  | KvFlushResult;

/** The kind tag of every key-value command and result: `kv.` and the command's type. */
export type KvResultKind = `kv.${KvCommand["type"]}`;

const META_REVISION = new TextEncoder().encode("kv.revision");
const META_CLOCK = new TextEncoder().encode("kv.clock");
/**
 * How many keys are stored (expired ones included until a sweep removes them, as Redis's DBSIZE
 * counts them). Kept from a keyspace's first write on; a keyspace written before this counter
 * existed has none, and is counted by a scan.
 */
const META_COUNT = new TextEncoder().encode("kv.count");
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function encodeRecord(record: KvRecord): Uint8Array {
  return new ByteWriter(record.value.length + 16)
    .varint(record.createRevision)
    .varint(record.modRevision)
    .varint(record.version)
    .varint(record.expireAtMs)
    .bytes(record.value)
    .finish();
}

function decodeRecord(bytes: Uint8Array): KvRecord {
  const reader = new ByteReader(bytes);
  const record = {
    createRevision: reader.varint(),
    modRevision: reader.varint(),
    version: reader.varint(),
    expireAtMs: reader.varint(),
    value: reader.bytes(),
  };
  reader.end();
  return record;
}

function ttlKey(expireAtMs: number, key: Uint8Array): Uint8Array {
  return new ByteWriter(key.length + 8).u64(expireAtMs).raw(key).finish();
}

function readCounter(state: StateReader, name: Uint8Array): number {
  const bytes = state.get("meta", name);
  return bytes === undefined ? 0 : new ByteReader(bytes).u64();
}

/** The group's current revision: the count of key-value writes applied so far. */
export function kvRevision(state: StateReader): number {
  return readCounter(state, META_REVISION);
}

/** How many keys are stored, expired ones not yet swept included (Redis's DBSIZE). */
export function kvKeyCount(state: StateReader): number {
  const counted = state.get("meta", META_COUNT);
  if (counted !== undefined) return new ByteReader(counted).u64();
  let count = 0;
  for (const _ of state.range("kv", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) count++;
  return count;
}

/** Moves the key count by `delta`, where the keyspace keeps one. */
function countKeys(state: StateWriter, delta: number): void {
  if (delta === 0) return;
  const counted = state.get("meta", META_COUNT);
  if (counted === undefined) return;
  state.put("meta", META_COUNT, new ByteWriter(8).u64(new ByteReader(counted).u64() + delta).finish());
}

/** How many keys carry a TTL (Redis INFO's `expires`); counts the TTL index, so O(such keys). */
export function kvExpiringCount(state: StateReader): number {
  let count = 0;
  for (const _ of state.range("kv-ttl", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) count++;
  return count;
}

/** The latest leader timestamp applied: the clock by which TTLs are judged on every replica. */
export function kvClockMs(state: StateReader): number {
  return readCounter(state, META_CLOCK);
}

function isLive(record: KvRecord, clockMs: number): boolean {
  return record.expireAtMs === 0 || record.expireAtMs > clockMs;
}

/** Reads a live key (one whose TTL has not passed by the applied clock), or undefined. */
export function getKv(state: StateReader, key: Uint8Array): KvRecord | undefined {
  const bytes = state.get("kv", key);
  if (bytes === undefined) return undefined;
  const record = decodeRecord(bytes);
  return isLive(record, kvClockMs(state)) ? record : undefined;
}

/**
 * Which keys a range read covers: a prefix, or [start, end); a page holds at most `limit` keys and,
 * past its first key, at most `bytesMax` bytes of keys and values (absent: no bound in bytes).
 */
export type KvRangeQuery = (
  | { readonly prefix: Uint8Array; readonly after?: Uint8Array }
  | { readonly start: Uint8Array; readonly end?: Uint8Array; readonly after?: Uint8Array }
) & { readonly limit: number; readonly bytesMax?: number };

/** A page of a range read; `next` is the key to pass as `after` for the next page, if any. */
export interface KvRangePage {
  readonly items: readonly (KvRecord & { readonly key: Uint8Array })[];
  readonly next: Uint8Array | undefined;
}

/**
 * Reads live keys in byte order, one page of at most `limit` keys and `bytesMax` bytes (a first
 * key larger than that still makes a page of one, so paging always moves on), resuming after
 * `after`.
 */
export function rangeKv(state: StateReader, query: KvRangeQuery): KvRangePage {
  const clockMs = kvClockMs(state);
  let start = "prefix" in query ? query.prefix : query.start;
  const end = "prefix" in query ? prefixEnd(query.prefix) : query.end;
  if (query.after !== undefined) {
    const resume = keyAfter(query.after);
    if (compareBytes(resume, start) > 0) start = resume;
  }
  const items: (KvRecord & { key: Uint8Array })[] = [];
  const bytesMax = query.bytesMax ?? Number.MAX_SAFE_INTEGER;
  let pageBytes = 0;
  for (const [key, bytes] of state.range("kv", start, end, Number.MAX_SAFE_INTEGER)) {
    const record = decodeRecord(bytes);
    if (!isLive(record, clockMs)) continue;
    const itemBytes = key.length + record.value.length;
    if (items.length === query.limit || (items.length > 0 && pageBytes + itemBytes > bytesMax)) {
      return { items, next: items[items.length - 1]?.key };
    }
    pageBytes += itemBytes;
    items.push({ key, ...record });
  }
  return { items, next: undefined };
}

/** The earliest expiry time of any key with a TTL, or undefined when no key has one. */
export function nextExpiryMs(state: StateReader): number | undefined {
  for (const [indexKey] of state.range("kv-ttl", new Uint8Array(0), undefined, 1)) {
    return new ByteReader(indexKey.subarray(0, 8)).u64();
  }
  return undefined;
}

/** Applies one key-value command at leader time `tsMs`; the caller batches the writes atomically. */
export function applyKv(state: StateWriter, command: KvCommand, tsMs: number): KvResult {
  // The applied clock only moves forward, even if a new leader's clock is behind the old one's.
  const clockMs = Math.max(kvClockMs(state), tsMs);
  state.put("meta", META_CLOCK, new ByteWriter(8).u64(clockMs).finish());
  // A keyspace never written (revision 0) holds no key: its count starts here, at 0.
  if (kvRevision(state) === 0 && state.get("meta", META_COUNT) === undefined) {
    state.put("meta", META_COUNT, new ByteWriter(8).u64(0).finish());
  }
  switch (command.type) {
    case "put":
      return applyPut(state, command, clockMs);
    case "delete":
      return applyDelete(state, command, clockMs);
    case "increment":
      return applyIncrement(state, command, clockMs);
    case "expire":
      return { kind: "kv.expire", ok: true, expired: expireKeys(state, clockMs, command.max) };
    case "set-ttl":
      return applySetTtl(state, command, clockMs);
    case "put-many":
      return applyPutMany(state, command, clockMs);
    case "set":
      return applySet(state, command, clockMs);
    case "update":
      return applyUpdate(state, command, clockMs);
    case "copy":
      return applyCopy(state, command, clockMs);
    case "flush":
      return { kind: "kv.flush", ok: true, removed: flushKeys(state) };
    case "read": {
      const current = liveOf(storedRecord(state, command.key), clockMs);
      return {
        kind: "kv.read",
        ok: true,
        value: current?.value ?? null,
        expireAtMs: current?.expireAtMs ?? 0,
        stream: false,
      };
    }
    case "transaction":
      return applyTransaction(state, command, clockMs);
  }
}

function applyTransaction(state: StateWriter, command: KvTransaction, clockMs: number): KvTransactionResult {
  for (const [key, revision] of command.watch) {
    if ((liveOf(storedRecord(state, key), clockMs)?.modRevision ?? 0) !== revision) {
      return { kind: "kv.transaction", ok: true, aborted: true, results: [] };
    }
  }
  // As Redis's EXEC: a refused command does not undo the others.
  const results = command.commands.map((step) => {
    if (command.sharedKeyspace === true) return applySharedStep(state, step, clockMs);
    return step.type === "stream" ? applyStream(state, step.command, clockMs) : applyKv(state, step, clockMs);
  });
  return { kind: "kv.transaction", ok: true, aborted: false, results };
}

const wrongType = <K extends SharedKeyspaceRefusal["kind"]>(kind: K) =>
  ({
    kind,
    ok: false,
    code: "ERR_WRONG_TYPE",
    message: "Operation against a key holding the wrong kind of value",
    details: {},
  }) as const;

const notForStreams = <K extends SharedKeyspaceRefusal["kind"]>(kind: K, what: string) =>
  ({
    kind,
    ok: false,
    code: "ERR_BAD_REQUEST",
    message: `Cairn streams cannot ${what}`,
    details: {},
  }) as const;

/** The stream whose name is `key`'s bytes (as UTF-8), if one exists. */
function streamNamed(state: StateReader, key: Uint8Array): StreamMeta | undefined {
  const name = new TextDecoder().decode(key);
  return bytesEqual(utf8(name), key) ? getStreamMeta(state, name) : undefined;
}

/**
 * Applies one step of a shared-keyspace transaction as Redis treats a key of the other type: a
 * stream command on a live key and a string command on a stream are refused (WRONGTYPE), SET /
 * MSET and a replacing COPY / RENAME overwrite a stream, DEL and FLUSHALL remove streams too, and
 * a read of a stream's name says so. Invariant: a step that refuses changes nothing.
 */
function applySharedStep(state: StateWriter, step: TransactionStep, clockMs: number): StepResult {
  if (step.type === "stream") {
    const name = streamOfCommand(step.command);
    if (name !== undefined && liveOf(storedRecord(state, utf8(name)), clockMs) !== undefined) {
      return wrongType(`streams.${step.command.type}`);
    }
    return applyStream(state, step.command, clockMs);
  }
  return applySharedKvStep(state, step, clockMs);
}

function applySharedKvStep(state: StateWriter, step: KvStep, clockMs: number): StepResult {
  const removeStream = (stream: StreamMeta) =>
    applyStream(state, { type: "delete", name: stream.name }, clockMs);
  switch (step.type) {
    case "read": {
      const result = applyKv(state, step, clockMs);
      if (result.kind !== "kv.read" || result.value !== null) return result;
      return streamNamed(state, step.key) === undefined ? result : { ...result, stream: true };
    }
    case "increment":
    case "update":
      if (liveOf(storedRecord(state, step.key), clockMs) === undefined && streamNamed(state, step.key))
        return wrongType(`kv.${step.type}`);
      return applyKv(state, step, clockMs);
    case "set":
    case "put": {
      const stream = streamNamed(state, step.key);
      if (stream === undefined) return applyKv(state, step, clockMs);
      if (step.type === "put") {
        if (step.ifAbsent === true || step.ifRevision !== undefined) return wrongType("kv.put");
        removeStream(stream);
        return applyKv(state, step, clockMs);
      }
      if (step.returnOld === true) return wrongType("kv.set");
      // The stream is the key: NX finds it present; otherwise SET replaces it, as in Redis.
      if (step.condition === "nx")
        return { kind: "kv.set", ok: true, written: false, old: null, revision: kvRevision(state) };
      removeStream(stream);
      const { condition: _, ...unconditional } = step;
      return applyKv(state, unconditional, clockMs);
    }
    case "put-many": {
      const streams = step.pairs.flatMap(([key]) => streamNamed(state, key) ?? []);
      if (streams.length > 0 && step.ifNoneExist === true)
        return { kind: "kv.put-many", ok: true, written: false, revision: kvRevision(state) };
      for (const stream of streams) removeStream(stream);
      return applyKv(state, step, clockMs);
    }
    case "delete": {
      const result = applyKv(state, step, clockMs);
      const stream = streamNamed(state, step.key);
      if (result.kind !== "kv.delete" || !result.ok || step.ifRevision !== undefined || stream === undefined)
        return result;
      removeStream(stream);
      return { ...result, deleted: true };
    }
    case "set-ttl":
      if (
        liveOf(storedRecord(state, step.key), clockMs) !== undefined ||
        streamNamed(state, step.key) === undefined
      )
        return applyKv(state, step, clockMs);
      // A stream has no TTL: PERSIST finds none to clear, as in Redis; an expiry cannot be set.
      return step.expiry.kind === "never"
        ? { kind: "kv.set-ttl", ok: true, changed: false, revision: kvRevision(state) }
        : notForStreams("kv.set-ttl", "expire");
    case "copy": {
      if (liveOf(storedRecord(state, step.from), clockMs) === undefined) {
        return streamNamed(state, step.from) === undefined
          ? applyKv(state, step, clockMs)
          : notForStreams("kv.copy", step.move ? "be renamed" : "be copied");
      }
      const target = streamNamed(state, step.to);
      if (target === undefined) return applyKv(state, step, clockMs);
      if (!step.replace) return { kind: "kv.copy", ok: true, done: false, revision: kvRevision(state) };
      removeStream(target);
      return applyKv(state, step, clockMs);
    }
    case "flush": {
      const result = applyKv(state, step, clockMs);
      if (result.kind !== "kv.flush") return result;
      // Bounded: at most streamsMax streams, and deleting one leaves its messages to sweeps.
      let removed = 0;
      for (;;) {
        const page = listStreams(state, 1000);
        if (page.length === 0) break;
        for (const stream of page) removeStream(stream);
        removed += page.length;
      }
      return { ...result, removed: result.removed + removed };
    }
    default:
      return assertNever(step, "transaction step");
  }
}

/** When a write with `expiry` expires (0: never), given the key's current record. */
function expiryOf(
  expiry: KvExpiry | { readonly kind: "keep" },
  current: KvRecord | undefined,
  clockMs: number,
): number {
  switch (expiry.kind) {
    case "keep":
      return current?.expireAtMs ?? 0;
    case "never":
      return 0;
    case "after":
      return clockMs + expiry.ms;
    case "at":
      return expiry.ms;
  }
}

/**
 * Writes `value` with expiry `expireAtMs`; an expiry already past removes the key instead, as Redis
 * does for a SET or GETEX with a time in the past.
 */
function writeOrExpire(
  state: StateWriter,
  key: Uint8Array,
  stored: KvRecord | undefined,
  value: Uint8Array,
  expireAtMs: number,
  clockMs: number,
): number {
  if (expireAtMs !== 0 && expireAtMs <= clockMs) {
    if (stored !== undefined) removeRecord(state, key, stored);
    return nextRevision(state);
  }
  return writeRecord(state, key, stored, value, expireAtMs, clockMs).revision;
}

function applySet(state: StateWriter, command: KvSet, clockMs: number): KvSetResult {
  const stored = storedRecord(state, command.key);
  const current = liveOf(stored, clockMs);
  const old = command.returnOld === true ? (current?.value ?? null) : null;
  if (
    (command.condition === "nx" && current !== undefined) ||
    (command.condition === "xx" && current === undefined)
  ) {
    return { kind: "kv.set", ok: true, written: false, old, revision: kvRevision(state) };
  }
  const expireAtMs = expiryOf(command.expiry, current, clockMs);
  const revision = writeOrExpire(state, command.key, stored, command.value, expireAtMs, clockMs);
  return { kind: "kv.set", ok: true, written: true, old, revision };
}

/** A float as Redis parses one (string2ld): no spaces, no NaN, at most 5,000 characters. */
function parseFloatValue(text: string): number | undefined {
  if (text.length === 0 || text.length > 5000) return undefined;
  if (!/^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity)$/i.test(text)) return undefined;
  const value = Number(text.replace(/^([+-]?)inf(inity)?$/i, "$1Infinity"));
  return Number.isNaN(value) ? undefined : value;
}

/**
 * A float formatted as Redis's INCRBYFLOAT does: fixed notation, trailing zeros dropped. Redis
 * computes in long double; 15 significant digits hide the double's last-digit noise (0.1 + 0.2
 * reads 0.3, as in Redis).
 */
function formatFloatValue(value: number): string {
  return value.toLocaleString("en-US", { useGrouping: false, maximumSignificantDigits: 15 });
}

function applyUpdate(state: StateWriter, command: KvUpdate, clockMs: number): KvUpdateResult {
  const { key, op } = command;
  const stored = storedRecord(state, key);
  const current = liveOf(stored, clockMs);
  const unchanged = (value: Uint8Array | null): KvUpdateResult => ({
    kind: "kv.update",
    ok: true,
    value,
    length: value?.length ?? 0,
    revision: kvRevision(state),
  });
  const tooLarge = (limit: number): KvUpdateResult => ({
    kind: "kv.update",
    ok: false,
    code: "ERR_TOO_LARGE",
    message: "string exceeds maximum allowed size",
    details: { limit },
  });
  const write = (value: Uint8Array, expireAtMs: number): KvUpdateResult => ({
    kind: "kv.update",
    ok: true,
    value,
    length: value.length,
    revision: writeOrExpire(state, key, stored, value, expireAtMs, clockMs),
  });
  switch (op.kind) {
    case "append": {
      const before = current?.value ?? new Uint8Array(0);
      if (before.length + op.bytes.length > op.valueBytesMax) return tooLarge(op.valueBytesMax);
      const value = new Uint8Array(before.length + op.bytes.length);
      value.set(before, 0);
      value.set(op.bytes, before.length);
      return write(value, current?.expireAtMs ?? 0);
    }
    case "set-range": {
      const before = current?.value ?? new Uint8Array(0);
      // As Redis: an empty write changes nothing, and does not create a missing key.
      if (op.bytes.length === 0) {
        return {
          kind: "kv.update",
          ok: true,
          value: current?.value ?? null,
          length: before.length,
          revision: kvRevision(state),
        };
      }
      if (op.offset + op.bytes.length > op.valueBytesMax) return tooLarge(op.valueBytesMax);
      const value = new Uint8Array(Math.max(before.length, op.offset + op.bytes.length));
      value.set(before, 0);
      value.set(op.bytes, op.offset);
      return write(value, current?.expireAtMs ?? 0);
    }
    case "increment-float": {
      const base = current === undefined ? 0 : parseFloatValue(new TextDecoder().decode(current.value));
      const by = parseFloatValue(op.by);
      if (base === undefined || by === undefined) {
        return {
          kind: "kv.update",
          ok: false,
          code: "ERR_NOT_INTEGER",
          message: "value is not a valid float",
          details: {},
        };
      }
      const sum = base + by;
      if (!Number.isFinite(sum)) {
        return {
          kind: "kv.update",
          ok: false,
          code: "ERR_NOT_INTEGER",
          message: "increment would produce NaN or Infinity",
          details: {},
        };
      }
      return write(new TextEncoder().encode(formatFloatValue(sum)), current?.expireAtMs ?? 0);
    }
    case "get-delete": {
      if (stored === undefined || current === undefined) return unchanged(null);
      removeRecord(state, key, stored);
      return {
        kind: "kv.update",
        ok: true,
        value: current.value,
        length: current.value.length,
        revision: nextRevision(state),
      };
    }
    case "get-expire": {
      if (current === undefined) return unchanged(null);
      const expireAtMs = expiryOf(op.expiry, current, clockMs);
      if (expireAtMs === current.expireAtMs) return unchanged(current.value);
      const revision = writeOrExpire(state, key, stored, current.value, expireAtMs, clockMs);
      return { kind: "kv.update", ok: true, value: current.value, length: current.value.length, revision };
    }
  }
}

function applyCopy(state: StateWriter, command: KvCopy, clockMs: number): KvCopyResult {
  const source = liveOf(storedRecord(state, command.from), clockMs);
  if (source === undefined) {
    if (command.move) {
      return { kind: "kv.copy", ok: false, code: "ERR_NOT_FOUND", message: "no such key", details: {} };
    }
    return { kind: "kv.copy", ok: true, done: false, revision: kvRevision(state) };
  }
  const targetStored = storedRecord(state, command.to);
  const target = liveOf(targetStored, clockMs);
  if (compareBytes(command.from, command.to) === 0) {
    // RENAME of a key onto itself succeeds and changes nothing; RENAMENX answers 0.
    return { kind: "kv.copy", ok: true, done: command.replace, revision: kvRevision(state) };
  }
  if (target !== undefined && !command.replace) {
    return { kind: "kv.copy", ok: true, done: false, revision: kvRevision(state) };
  }
  const revision = nextRevision(state);
  // The target is a new incarnation of its key, as after a DEL and SET.
  if (targetStored !== undefined) removeRecord(state, command.to, targetStored);
  writeRecord(state, command.to, undefined, source.value, source.expireAtMs, clockMs, revision);
  if (command.move) removeRecord(state, command.from, source);
  return { kind: "kv.copy", ok: true, done: true, revision };
}

/** Removes every key and its TTL index entry; one revision for all. */
function flushKeys(state: StateWriter): number {
  const keys = [...state.range("kv", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)].map(([k]) => k);
  const ttls = [...state.range("kv-ttl", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)].map(
    ([k]) => k,
  );
  for (const key of keys) state.delete("kv", key);
  for (const key of ttls) state.delete("kv-ttl", key);
  countKeys(state, -keys.length);
  if (keys.length > 0) nextRevision(state);
  return keys.length;
}

/** The record stored at `key`, live or expired (its TTL index entry may still need removing). */
function storedRecord(state: StateReader, key: Uint8Array): KvRecord | undefined {
  const bytes = state.get("kv", key);
  return bytes === undefined ? undefined : decodeRecord(bytes);
}

function liveOf(stored: KvRecord | undefined, clockMs: number): KvRecord | undefined {
  return stored !== undefined && isLive(stored, clockMs) ? stored : undefined;
}

function nextRevision(state: StateWriter): number {
  const revision = kvRevision(state) + 1;
  state.put("meta", META_REVISION, new ByteWriter(8).u64(revision).finish());
  return revision;
}

/**
 * Writes `value` at `key` as a new revision, keeping history counters and the TTL index right.
 * `stored` is what the caller read at `key` (passed in so the key is read once per command).
 */
function writeRecord(
  state: StateWriter,
  key: Uint8Array,
  stored: KvRecord | undefined,
  value: Uint8Array,
  expireAtMs: number,
  clockMs: number,
  revision = nextRevision(state),
): { revision: number; created: boolean } {
  if (stored !== undefined && stored.expireAtMs !== 0) state.delete("kv-ttl", ttlKey(stored.expireAtMs, key));
  if (stored === undefined) countKeys(state, 1);
  const live = liveOf(stored, clockMs);
  const record: KvRecord = {
    value,
    createRevision: live?.createRevision ?? revision,
    modRevision: revision,
    version: (live?.version ?? 0) + 1,
    expireAtMs,
  };
  state.put("kv", key, encodeRecord(record));
  if (expireAtMs !== 0) state.put("kv-ttl", ttlKey(expireAtMs, key), new Uint8Array(0));
  return { revision, created: live === undefined };
}

function conflict<K extends KvResultKind>(
  kind: K,
  message: string,
  current: KvRecord | undefined,
): KvConflict<K> {
  return {
    kind,
    ok: false,
    code: "ERR_CONFLICT",
    message,
    details: { currentRevision: current?.modRevision ?? null },
  };
}

function applyPut(state: StateWriter, command: KvPut, clockMs: number): KvPutResult {
  const stored = storedRecord(state, command.key);
  const current = liveOf(stored, clockMs);
  if (command.ifAbsent === true && current !== undefined) return conflict("kv.put", "key exists", current);
  if (command.ifRevision !== undefined && (current?.modRevision ?? 0) !== command.ifRevision) {
    return conflict("kv.put", `key is not at revision ${command.ifRevision}`, current);
  }
  const expireAtMs = command.ttlMs === undefined ? 0 : clockMs + command.ttlMs;
  return {
    kind: "kv.put",
    ok: true,
    ...writeRecord(state, command.key, stored, command.value, expireAtMs, clockMs),
  };
}

function applyDelete(state: StateWriter, command: KvDelete, clockMs: number): KvDeleteResult {
  const stored = storedRecord(state, command.key);
  const current = liveOf(stored, clockMs);
  if (command.ifRevision !== undefined && (current?.modRevision ?? 0) !== command.ifRevision) {
    return conflict("kv.delete", `key is not at revision ${command.ifRevision}`, current);
  }
  if (stored !== undefined) removeRecord(state, command.key, stored);
  if (current === undefined)
    return { kind: "kv.delete", ok: true, deleted: false, revision: kvRevision(state) };
  return { kind: "kv.delete", ok: true, deleted: true, revision: nextRevision(state) };
}

/** Removes a stored key and its TTL index entry. */
function removeRecord(state: StateWriter, key: Uint8Array, stored: KvRecord): void {
  if (stored.expireAtMs !== 0) state.delete("kv-ttl", ttlKey(stored.expireAtMs, key));
  state.delete("kv", key);
  countKeys(state, -1);
}

function applySetTtl(state: StateWriter, command: KvSetTtl, clockMs: number): KvSetTtlResult {
  const unchanged: KvSetTtlResult = {
    kind: "kv.set-ttl",
    ok: true,
    changed: false,
    revision: kvRevision(state),
  };
  const stored = storedRecord(state, command.key);
  const current = liveOf(stored, clockMs);
  if (stored === undefined || current === undefined) return unchanged;
  const { expiry } = command;
  const expireAtMs = expiry.kind === "never" ? 0 : expiry.kind === "at" ? expiry.ms : clockMs + expiry.ms;
  if (expiry.kind === "never" && current.expireAtMs === 0) return unchanged;
  // Redis compares with "never" for a key without a TTL: later than any time.
  const currentAt = current.expireAtMs === 0 ? Number.POSITIVE_INFINITY : current.expireAtMs;
  const held =
    command.condition === undefined ||
    (command.condition === "nx" && current.expireAtMs === 0) ||
    (command.condition === "xx" && current.expireAtMs !== 0) ||
    (command.condition === "gt" && current.expireAtMs !== 0 && expireAtMs > currentAt) ||
    (command.condition === "lt" && expireAtMs < currentAt);
  if (!held) return unchanged;
  if (expiry.kind !== "never" && expireAtMs <= clockMs) {
    // An expiry already past deletes the key, as Redis's EXPIRE does.
    removeRecord(state, command.key, stored);
    return { kind: "kv.set-ttl", ok: true, changed: true, revision: nextRevision(state) };
  }
  const { revision } = writeRecord(state, command.key, stored, current.value, expireAtMs, clockMs);
  return { kind: "kv.set-ttl", ok: true, changed: true, revision };
}

function applyPutMany(state: StateWriter, command: KvPutMany, clockMs: number): KvPutManyResult {
  if (command.ifNoneExist === true) {
    for (const [key] of command.pairs) {
      if (liveOf(storedRecord(state, key), clockMs) !== undefined) {
        return { kind: "kv.put-many", ok: true, written: false, revision: kvRevision(state) };
      }
    }
  }
  // One revision for the whole write, as etcd gives the writes of one transaction.
  const revision = nextRevision(state);
  for (const [key, value] of command.pairs) {
    writeRecord(state, key, storedRecord(state, key), value, 0, clockMs, revision);
  }
  return { kind: "kv.put-many", ok: true, written: true, revision };
}

function applyIncrement(state: StateWriter, command: KvIncrement, clockMs: number): KvIncrementResult {
  const stored = storedRecord(state, command.key);
  const current = liveOf(stored, clockMs);
  let base = 0n;
  if (current !== undefined) {
    const text = new TextDecoder().decode(current.value);
    if (!/^-?(0|[1-9]\d{0,18})$/.test(text)) {
      return notInteger("value is not an integer or out of range");
    }
    base = BigInt(text);
  }
  const sum = base + command.by;
  if (base < INT64_MIN || base > INT64_MAX || sum < INT64_MIN || sum > INT64_MAX) {
    return notInteger("increment or decrement would overflow");
  }
  const value = sum.toString();
  // As Redis INCR: the key keeps its TTL.
  const { revision } = writeRecord(
    state,
    command.key,
    stored,
    new TextEncoder().encode(value),
    current?.expireAtMs ?? 0,
    clockMs,
  );
  return { kind: "kv.increment", ok: true, value, revision };
}

function notInteger(message: string): KvNotInteger {
  return { kind: "kv.increment", ok: false, code: "ERR_NOT_INTEGER", message, details: {} };
}

/** Deletes up to `max` keys whose TTL passed by `clockMs`, earliest first; they share one revision. */
function expireKeys(state: StateWriter, clockMs: number, max: number): number {
  const end = new ByteWriter(8).u64(clockMs + 1).finish();
  const due = [...state.range("kv-ttl", new Uint8Array(0), end, max)];
  for (const [indexKey] of due) {
    state.delete("kv-ttl", indexKey);
    state.delete("kv", indexKey.subarray(8));
  }
  countKeys(state, -due.length);
  if (due.length > 0) nextRevision(state);
  return due.length;
}
