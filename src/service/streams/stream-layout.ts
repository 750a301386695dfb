// How streams and consumer groups are laid out in replicated state: the keys, the record codecs,
// and the small reads and writes of one record that every stream and group command shares.
//
// Layout (every stream and group gets a numeric id at creation, so a deleted stream's data can be
// removed in bounded steps while a new stream of the same name starts clean):
//   stream-meta    name                         -> StreamMeta (binary, version byte 1; JSON read too)
//   stream-message u64 streamId, u64 seq        -> message (binary)
//   stream-dedupe  u64 streamId, msgId          -> u64 seq, u64 tsMs
//   stream-dedupe-ttl u64 streamId, u64 tsMs, msgId -> empty (expiry index)
//   consumer-group u64 streamId, group name     -> GroupMeta (binary, version byte 1; JSON read too)
//   consumer-pending u64 groupId, u64 seq         -> u64 availableAtMs, varint deliveries, consumer
//   consumer-due   u64 groupId, u64 availableAtMs, u64 seq -> empty (in-flight messages by deadline)
//   stream-garbage u64 id                       -> u8 kind (1 stream, 2 group): data still to remove
import { assert, ByteReader, ByteWriter, utf8 } from "../../util/index.js";
import { readValue, type Space, type StateReader, type StateWriter, type ValueCodec } from "../state.js";
import {
  decodeConfig,
  decodeGroupConfig,
  encodeConfig,
  encodeGroupConfig,
  type GroupConfig,
  type Header,
  type StreamConfig,
} from "./stream-command.js";

/** A stream's bookkeeping. `firstSeq > lastSeq` when it holds no messages. */
export interface StreamMeta {
  readonly id: number;
  readonly name: string;
  readonly config: StreamConfig;
  readonly createdMs: number;
  /**
   * The oldest sequence still held.
   * Invariant: firstSeq > lastSeq, or the message at firstSeq is held.
   */
  readonly firstSeq: number;
  /** The sequence of the newest message ever appended (0 before the first). */
  readonly lastSeq: number;
  /**
   * Sequences in (firstSeq, lastSeq] whose messages were deleted one by one (absent: none).
   * Invariant: held messages = lastSeq - firstSeq + 1 - holes.
   */
  readonly holes?: number;
  /** Bytes of the messages held. */
  readonly bytes: number;
  /** Milliseconds and counter of the last `<ms>-<n>` message id handed out. */
  readonly lastIdMs: number;
  readonly lastIdN: number;
  /** The largest id Redis's XDEL deleted, or XSETID set (absent: 0-0). */
  readonly maxDeletedIdMs?: number;
  readonly maxDeletedIdN?: number;
  /** What XSETID ENTRIESADDED added to Redis's entries-added count (lastSeq) (absent: 0). */
  readonly entriesAddedDelta?: number;
}

/** A consumer group's bookkeeping. */
export interface GroupMeta {
  readonly id: number;
  readonly name: string;
  readonly config: GroupConfig;
  readonly createdMs: number;
  /** The next sequence never delivered to this group. */
  readonly nextSeq: number;
  /** Messages delivered and not yet acknowledged, terminated or dead-lettered. */
  readonly pending: number;
  /** Deliveries, redeliveries included. */
  readonly delivered: number;
  /**
   * Of those, deliveries of a message the group had delivered before (its ack deadline passed, it
   * was nacked, or a consumer claimed it); absent: none, or counted before this field existed.
   */
  readonly redelivered?: number;
  readonly acked: number;
  /** Messages moved to the dead-letter stream. */
  readonly deadLettered: number;
  /**
   * Messages that should have moved to the dead-letter stream but that stream refused them (full
   * with discard "new", over its size limits, or no room for one more stream), so they are gone
   * (absent: none). Only a dead-letter stream configured with limits can refuse.
   */
  readonly deadLettersLost?: number;
  /**
   * The consumers the group knows, by name (sorted): when each was last seen and last handed a
   * message (0: never). A consumer is known once it is handed or claims a message, reads its
   * history, or is created (Redis's rules); at most {@link consumersPerGroupMax}, the least
   * recently seen forgotten first (absent: none).
   */
  readonly consumers?: readonly ConsumerRecord[];
}

/**
 * A consumer a group knows: name, leader time last seen, leader time last handed a message (0:
 * never), and how many deliveries it was handed and how many of those were redeliveries (absent
 * until it is first handed one).
 */
export type ConsumerRecord = readonly [
  name: string,
  seenMs: number,
  activeMs: number,
  delivered?: number,
  redelivered?: number,
];

/** Consumers a group remembers at most. */
export const consumersPerGroupMax = 1000;

/** A stored message. */
export interface StreamMessage {
  readonly seq: number;
  /** The Redis-style id `<ms>-<n>`, monotonic within the stream. */
  readonly id: string;
  /** The leader time at which it was appended. */
  readonly tsMs: number;
  readonly payload: Uint8Array;
  readonly headers: readonly Header[];
  readonly key?: string;
}

/** A record of a message in flight for a group. `consumer` is "" after a nack. */
export interface PendingRecord {
  readonly seq: number;
  readonly consumer: string;
  /** Leader time from which it may be delivered again (the ack deadline, or the nack delay's end). */
  readonly availableAtMs: number;
  readonly deliveries: number;
  /**
   * Leader time of its last delivery or claim, from which its idle time counts. Absent on records
   * the previous release wrote: their deadline less the group's ack wait stands in.
   */
  readonly deliveredAtMs?: number;
  /**
   * The message's id, kept only once the message was deleted while in flight and the delete kept
   * it in flight (Redis XDEL): Redis's XPENDING, XREADGROUP history and XAUTOCLAIM still name it.
   */
  readonly deletedId?: string;
}

/** A message id `<ms>-<n>` as its two numbers, ordered as Redis orders them. */
export interface MessageId {
  readonly ms: number;
  readonly n: number;
}

export const META_CLOCK = utf8("streams.clock");

const META_NEXT_ID = utf8("streams.nextId");

export const META_COUNT = utf8("streams.count");

export const GARBAGE_STREAM = 1;

export const GARBAGE_GROUP = 2;

export const EMPTY = new Uint8Array(0);

export const u64 = (value: number) => new ByteWriter(8).u64(value).finish();

export const pair = (a: number, b: number) => new ByteWriter(16).u64(a).u64(b).finish();

export const withSuffix = (id: number, suffix: string) => {
  const text = utf8(suffix);
  return new ByteWriter(8 + text.length).u64(id).raw(text).finish();
};

export function readU64(state: StateReader, space: Space, key: Uint8Array): number {
  const bytes = state.get(space, key);
  return bytes === undefined ? 0 : new ByteReader(bytes).u64();
}

/** Encoded stream names, the keys of their metadata (every append reads and writes one). */
const metaKeys = new Map<string, Uint8Array>();

/** The key of a stream's metadata. The state copies keys it keeps, so a shared one is safe. */
export function metaKey(name: string): Uint8Array {
  let key = metaKeys.get(name);
  if (key === undefined) {
    if (metaKeys.size >= 1024) metaKeys.clear();
    key = utf8(name);
    metaKeys.set(name, key);
  }
  return key;
}

const jsonDecoder = new TextDecoder();

/**
 * Bookkeeping already decoded, by the very byte array it was read from or written as. State values
 * are never changed once written (see StateWriter.put), so a stream's metadata, rewritten by every
 * append, is decoded once rather than at each of the next appends. The objects are shared: readonly.
 */
const decodedMeta = new WeakMap<Uint8Array, object>();

/**
 * The first byte of binary bookkeeping: its format's version. The previous releases stored JSON,
 * whose first byte is `{` (0x7b), so old state (an old lmdb file, an old snapshot) still reads;
 * the next write of that stream or group stores it in binary.
 */
const META_BINARY_V1 = 1;
const JSON_OPEN_BRACE = 0x7b;

/** Optional fields present, one bit each, so a decoded object has exactly the fields written. */
const STREAM_HOLES = 1;
const STREAM_MAX_DELETED = 2;
const STREAM_ENTRIES_ADDED = 4;
const GROUP_REDELIVERED = 1;
const GROUP_DEAD_LETTERS_LOST = 2;
const GROUP_CONSUMERS = 4;
/** A consumer record that carries its delivery counts. */
const CONSUMER_COUNTS = 1;

/** A signed integer as an unsigned one (zigzag), for the one field that may be negative. */
function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

function encodeStreamMeta(m: StreamMeta): Uint8Array {
  const flags =
    (m.holes !== undefined ? STREAM_HOLES : 0) |
    (m.maxDeletedIdMs !== undefined || m.maxDeletedIdN !== undefined ? STREAM_MAX_DELETED : 0) |
    (m.entriesAddedDelta !== undefined ? STREAM_ENTRIES_ADDED : 0);
  const writer = new ByteWriter(64 + m.name.length * 3).u8(META_BINARY_V1).varint(m.id).string(m.name);
  encodeConfig(m.config, writer)
    .varint(m.createdMs)
    .varint(m.firstSeq)
    .varint(m.lastSeq)
    .varint(m.bytes)
    .varint(m.lastIdMs)
    .varint(m.lastIdN)
    .u8(flags);
  if (m.holes !== undefined) writer.varint(m.holes);
  if ((flags & STREAM_MAX_DELETED) !== 0) writer.varint(m.maxDeletedIdMs ?? 0).varint(m.maxDeletedIdN ?? 0);
  if (m.entriesAddedDelta !== undefined) writer.varint(zigzag(m.entriesAddedDelta));
  return writer.finish();
}

function decodeStreamMeta(bytes: Uint8Array): StreamMeta {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  assert(version === META_BINARY_V1, `unknown stream bookkeeping format ${version}`);
  const id = reader.varint();
  const name = reader.string();
  const config = decodeConfig(reader);
  const meta: StreamMeta = {
    id,
    name,
    config,
    createdMs: reader.varint(),
    firstSeq: reader.varint(),
    lastSeq: reader.varint(),
    bytes: reader.varint(),
    lastIdMs: reader.varint(),
    lastIdN: reader.varint(),
  };
  const flags = reader.u8();
  const holes = (flags & STREAM_HOLES) !== 0 ? { holes: reader.varint() } : {};
  const maxDeleted =
    (flags & STREAM_MAX_DELETED) !== 0
      ? { maxDeletedIdMs: reader.varint(), maxDeletedIdN: reader.varint() }
      : {};
  const entriesAdded =
    (flags & STREAM_ENTRIES_ADDED) !== 0 ? { entriesAddedDelta: unzigzag(reader.varint()) } : {};
  reader.end();
  return { ...meta, ...holes, ...maxDeleted, ...entriesAdded };
}

function encodeGroupMeta(g: GroupMeta): Uint8Array {
  const flags =
    (g.redelivered !== undefined ? GROUP_REDELIVERED : 0) |
    (g.deadLettersLost !== undefined ? GROUP_DEAD_LETTERS_LOST : 0) |
    (g.consumers !== undefined ? GROUP_CONSUMERS : 0);
  const writer = new ByteWriter(64 + (g.consumers?.length ?? 0) * 24)
    .u8(META_BINARY_V1)
    .varint(g.id)
    .string(g.name);
  encodeGroupConfig(g.config, writer)
    .varint(g.createdMs)
    .varint(g.nextSeq)
    .varint(g.pending)
    .varint(g.delivered)
    .varint(g.acked)
    .varint(g.deadLettered)
    .u8(flags);
  if (g.redelivered !== undefined) writer.varint(g.redelivered);
  if (g.deadLettersLost !== undefined) writer.varint(g.deadLettersLost);
  if (g.consumers !== undefined) {
    writer.varint(g.consumers.length);
    for (const [name, seenMs, activeMs, delivered, redelivered] of g.consumers) {
      writer.string(name).varint(seenMs).varint(activeMs);
      if (delivered === undefined) writer.u8(0);
      else
        writer
          .u8(CONSUMER_COUNTS)
          .varint(delivered)
          .varint(redelivered ?? 0);
    }
  }
  return writer.finish();
}

function decodeGroupMeta(bytes: Uint8Array): GroupMeta {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  assert(version === META_BINARY_V1, `unknown group bookkeeping format ${version}`);
  const id = reader.varint();
  const name = reader.string();
  const config = decodeGroupConfig(reader);
  const meta: GroupMeta = {
    id,
    name,
    config,
    createdMs: reader.varint(),
    nextSeq: reader.varint(),
    pending: reader.varint(),
    delivered: reader.varint(),
    acked: reader.varint(),
    deadLettered: reader.varint(),
  };
  const flags = reader.u8();
  const redelivered = (flags & GROUP_REDELIVERED) !== 0 ? { redelivered: reader.varint() } : {};
  const lost = (flags & GROUP_DEAD_LETTERS_LOST) !== 0 ? { deadLettersLost: reader.varint() } : {};
  let consumers: { consumers: ConsumerRecord[] } | Record<never, never> = {};
  if ((flags & GROUP_CONSUMERS) !== 0) {
    const count = reader.varint();
    assert(count <= consumersPerGroupMax + 1, `a group with ${count} consumers`);
    const records: ConsumerRecord[] = [];
    for (let i = 0; i < count; i++) {
      const consumer = reader.string();
      const seenMs = reader.varint();
      const activeMs = reader.varint();
      records.push(
        reader.u8() === CONSUMER_COUNTS
          ? [consumer, seenMs, activeMs, reader.varint(), reader.varint()]
          : [consumer, seenMs, activeMs],
      );
    }
    consumers = { consumers: records };
  }
  reader.end();
  return { ...meta, ...redelivered, ...lost, ...consumers };
}

/**
 * A bookkeeping codec: binary (version {@link META_BINARY_V1}) written, binary or the previous
 * releases' JSON read, each byte array decoded once.
 */
function metaCodec<T extends object>(
  encode: (value: T) => Uint8Array,
  decode: (bytes: Uint8Array) => T,
): ValueCodec<T> {
  return {
    encode: (value) => {
      const bytes = encode(value);
      decodedMeta.set(bytes, value);
      return bytes;
    },
    decode: (bytes) => {
      let value = decodedMeta.get(bytes);
      if (value === undefined) {
        value =
          bytes[0] === JSON_OPEN_BRACE ? (JSON.parse(jsonDecoder.decode(bytes)) as object) : decode(bytes);
        decodedMeta.set(bytes, value);
      }
      // A decoder's cast: the cache holds only values of this codec's type under its space's keys.
      return value as T;
    },
  };
}

/**
 * Stream bookkeeping as stored. Written through StateWriter.putValue, so of the rewrites of one
 * stream's metadata in an apply round (one per append) only the last is encoded.
 */
export const streamMetaCodec: ValueCodec<StreamMeta> = metaCodec(encodeStreamMeta, decodeStreamMeta);

/** Group bookkeeping as stored (see {@link streamMetaCodec}). */
export const groupMetaCodec: ValueCodec<GroupMeta> = metaCodec(encodeGroupMeta, decodeGroupMeta);

/** The latest leader timestamp applied to streams: the clock by which ages and deadlines are judged. */
export function streamsClockMs(state: StateReader): number {
  return readU64(state, "meta", META_CLOCK);
}

/** Reads a stream's bookkeeping, or undefined when no stream has that name. */
export function getStreamMeta(state: StateReader, name: string): StreamMeta | undefined {
  return readValue(state, "stream-meta", metaKey(name), streamMetaCodec);
}

export function putStreamMeta(state: StateWriter, meta: StreamMeta): void {
  state.putValue("stream-meta", metaKey(meta.name), meta, streamMetaCodec);
}

/** Reads a group's bookkeeping. */
export function getGroupMeta(state: StateReader, stream: StreamMeta, group: string): GroupMeta | undefined {
  return readValue(state, "consumer-group", withSuffix(stream.id, group), groupMetaCodec);
}

export function putGroupMeta(state: StateWriter, stream: StreamMeta, group: GroupMeta): void {
  state.putValue("consumer-group", withSuffix(stream.id, group.name), group, groupMetaCodec);
}

export function encodeMessage(m: StreamMessage, idMs: number, idN: number): Uint8Array {
  const writer = new ByteWriter(m.payload.length + 32)
    .varint(m.tsMs)
    .varint(idMs)
    .varint(idN)
    .u8(m.key !== undefined ? 1 : 0);
  if (m.key !== undefined) writer.string(m.key);
  writer.varint(m.headers.length);
  for (const [name, value] of m.headers) writer.string(name).string(value);
  return writer.bytes(m.payload).finish();
}

export function decodeMessage(seq: number, bytes: Uint8Array): StreamMessage {
  const reader = new ByteReader(bytes);
  const tsMs = reader.varint();
  const id = `${reader.varint()}-${reader.varint()}`;
  const key = reader.u8() === 1 ? reader.string() : undefined;
  const count = reader.varint();
  const headers: Header[] = [];
  for (let i = 0; i < count; i++) headers.push([reader.string(), reader.string()]);
  const payload = reader.bytes();
  reader.end();
  return { seq, id, tsMs, payload, headers, ...(key !== undefined ? { key } : {}) };
}

/** The size a message counts for in limits: payload, key and headers. */
export function messageBytes(
  payload: Uint8Array,
  headers: readonly Header[],
  key: string | undefined,
): number {
  let size = payload.length + (key === undefined ? 0 : utf8(key).length);
  for (const [name, value] of headers) size += utf8(name).length + utf8(value).length;
  return size;
}

function encodePending(p: PendingRecord): Uint8Array {
  const writer = new ByteWriter(32).u64(p.availableAtMs).varint(p.deliveries).string(p.consumer);
  // Last, so the previous release, which reads the fields before it and ignores the rest, reads it too.
  if (p.deliveredAtMs !== undefined || p.deletedId !== undefined) writer.varint(p.deliveredAtMs ?? 0);
  if (p.deletedId !== undefined) writer.string(p.deletedId);
  return writer.finish();
}

export function decodePending(seq: number, bytes: Uint8Array): PendingRecord {
  const reader = new ByteReader(bytes);
  const record = { seq, availableAtMs: reader.u64(), deliveries: reader.varint(), consumer: reader.string() };
  if (reader.remaining === 0) return record;
  const delivered = { ...record, deliveredAtMs: reader.varint() };
  return reader.remaining > 0 ? { ...delivered, deletedId: reader.string() } : delivered;
}

function dueKey(groupId: number, availableAtMs: number, seq: number): Uint8Array {
  return new ByteWriter(24).u64(groupId).u64(availableAtMs).u64(seq).finish();
}

/** Records a message in flight (replacing `previous`), keeping the due index in step. */
export function writePending(
  state: StateWriter,
  group: GroupMeta,
  record: PendingRecord,
  previous?: PendingRecord,
): void {
  if (previous !== undefined)
    state.delete("consumer-due", dueKey(group.id, previous.availableAtMs, previous.seq));
  state.put("consumer-pending", pair(group.id, record.seq), encodePending(record));
  state.put("consumer-due", dueKey(group.id, record.availableAtMs, record.seq), EMPTY);
}

/** Forgets a message in flight and its due-index entry. */
export function removePending(state: StateWriter, group: GroupMeta, record: PendingRecord): void {
  state.delete("consumer-pending", pair(group.id, record.seq));
  state.delete("consumer-due", dueKey(group.id, record.availableAtMs, record.seq));
}

export function nextId(state: StateWriter): number {
  const id = readU64(state, "meta", META_NEXT_ID) + 1;
  state.put("meta", META_NEXT_ID, u64(id));
  return id;
}

export function dedupeTtlKey(streamId: number, tsMs: number, msgId: string): Uint8Array {
  const text = utf8(msgId);
  return new ByteWriter(16 + text.length).u64(streamId).u64(tsMs).raw(text).finish();
}

export function compareIds(a: MessageId, b: MessageId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.n - b.n;
}

export function idOf(message: StreamMessage): MessageId {
  const dash = message.id.indexOf("-");
  return { ms: Number(message.id.slice(0, dash)), n: Number(message.id.slice(dash + 1)) };
}

/** Redis's order of ids. */
export function idAtLeast(ms: number, n: number, otherMs: number, otherN: number): boolean {
  return ms !== otherMs ? ms > otherMs : n >= otherN;
}

export function sameConfig(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
