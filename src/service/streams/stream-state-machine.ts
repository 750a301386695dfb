// What stream and consumer-group commands do to replicated state. Deterministic: the only clock is
// the leader's timestamp carried in each entry (kept monotonic across leaders), so every replica
// applying the same log reaches the same streams, sequences, deliveries and dead letters.
//
// Layout (every stream and group gets a numeric id at creation, so a deleted stream's data can be
// removed in bounded steps while a new stream of the same name starts clean):
//   stream-meta    name                         -> StreamMeta (JSON)
//   stream-message u64 streamId, u64 seq        -> message (binary)
//   stream-dedupe  u64 streamId, msgId          -> u64 seq, u64 tsMs
//   stream-dedupe-ttl u64 streamId, u64 tsMs, msgId -> empty (expiry index)
//   consumer-group u64 streamId, group name     -> GroupMeta (JSON)
//   consumer-pending u64 groupId, u64 seq         -> u64 availableAtMs, varint deliveries, consumer
//   consumer-due   u64 groupId, u64 availableAtMs, u64 seq -> empty (in-flight messages by deadline)
//   stream-garbage u64 id                       -> u8 kind (1 stream, 2 group): data still to remove
import { assert, ByteReader, ByteWriter, utf8 } from "../../util/index.js";
import type { ErrorDetails, Refusal, Refusals } from "../errors.js";
import {
  prefixEnd,
  readValue,
  type Space,
  type StateReader,
  type StateWriter,
  type ValueCodec,
} from "../state.js";
import {
  type GivenId,
  type GroupConfig,
  type Header,
  type SettleAction,
  type StartAt,
  type StreamCommand,
  type StreamConfig,
  type StreamConfigChanges,
  type StreamTrim,
  trimBlockSeqs,
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

/**
 * A message a fetch handed to a consumer, by sequence. The result of a fetch names messages rather
 * than carrying them, so an idempotency key remembers a few bytes per message, not its payload.
 */
export interface Delivery {
  readonly seq: number;
  /** How many times this message has been delivered to the group, this time included. */
  readonly deliveries: number;
}

/** The codes with which the state machine refuses a stream command. */
export type StreamFailureCode =
  | "ERR_NOT_FOUND"
  | "ERR_CONFLICT"
  | "ERR_STREAM_FULL"
  | "ERR_TOO_LARGE"
  | "ERR_LIMIT";

/** The kind tag of every stream command and result: `streams.` and the command's type. */
export type StreamResultKind = `streams.${StreamCommand["type"]}`;

/** A stream command that failed, tagged with its kind; nothing changed. */
export type StreamFailure = {
  readonly [K in StreamResultKind]: Refusals<K, StreamFailureCode>;
}[StreamResultKind];

/** What each stream command answers when it succeeds, by kind. */
export interface StreamSuccesses {
  readonly "streams.create": { readonly created: boolean };
  readonly "streams.delete": { readonly deleted: boolean };
  /** `updated` is false when the settings were already as asked. */
  readonly "streams.update": { readonly updated: boolean };
  /** `deleted`: the sequences that were held and are now deleted, in the order asked. */
  readonly "streams.message-delete": { readonly deleted: readonly number[] };
  readonly "streams.append": {
    readonly seq: number;
    readonly id: string;
    /** True when the message id was seen within the window: `seq` is the original's. */
    readonly duplicate: boolean;
  };
  readonly "streams.group-create": { readonly created: boolean };
  readonly "streams.group-delete": { readonly deleted: boolean };
  /** `updated` is false when the settings were already as asked. */
  readonly "streams.group-update": { readonly updated: boolean };
  readonly "streams.fetch": { readonly messages: readonly Delivery[] };
  readonly "streams.settle": {
    readonly settled: readonly number[];
    /** Sequences that were not in flight for this group (already settled, or never delivered). */
    readonly notPending: readonly number[];
  };
  readonly "streams.sweep": { readonly removed: number };
  /** `more` when the per-entry bound stopped an exact trim before it was done. */
  readonly "streams.trim": { readonly trimmed: number; readonly more: boolean };
  readonly "streams.group-position": Record<never, never>;
  readonly "streams.consumer-create": { readonly created: boolean };
  readonly "streams.set-id": Record<never, never>;
  /** How many messages the consumer held, now no longer in flight. */
  readonly "streams.consumer-delete": { readonly pending: number };
  readonly "streams.claim": {
    /** The messages now held by the claiming consumer, in sequence order. */
    readonly claimed: readonly Delivery[];
    /**
     * Sequences in flight whose messages were deleted meanwhile, in order among the claimed ones:
     * dropped from the group (left there by `ownOnly`, which reads a consumer's history).
     */
    readonly deleted: readonly number[];
    /** The ids of `deleted`, one each ("" when not kept: trimmed, or deleted by the HTTP API). */
    readonly deletedIds: readonly string[];
    /** Where a scan continues (0: it reached the end; always 0 for named sequences). */
    readonly next: number;
  };
}

/** The successful outcome of a stream command of kind `K`. */
export type StreamSuccess<K extends StreamResultKind> = {
  readonly kind: K;
  readonly ok: true;
} & StreamSuccesses[K];

/** The outcome of any stream command, tagged with its command's kind. */
export type StreamResult =
  | { readonly [K in StreamResultKind]: StreamSuccess<K> }[StreamResultKind]
  | StreamFailure;

/** The outcome of a stream command of kind `K`. */
export type StreamResultOf<K extends StreamResultKind> = Extract<StreamResult, { readonly kind: K }>;

/** Limits the state machine itself enforces; equal on every replica. */
export interface StreamMachineLimits {
  readonly streamsMax: number;
  readonly groupsPerStreamMax: number;
  /**
   * Messages and message ids that retention removes per append or update at most, so one entry's
   * work stays bounded; the leader's sweeps remove the rest.
   */
  readonly prunePerEntryMax: number;
  /** Payload bytes one fetch hands out, about (a fetch always hands out at least one message). */
  readonly fetchBytesMax: number;
  /** Messages one trim (Redis MAXLEN / MINID) removes per entry at most. */
  readonly trimPerEntryMax: number;
}

/**
 * Defaults: 10,000 streams, 100 groups per stream, 256 removals per entry, fetches of 4 MiB,
 * trims of 10,000 messages (Redis's own bound for an approximate trim).
 */
export const defaultStreamMachineLimits: StreamMachineLimits = {
  streamsMax: 10_000,
  groupsPerStreamMax: 100,
  prunePerEntryMax: 256,
  fetchBytesMax: 4 * 1024 * 1024,
  trimPerEntryMax: 10_000,
};

/** The default stream settings a dead-letter stream gets when the state machine creates it. */
export const deadLetterStreamConfig: StreamConfig = {
  maxMessages: 0,
  maxBytes: 0,
  maxAgeMs: 0,
  discard: "old",
  messageBytesMax: 2 * 1024 * 1024,
  dedupeWindowMs: 0,
};

const META_CLOCK = utf8("streams.clock");
const META_NEXT_ID = utf8("streams.nextId");
const META_COUNT = utf8("streams.count");
const GARBAGE_STREAM = 1;
const GARBAGE_GROUP = 2;
const EMPTY = new Uint8Array(0);

const u64 = (value: number) => new ByteWriter(8).u64(value).finish();
const pair = (a: number, b: number) => new ByteWriter(16).u64(a).u64(b).finish();
const withSuffix = (id: number, suffix: string) => {
  const text = utf8(suffix);
  return new ByteWriter(8 + text.length).u64(id).raw(text).finish();
};

function readU64(state: StateReader, space: Space, key: Uint8Array): number {
  const bytes = state.get(space, key);
  return bytes === undefined ? 0 : new ByteReader(bytes).u64();
}

const jsonDecoder = new TextDecoder();
/**
 * Bookkeeping already decoded, by the very byte array it was read from or written as. State values
 * are never changed once written (see StateWriter.put), so a stream's metadata, rewritten by every
 * append, is parsed once rather than at each of the next appends. The objects are shared: readonly.
 */
const decodedJson = new WeakMap<Uint8Array, object>();

function fromJson<T extends object>(bytes: Uint8Array): T {
  let value = decodedJson.get(bytes);
  if (value === undefined) {
    value = JSON.parse(jsonDecoder.decode(bytes)) as object;
    decodedJson.set(bytes, value);
  }
  return value as T;
}

/** Encoded stream names, the keys of their metadata (every append reads and writes one). */
const metaKeys = new Map<string, Uint8Array>();

/** The key of a stream's metadata. The state copies keys it keeps, so a shared one is safe. */
function metaKey(name: string): Uint8Array {
  let key = metaKeys.get(name);
  if (key === undefined) {
    if (metaKeys.size >= 1024) metaKeys.clear();
    key = utf8(name);
    metaKeys.set(name, key);
  }
  return key;
}

function toJson(value: object): Uint8Array {
  const bytes = utf8(JSON.stringify(value));
  decodedJson.set(bytes, value);
  return bytes;
}

/**
 * Stream and group bookkeeping as stored: JSON. Written through StateWriter.putValue, so of the
 * rewrites of one stream's metadata in an apply round (one per append) only the last is encoded.
 */
const streamMetaCodec: ValueCodec<StreamMeta> = {
  encode: toJson,
  decode: (bytes) => fromJson<StreamMeta>(bytes),
};
const groupMetaCodec: ValueCodec<GroupMeta> = {
  encode: toJson,
  decode: (bytes) => fromJson<GroupMeta>(bytes),
};

/** The latest leader timestamp applied to streams: the clock by which ages and deadlines are judged. */
export function streamsClockMs(state: StateReader): number {
  return readU64(state, "meta", META_CLOCK);
}

/** Reads a stream's bookkeeping, or undefined when no stream has that name. */
export function getStreamMeta(state: StateReader, name: string): StreamMeta | undefined {
  return readValue(state, "stream-meta", metaKey(name), streamMetaCodec);
}

function putStreamMeta(state: StateWriter, meta: StreamMeta): void {
  state.putValue("stream-meta", metaKey(meta.name), meta, streamMetaCodec);
}

/** How many streams exist. */
export function streamCount(state: StateReader): number {
  return readU64(state, "meta", META_COUNT);
}

/** Lists streams in name order, at most `limit`, starting after `after`. */
export function listStreams(state: StateReader, limit: number, after?: string): StreamMeta[] {
  const start = after === undefined ? EMPTY : utf8(`${after}\0`);
  return [...state.range("stream-meta", start, undefined, limit)].map(([, bytes]) =>
    streamMetaCodec.decode(bytes),
  );
}

/** Reads a group's bookkeeping. */
export function getGroupMeta(state: StateReader, stream: StreamMeta, group: string): GroupMeta | undefined {
  return readValue(state, "consumer-group", withSuffix(stream.id, group), groupMetaCodec);
}

function putGroupMeta(state: StateWriter, stream: StreamMeta, group: GroupMeta): void {
  state.putValue("consumer-group", withSuffix(stream.id, group.name), group, groupMetaCodec);
}

/** Lists a stream's groups in name order. */
export function listGroups(state: StateReader, stream: StreamMeta): GroupMeta[] {
  const prefix = u64(stream.id);
  return [...state.range("consumer-group", prefix, prefixEnd(prefix), Number.MAX_SAFE_INTEGER)].map(
    ([, bytes]) => groupMetaCodec.decode(bytes),
  );
}

function encodeMessage(m: StreamMessage, idMs: number, idN: number): Uint8Array {
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

function decodeMessage(seq: number, bytes: Uint8Array): StreamMessage {
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

/** How many messages a stream holds. */
export function messageCount(stream: StreamMeta): number {
  return stream.lastSeq - stream.firstSeq + 1 - (stream.holes ?? 0);
}

/** Reads one message by sequence. */
export function getMessage(state: StateReader, stream: StreamMeta, seq: number): StreamMessage | undefined {
  if (seq < stream.firstSeq || seq > stream.lastSeq) return undefined;
  const bytes = state.get("stream-message", pair(stream.id, seq));
  return bytes === undefined ? undefined : decodeMessage(seq, bytes);
}

/** The first held message at sequence `seq` or after it, skipping deleted ones. */
function messageAtOrAfter(state: StateReader, stream: StreamMeta, seq: number): StreamMessage | undefined {
  const start = Math.max(seq, stream.firstSeq);
  if ((stream.holes ?? 0) === 0) return getMessage(state, stream, start);
  for (const [key, value] of state.range(
    "stream-message",
    pair(stream.id, start),
    pair(stream.id, stream.lastSeq + 1),
    1,
  )) {
    return decodeMessage(new ByteReader(key.subarray(8)).u64(), value);
  }
  return undefined;
}

/** A page of messages and where to continue. */
export interface MessagePage {
  readonly messages: readonly StreamMessage[];
  /** The sequence to read from next. */
  readonly next: number;
}

/** Reads up to `limit` messages (and about `bytesMax` bytes) from sequence `from` up to `to` (inclusive). */
export function readMessages(
  state: StateReader,
  stream: StreamMeta,
  from: number,
  limit: number,
  bytesMax: number,
  to = Number.MAX_SAFE_INTEGER,
): MessagePage {
  const start = Math.max(from, stream.firstSeq);
  const end = Math.min(to, stream.lastSeq);
  const messages: StreamMessage[] = [];
  let bytes = 0;
  if (start <= end) {
    for (const [key, value] of state.range(
      "stream-message",
      pair(stream.id, start),
      pair(stream.id, end + 1),
      limit,
    )) {
      const seq = new ByteReader(key.subarray(8)).u64();
      const message = decodeMessage(seq, value);
      bytes += message.payload.length;
      if (messages.length > 0 && bytes > bytesMax) break;
      messages.push(message);
    }
  }
  const last = messages.at(-1);
  return { messages, next: last === undefined ? Math.max(start, end + 1) : last.seq + 1 };
}

/**
 * Reads up to `limit` messages (and about `bytesMax` bytes) from sequence `to` down to `from`
 * (inclusive), newest first; `next` is the sequence to continue downward from, 0 once the range is
 * read.
 */
export function readMessagesReverse(
  state: StateReader,
  stream: StreamMeta,
  from: number,
  limit: number,
  bytesMax: number,
  to = Number.MAX_SAFE_INTEGER,
): MessagePage {
  const low = Math.max(from, stream.firstSeq);
  let high = Math.min(to, stream.lastSeq);
  const messages: StreamMessage[] = [];
  let bytes = 0;
  // The store reads forward only: read windows below `high`, doubling them where deleted messages
  // leave a window short, so a page costs a few forward reads.
  let window = limit;
  while (high >= low && messages.length < limit) {
    const start = Math.max(low, high - window + 1);
    const chunk = [
      ...state.range("stream-message", pair(stream.id, start), pair(stream.id, high + 1), high - start + 1),
    ];
    for (let i = chunk.length - 1; i >= 0 && messages.length < limit; i--) {
      const entry = chunk[i];
      if (entry === undefined) continue;
      const message = decodeMessage(new ByteReader(entry[0].subarray(8)).u64(), entry[1]);
      bytes += message.payload.length;
      if (messages.length > 0 && bytes > bytesMax) return { messages, next: message.seq };
      messages.push(message);
    }
    high = start - 1;
    window *= 2;
  }
  const last = messages.at(-1);
  const more = messages.length === limit && last !== undefined && last.seq - 1 >= low;
  return { messages, next: more ? last.seq - 1 : 0 };
}

/** A message id `<ms>-<n>` as its two numbers, ordered as Redis orders them. */
export interface MessageId {
  readonly ms: number;
  readonly n: number;
}

function compareIds(a: MessageId, b: MessageId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.n - b.n;
}

function idOf(message: StreamMessage): MessageId {
  const dash = message.id.indexOf("-");
  return { ms: Number(message.id.slice(0, dash)), n: Number(message.id.slice(dash + 1)) };
}

/**
 * The sequence of the first held message whose id is `id` or later (lastSeq + 1 if none is): ids
 * grow with sequences, so this bisects as {@link seqAtTime} does.
 */
export function seqAtId(state: StateReader, stream: StreamMeta, id: MessageId): number {
  let lo = stream.firstSeq;
  let hi = stream.lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const message = messageAtOrAfter(state, stream, mid);
    if (message !== undefined && compareIds(idOf(message), id) < 0) lo = message.seq + 1;
    else hi = mid;
  }
  return lo;
}

/** The newest held message's sequence: lastSeq, unless that message was deleted (or none is held). */
function lastHeldSeq(state: StateReader, stream: StreamMeta): number {
  // Without holes the message at lastSeq is held; an empty stream has none (and lastSeq < firstSeq).
  if ((stream.holes ?? 0) === 0) return stream.lastSeq;
  // Bisect for the first sequence with no held message at or after it; the one before is held.
  let lo = stream.firstSeq;
  let hi = stream.lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (messageAtOrAfter(state, stream, mid) === undefined) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

/**
 * A sequence from which on every held message was appended at or after `timeMs`, and before which
 * none was (lastSeq + 1 if none was).
 */
export function seqAtTime(state: StateReader, stream: StreamMeta, timeMs: number): number {
  // Message times never decrease along the sequence (the streams clock is monotonic): bisect,
  // judging a deleted sequence by the next message held after it.
  let lo = stream.firstSeq;
  let hi = stream.lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const message = messageAtOrAfter(state, stream, mid);
    if (message !== undefined && message.tsMs < timeMs) lo = message.seq + 1;
    else hi = mid;
  }
  return lo;
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

function encodePending(p: PendingRecord): Uint8Array {
  const writer = new ByteWriter(32).u64(p.availableAtMs).varint(p.deliveries).string(p.consumer);
  // Last, so the previous release, which reads the fields before it and ignores the rest, reads it too.
  if (p.deliveredAtMs !== undefined || p.deletedId !== undefined) writer.varint(p.deliveredAtMs ?? 0);
  if (p.deletedId !== undefined) writer.string(p.deletedId);
  return writer.finish();
}

function decodePending(seq: number, bytes: Uint8Array): PendingRecord {
  const reader = new ByteReader(bytes);
  const record = { seq, availableAtMs: reader.u64(), deliveries: reader.varint(), consumer: reader.string() };
  if (reader.remaining === 0) return record;
  const delivered = { ...record, deliveredAtMs: reader.varint() };
  return reader.remaining > 0 ? { ...delivered, deletedId: reader.string() } : delivered;
}

/** Lists a group's messages in flight in sequence order, at most `limit`. */
export function listPending(state: StateReader, group: GroupMeta, limit: number): PendingRecord[] {
  return [...state.range("consumer-pending", pair(group.id, 0), pair(group.id + 1, 0), limit)].map(
    ([key, value]) => decodePending(new ByteReader(key.subarray(8)).u64(), value),
  );
}

function dueKey(groupId: number, availableAtMs: number, seq: number): Uint8Array {
  return new ByteWriter(24).u64(groupId).u64(availableAtMs).u64(seq).finish();
}

/** Records a message in flight (replacing `previous`), keeping the due index in step. */
function writePending(
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
function removePending(state: StateWriter, group: GroupMeta, record: PendingRecord): void {
  state.delete("consumer-pending", pair(group.id, record.seq));
  state.delete("consumer-due", dueKey(group.id, record.availableAtMs, record.seq));
}

/** The earliest time at which a message in flight for `group` may be delivered again, if any. */
export function nextDueMs(state: StateReader, group: GroupMeta): number | undefined {
  for (const [key] of state.range("consumer-due", u64(group.id), u64(group.id + 1), 1)) {
    return new ByteReader(key.subarray(8, 16)).u64();
  }
  return undefined;
}

function nextId(state: StateWriter): number {
  const id = readU64(state, "meta", META_NEXT_ID) + 1;
  state.put("meta", META_NEXT_ID, u64(id));
  return id;
}

/** A refusal of a command of kind `kind`, with the details of its code. */
function failure<K extends StreamResultKind, C extends StreamFailureCode>(
  kind: K,
  code: C,
  message: string,
  details: ErrorDetails[C],
): Refusal<K, C> {
  return { kind, ok: false, code, message, details };
}

function sameConfig(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Applies one stream command at leader time `tsMs`; the caller batches the writes atomically. */
export function applyStream(
  state: StateWriter,
  command: StreamCommand,
  tsMs: number,
  limits: StreamMachineLimits = defaultStreamMachineLimits,
): StreamResult {
  // The clock only moves forward, even if a new leader's clock is behind the old one's.
  const clockMs = Math.max(streamsClockMs(state), tsMs);
  state.put("meta", META_CLOCK, u64(clockMs));
  switch (command.type) {
    case "create":
      return createStream(state, command.name, command.config, clockMs, limits);
    case "delete":
      return deleteStream(state, command.name);
    case "update":
      return updateStream(state, command.name, command.changes, clockMs, limits);
    case "message-delete":
      return deleteMessages(state, command.name, command.seqs, command.keepPending === true);
    case "append": {
      let meta = getStreamMeta(state, command.name);
      if (meta === undefined && command.createWith !== undefined) {
        const created = createStream(state, command.name, command.createWith, clockMs, limits);
        if (!created.ok) return { ...created, kind: "streams.append" };
        meta = getStreamMeta(state, command.name);
      }
      if (meta === undefined)
        return failure("streams.append", "ERR_NOT_FOUND", `stream ${command.name} does not exist`, {});
      return appendMessage(state, meta, command, clockMs, limits);
    }
    case "group-create":
      return createGroup(
        state,
        command.stream,
        command.group,
        command.startAt,
        command.config,
        clockMs,
        limits,
      );
    case "group-delete": {
      const meta = getStreamMeta(state, command.stream);
      const group = meta === undefined ? undefined : getGroupMeta(state, meta, command.group);
      if (meta === undefined || group === undefined)
        return { ok: true, kind: "streams.group-delete", deleted: false };
      state.delete("consumer-group", withSuffix(meta.id, group.name));
      state.put("stream-garbage", u64(group.id), Uint8Array.of(GARBAGE_GROUP));
      return { ok: true, kind: "streams.group-delete", deleted: true };
    }
    case "group-update": {
      const meta = getStreamMeta(state, command.stream);
      if (meta === undefined)
        return failure(
          "streams.group-update",
          "ERR_NOT_FOUND",
          `stream ${command.stream} does not exist`,
          {},
        );
      const group = getGroupMeta(state, meta, command.group);
      if (group === undefined)
        return failure("streams.group-update", "ERR_NOT_FOUND", `group ${command.group} does not exist`, {});
      const config: GroupConfig = { ...group.config, ...command.changes };
      if (sameConfig(config, group.config)) return { ok: true, kind: "streams.group-update", updated: false };
      putGroupMeta(state, meta, { ...group, config });
      return { ok: true, kind: "streams.group-update", updated: true };
    }
    case "fetch":
      return fetch(state, command.stream, command.group, command.consumer, command.max, clockMs, limits);
    case "settle":
      return settle(state, command, clockMs, limits);
    case "sweep":
      return { ok: true, kind: "streams.sweep", removed: sweep(state, clockMs, command.max, limits) };
    case "claim":
      return claim(state, command, clockMs);
    case "trim": {
      const meta = getStreamMeta(state, command.name);
      if (meta === undefined)
        return failure("streams.trim", "ERR_NOT_FOUND", `stream ${command.name} does not exist`, {});
      const trimmed = trimStream(state, meta, command.trim, limits.trimPerEntryMax);
      if (trimmed.meta !== meta) putStreamMeta(state, trimmed.meta);
      return { ok: true, kind: "streams.trim", trimmed: trimmed.removed, more: trimmed.more };
    }
    case "group-position": {
      const meta = getStreamMeta(state, command.stream);
      const group = meta === undefined ? undefined : getGroupMeta(state, meta, command.group);
      if (meta === undefined || group === undefined) {
        return failure(
          "streams.group-position",
          "ERR_NOT_FOUND",
          `group ${command.group} of stream ${command.stream} does not exist`,
          {},
        );
      }
      putGroupMeta(state, meta, { ...group, nextSeq: Math.max(1, command.nextSeq) });
      return { ok: true, kind: "streams.group-position" };
    }
    case "consumer-create":
      return createConsumer(state, command, clockMs);
    case "set-id":
      return setId(state, command);
    case "consumer-delete":
      return deleteConsumer(state, command);
  }
}

/** Redis's order of ids. */
function idAtLeast(ms: number, n: number, otherMs: number, otherN: number): boolean {
  return ms !== otherMs ? ms > otherMs : n >= otherN;
}

/** Redis XSETID, with its checks in its order (Redis 7.2) and its texts. */
function setId(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "set-id" }>,
): StreamResultOf<"streams.set-id"> {
  const meta = getStreamMeta(state, command.name);
  if (meta === undefined)
    return failure("streams.set-id", "ERR_NOT_FOUND", `stream ${command.name} does not exist`, {});
  const refuse = (message: string) => failure("streams.set-id", "ERR_CONFLICT", message, {});
  const { lastIdMs, lastIdN } = command;
  if (!idAtLeast(lastIdMs, lastIdN, meta.maxDeletedIdMs ?? 0, meta.maxDeletedIdN ?? 0))
    return refuse("The ID specified in XSETID is smaller than current max_deleted_entry_id");
  const held = messageCount(meta);
  if (held > 0) {
    const top = getMessage(state, meta, lastHeldSeq(state, meta));
    assert(top !== undefined, "a stream holding messages holds its newest");
    const [topMs, topN] = top.id.split("-").map(Number);
    if (!idAtLeast(lastIdMs, lastIdN, topMs ?? 0, topN ?? 0))
      return refuse("The ID specified in XSETID is smaller than the target stream top item");
    if (command.entriesAdded !== undefined && held > command.entriesAdded)
      return refuse("The entries_added specified in XSETID is smaller than the target stream length");
  }
  const deleted = command.maxDeletedId;
  putStreamMeta(state, {
    ...meta,
    lastIdMs,
    lastIdN,
    ...(command.entriesAdded !== undefined ? { entriesAddedDelta: command.entriesAdded - meta.lastSeq } : {}),
    ...(deleted !== undefined && (deleted.ms > 0 || deleted.n > 0)
      ? { maxDeletedIdMs: deleted.ms, maxDeletedIdN: deleted.n }
      : {}),
  });
  return { ok: true, kind: "streams.set-id" };
}

function createStream(
  state: StateWriter,
  name: string,
  config: StreamConfig,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.create"> {
  const existing = getStreamMeta(state, name);
  if (existing !== undefined) {
    // Creating what exists with the same settings is a no-op, so create is safe to repeat.
    if (sameConfig(existing.config, config)) return { ok: true, kind: "streams.create", created: false };
    return failure("streams.create", "ERR_CONFLICT", `stream ${name} exists with other settings`, {});
  }
  const count = readU64(state, "meta", META_COUNT);
  if (count >= limits.streamsMax)
    return failure("streams.create", "ERR_LIMIT", `at most ${limits.streamsMax} streams`, {});
  state.put("meta", META_COUNT, u64(count + 1));
  putStreamMeta(state, {
    id: nextId(state),
    name,
    config,
    createdMs: clockMs,
    firstSeq: 1,
    lastSeq: 0,
    bytes: 0,
    lastIdMs: 0,
    lastIdN: 0,
  });
  return { ok: true, kind: "streams.create", created: true };
}

function deleteStream(state: StateWriter, name: string): StreamResultOf<"streams.delete"> {
  const meta = getStreamMeta(state, name);
  if (meta === undefined) return { ok: true, kind: "streams.delete", deleted: false };
  for (const group of listGroups(state, meta)) {
    state.delete("consumer-group", withSuffix(meta.id, group.name));
    state.put("stream-garbage", u64(group.id), Uint8Array.of(GARBAGE_GROUP));
  }
  state.delete("stream-meta", metaKey(name));
  state.put("meta", META_COUNT, u64(Math.max(0, readU64(state, "meta", META_COUNT) - 1)));
  // The messages go in bounded sweeps: deleting a large stream must not make one huge entry.
  state.put("stream-garbage", u64(meta.id), Uint8Array.of(GARBAGE_STREAM));
  return { ok: true, kind: "streams.delete", deleted: true };
}

/** Removes the message at `seq` (if held) from the store; returns the bytes it counted for. */
function removeMessage(state: StateWriter, meta: StreamMeta, seq: number): number | undefined {
  const key = pair(meta.id, seq);
  const bytes = state.get("stream-message", key);
  if (bytes === undefined) return undefined;
  const m = decodeMessage(seq, bytes);
  state.delete("stream-message", key);
  return messageBytes(m.payload, m.headers, m.key);
}

/** Bookkeeping with `holes` set, leaving the field out when there are none. */
function withHoles(meta: StreamMeta, holes: number): StreamMeta {
  const { holes: _old, ...rest } = meta;
  return holes === 0 ? rest : { ...rest, holes };
}

/** Drops the oldest message; returns the updated bookkeeping. */
function dropOldest(state: StateWriter, meta: StreamMeta): StreamMeta {
  const size = removeMessage(state, meta, meta.firstSeq) ?? 0;
  const dropped = { ...meta, bytes: meta.bytes - size };
  return advanceFirst(state, dropped, meta.firstSeq + 1);
}

/** Moves firstSeq to the first held message at or after `from`, past deleted sequences. */
function advanceFirst(state: StateReader, meta: StreamMeta, from: number): StreamMeta {
  const holes = meta.holes ?? 0;
  if (holes === 0) return { ...meta, firstSeq: from };
  const next = messageAtOrAfter(state, { ...meta, firstSeq: from }, from)?.seq ?? meta.lastSeq + 1;
  // The sequences skipped between `from` and `next` were holes.
  return withHoles({ ...meta, firstSeq: next }, holes - (next - from));
}

/** Whether a stream holds more than its count or byte limit allows. */
function overLimits(meta: StreamMeta): boolean {
  const c = meta.config;
  return (
    (c.maxMessages > 0 && messageCount(meta) > c.maxMessages) || (c.maxBytes > 0 && meta.bytes > c.maxBytes)
  );
}

function updateStream(
  state: StateWriter,
  name: string,
  changes: StreamConfigChanges,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.update"> {
  const meta = getStreamMeta(state, name);
  if (meta === undefined)
    return failure("streams.update", "ERR_NOT_FOUND", `stream ${name} does not exist`, {});
  const config: StreamConfig = { ...meta.config, ...changes };
  if (sameConfig(config, meta.config)) return { ok: true, kind: "streams.update", updated: false };
  // A lowered limit applies at this entry, whatever the discard policy (a full stream with
  // discard "new" is over its new limit, not just full), up to the per-entry bound.
  const updated = pruneStream(state, { ...meta, config }, clockMs, limits.prunePerEntryMax).meta;
  putStreamMeta(state, updated);
  return { ok: true, kind: "streams.update", updated: true };
}

function deleteMessages(
  state: StateWriter,
  name: string,
  seqs: readonly number[],
  keepPending: boolean,
): StreamResultOf<"streams.message-delete"> {
  let meta = getStreamMeta(state, name);
  if (meta === undefined)
    return failure("streams.message-delete", "ERR_NOT_FOUND", `stream ${name} does not exist`, {});
  const deleted: number[] = [];
  const ids = new Map<number, string>();
  for (const seq of seqs) {
    if (seq < meta.firstSeq || seq > meta.lastSeq) continue;
    if (keepPending) {
      const message = getMessage(state, meta, seq);
      if (message !== undefined) ids.set(seq, message.id);
    }
    if (seq === meta.firstSeq) {
      // Held, by the invariant on firstSeq.
      meta = dropOldest(state, meta);
    } else {
      const size = removeMessage(state, meta, seq);
      if (size === undefined) continue;
      meta = withHoles({ ...meta, bytes: meta.bytes - size }, (meta.holes ?? 0) + 1);
    }
    deleted.push(seq);
  }
  if (deleted.length === 0) return { ok: true, kind: "streams.message-delete", deleted };
  for (const id of ids.values()) {
    const [ms = 0, n = 0] = id.split("-").map(Number);
    if (!idAtLeast(meta.maxDeletedIdMs ?? 0, meta.maxDeletedIdN ?? 0, ms, n))
      meta = { ...meta, maxDeletedIdMs: ms, maxDeletedIdN: n };
  }
  putStreamMeta(state, meta);
  // A deleted message can never be delivered again: forget it in every group that holds it, so
  // neither a redelivery nor a dead letter names it. Redis's XDEL (`keepPending`) leaves it in
  // flight, with its id, until it is acknowledged or claimed; a redelivery drops it then.
  for (const group of listGroups(state, meta)) {
    let pending = group.pending;
    for (const seq of deleted) {
      const bytes = state.get("consumer-pending", pair(group.id, seq));
      if (bytes === undefined) continue;
      const record = decodePending(seq, bytes);
      const deletedId = ids.get(seq);
      if (deletedId !== undefined) {
        const deliveredAtMs =
          record.deliveredAtMs ?? Math.max(0, record.availableAtMs - group.config.ackWaitMs);
        writePending(state, group, { ...record, deliveredAtMs, deletedId }, record);
        continue;
      }
      removePending(state, group, record);
      pending--;
    }
    if (pending !== group.pending) putGroupMeta(state, meta, { ...group, pending });
  }
  return { ok: true, kind: "streams.message-delete", deleted };
}

/**
 * Applies max age and the count and byte limits (dropping the oldest messages) and forgets expired
 * message ids, at most `max` removals; returns the new meta.
 */
function pruneStream(
  state: StateWriter,
  meta: StreamMeta,
  clockMs: number,
  max: number,
): { meta: StreamMeta; removed: number } {
  let removed = 0;
  let m = meta;
  if (m.config.maxAgeMs > 0) {
    const cutoff = clockMs - m.config.maxAgeMs;
    while (removed < max && m.firstSeq <= m.lastSeq) {
      const oldest = getMessage(state, m, m.firstSeq);
      if (oldest === undefined || oldest.tsMs > cutoff) break;
      m = dropOldest(state, m);
      removed++;
    }
  }
  // Normally a no-op: appends keep a stream within its limits. After a limit was lowered, this
  // drops the excess in bounded steps.
  while (removed < max && m.firstSeq <= m.lastSeq && overLimits(m)) {
    m = dropOldest(state, m);
    removed++;
  }
  const window = m.config.dedupeWindowMs;
  if (clockMs - window >= 0) {
    const end = pair(m.id, clockMs - window + 1);
    for (const [key] of [...state.range("stream-dedupe-ttl", u64(m.id), end, max - removed)]) {
      state.delete("stream-dedupe-ttl", key);
      state.delete(
        "stream-dedupe",
        new ByteWriter(key.length - 8).raw(key.subarray(0, 8)).raw(key.subarray(16)).finish(),
      );
      removed++;
    }
  }
  return { meta: m, removed };
}

function appendMessage(
  state: StateWriter,
  original: StreamMeta,
  command: Extract<StreamCommand, { type: "append" }>,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.append"> {
  let meta = pruneStream(state, original, clockMs, limits.prunePerEntryMax).meta;
  if (meta !== original) putStreamMeta(state, meta);
  const config = meta.config;
  if (command.msgId !== undefined && config.dedupeWindowMs > 0) {
    const seen = state.get("stream-dedupe", withSuffix(meta.id, command.msgId));
    if (seen !== undefined) {
      const reader = new ByteReader(seen);
      const seq = reader.u64();
      const seenMs = reader.u64();
      if (seenMs > clockMs - config.dedupeWindowMs) {
        const message = getMessage(state, meta, seq);
        return { ok: true, kind: "streams.append", seq, id: message?.id ?? "", duplicate: true };
      }
    }
  }
  if (command.expectedLastSeq !== undefined && command.expectedLastSeq !== meta.lastSeq) {
    return failure(
      "streams.append",
      "ERR_CONFLICT",
      `stream ${meta.name} is at sequence ${meta.lastSeq}, not ${command.expectedLastSeq}`,
      { currentLastSeq: meta.lastSeq },
    );
  }
  const size = messageBytes(command.payload, command.headers, command.key);
  if (size > config.messageBytesMax) {
    return failure(
      "streams.append",
      "ERR_TOO_LARGE",
      `message is ${size} bytes; stream ${meta.name} takes at most ${config.messageBytesMax}`,
      {},
    );
  }
  const count = messageCount(meta);
  const overCount = config.maxMessages > 0 && count + 1 > config.maxMessages;
  const overBytes = config.maxBytes > 0 && meta.bytes + size > config.maxBytes;
  if (config.discard === "new" && (overCount || overBytes)) {
    return failure(
      "streams.append",
      "ERR_STREAM_FULL",
      `stream ${meta.name} is full and refuses new messages`,
      {},
    );
  }
  if (config.maxBytes > 0 && size > config.maxBytes) {
    return failure(
      "streams.append",
      "ERR_TOO_LARGE",
      `message is larger than the stream's maxBytes (${config.maxBytes})`,
      {},
    );
  }
  const nextId = nextMessageId(meta, command.id, clockMs);
  if (!nextId.ok) return failure("streams.append", "ERR_CONFLICT", nextId.message, {});
  const { ms: idMs, n: idN } = nextId;
  const seq = meta.lastSeq + 1;
  const message: StreamMessage = {
    seq,
    id: `${idMs}-${idN}`,
    tsMs: clockMs,
    payload: command.payload,
    headers: command.headers,
    ...(command.key !== undefined ? { key: command.key } : {}),
  };
  state.put("stream-message", pair(meta.id, seq), encodeMessage(message, idMs, idN));
  meta = { ...meta, lastSeq: seq, bytes: meta.bytes + size, lastIdMs: idMs, lastIdN: idN };
  // With discard "old" the stream is within its limits after an append, unless more than the
  // per-entry bound had to go (a lowered limit, or a large message pushing out many small ones):
  // then the leader's sweeps drop the rest.
  for (let dropped = 0; dropped < limits.prunePerEntryMax && meta.firstSeq < meta.lastSeq; dropped++) {
    if (!overLimits(meta)) break;
    meta = dropOldest(state, meta);
  }
  if (command.trim !== undefined) meta = trimStream(state, meta, command.trim, limits.trimPerEntryMax).meta;
  putStreamMeta(state, meta);
  if (command.msgId !== undefined && config.dedupeWindowMs > 0) {
    const previous = state.get("stream-dedupe", withSuffix(meta.id, command.msgId));
    if (previous !== undefined) {
      const reader = new ByteReader(previous);
      reader.u64();
      state.delete("stream-dedupe-ttl", dedupeTtlKey(meta.id, reader.u64(), command.msgId));
    }
    state.put("stream-dedupe", withSuffix(meta.id, command.msgId), pair(seq, clockMs));
    state.put("stream-dedupe-ttl", dedupeTtlKey(meta.id, clockMs, command.msgId), EMPTY);
  }
  return { ok: true, kind: "streams.append", seq, id: message.id, duplicate: false };
}

const idMax = Number.MAX_SAFE_INTEGER;

/**
 * The id of the next message: the one given (`n` left out: the next free in its millisecond), which
 * must be above the stream's last, or the clock's millisecond with a counter within it (never below
 * the last id, so ids only grow). The refusals are Redis's texts.
 */
function nextMessageId(
  meta: StreamMeta,
  given: GivenId | undefined,
  clockMs: number,
): { ok: true; ms: number; n: number } | { ok: false; message: string } {
  const tooSmall = "The ID specified in XADD is equal or smaller than the target stream top item";
  if (given === undefined) {
    const ms = Math.max(meta.lastIdMs, clockMs);
    if (ms !== meta.lastIdMs || meta.lastSeq === 0) return { ok: true, ms, n: 0 };
    if (meta.lastIdN < idMax) return { ok: true, ms, n: meta.lastIdN + 1 };
    if (ms < idMax) return { ok: true, ms: ms + 1, n: 0 };
    return { ok: false, message: "The stream has exhausted the last possible ID, unable to add more items" };
  }
  if (given.n === undefined) {
    if (given.ms > meta.lastIdMs) return { ok: true, ms: given.ms, n: 0 };
    if (given.ms === meta.lastIdMs && meta.lastIdN < idMax)
      return { ok: true, ms: given.ms, n: meta.lastIdN + 1 };
    return { ok: false, message: tooSmall };
  }
  if (compareIds({ ms: given.ms, n: given.n }, { ms: meta.lastIdMs, n: meta.lastIdN }) <= 0) {
    return { ok: false, message: tooSmall };
  }
  return { ok: true, ms: given.ms, n: given.n };
}

/** The messages held with sequences in [from, to]. */
function heldBetween(state: StateReader, stream: StreamMeta, from: number, to: number): number {
  if (from > to) return 0;
  if ((stream.holes ?? 0) === 0) return to - from + 1;
  return [...state.range("stream-message", pair(stream.id, from), pair(stream.id, to + 1), to - from + 1)]
    .length;
}

/**
 * Trims a stream from its oldest end (Redis MAXLEN / MINID), removing at most `bound` messages;
 * `more` when the bound stopped an exact trim. An approximate trim removes whole blocks of
 * {@link trimBlockSeqs} sequences only, each only if all of it may go, as Redis removes whole nodes.
 */
function trimStream(
  state: StateWriter,
  meta: StreamMeta,
  trim: StreamTrim,
  bound: number,
): { meta: StreamMeta; removed: number; more: boolean } {
  const limit = trim.limit > 0 ? Math.min(trim.limit, bound) : bound;
  let m = meta;
  let removed = 0;
  /** Whether the oldest message (its id known) must go. */
  const mustGo = (oldest: StreamMessage | undefined, count: number): boolean =>
    trim.kind === "maxlen"
      ? count > trim.max
      : oldest !== undefined && compareIds(idOf(oldest), { ms: trim.ms, n: trim.n }) < 0;
  while (m.firstSeq <= m.lastSeq) {
    if (trim.exact) {
      if (!mustGo(getMessage(state, m, m.firstSeq), messageCount(m)))
        return { meta: m, removed, more: false };
      if (removed >= limit) return { meta: m, removed, more: true };
      m = dropOldest(state, m);
      removed++;
      continue;
    }
    const blockLast = Math.min(m.lastSeq, (Math.floor((m.firstSeq - 1) / trimBlockSeqs) + 1) * trimBlockSeqs);
    const held = heldBetween(state, m, m.firstSeq, blockLast);
    if (removed + held > limit) break;
    if (
      trim.kind === "maxlen"
        ? messageCount(m) - held < trim.max
        : !mustGo(lastHeldAtOrBefore(state, m, blockLast), 0)
    )
      break;
    while (m.firstSeq <= blockLast && m.firstSeq <= m.lastSeq) m = dropOldest(state, m);
    removed += held;
  }
  return { meta: m, removed, more: false };
}

/** The newest held message at or before `seq`, if any. */
function lastHeldAtOrBefore(state: StateReader, stream: StreamMeta, seq: number): StreamMessage | undefined {
  const page = readMessagesReverse(state, stream, stream.firstSeq, 1, Number.MAX_SAFE_INTEGER, seq);
  return page.messages[0];
}

/** The id of the newest held message before sequence `seq`, `0-0` if none (a group's last delivered id). */
export function idBefore(state: StateReader, stream: StreamMeta, seq: number): string {
  return lastHeldAtOrBefore(state, stream, seq - 1)?.id ?? "0-0";
}

function dedupeTtlKey(streamId: number, tsMs: number, msgId: string): Uint8Array {
  const text = utf8(msgId);
  return new ByteWriter(16 + text.length).u64(streamId).u64(tsMs).raw(text).finish();
}

function createGroup(
  state: StateWriter,
  streamName: string,
  name: string,
  startAt: StartAt,
  config: GroupConfig,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.group-create"> {
  const meta = getStreamMeta(state, streamName);
  if (meta === undefined)
    return failure("streams.group-create", "ERR_NOT_FOUND", `stream ${streamName} does not exist`, {});
  const existing = getGroupMeta(state, meta, name);
  if (existing !== undefined) {
    if (sameConfig(existing.config, config))
      return { ok: true, kind: "streams.group-create", created: false };
    return failure("streams.group-create", "ERR_CONFLICT", `group ${name} exists with other settings`, {});
  }
  if (listGroups(state, meta).length >= limits.groupsPerStreamMax) {
    return failure(
      "streams.group-create",
      "ERR_LIMIT",
      `at most ${limits.groupsPerStreamMax} groups per stream`,
      {},
    );
  }
  let nextSeq: number;
  switch (startAt.kind) {
    case "first":
      nextSeq = meta.firstSeq;
      break;
    case "last":
      nextSeq = Math.max(meta.firstSeq, lastHeldSeq(state, meta));
      break;
    case "new":
      nextSeq = meta.lastSeq + 1;
      break;
    case "seq":
      nextSeq = Math.max(1, startAt.seq);
      break;
    case "time":
      nextSeq = seqAtTime(state, meta, startAt.timeMs);
      break;
  }
  putGroupMeta(state, meta, {
    id: nextId(state),
    name,
    config,
    createdMs: clockMs,
    nextSeq,
    pending: 0,
    delivered: 0,
    acked: 0,
    deadLettered: 0,
  });
  return { ok: true, kind: "streams.group-create", created: true };
}

/**
 * Appends a copy of a message to the group's dead-letter stream, creating that stream if needed.
 * Answers whether the dead-letter stream took it.
 */
function deadLetter(
  state: StateWriter,
  stream: StreamMeta,
  group: GroupMeta,
  message: StreamMessage,
  deliveries: number,
  reason: "max-deliveries" | "terminated",
  clockMs: number,
  limits: StreamMachineLimits,
): boolean {
  const target = group.config.deadLetterStream;
  if (getStreamMeta(state, target) === undefined) {
    createStream(state, target, deadLetterStreamConfig, clockMs, limits);
  }
  const dlq = getStreamMeta(state, target);
  if (dlq === undefined) return false; // Out of streams.
  const appended = appendMessage(
    state,
    dlq,
    {
      type: "append",
      name: target,
      payload: message.payload,
      headers: [
        ...message.headers,
        ["cairn-dlq-reason", reason],
        ["cairn-dlq-deliveries", String(deliveries)],
        ["cairn-dlq-stream", stream.name],
        ["cairn-dlq-group", group.name],
        ["cairn-dlq-seq", String(message.seq)],
      ],
      ...(message.key !== undefined ? { key: message.key } : {}),
    },
    clockMs,
    limits,
  );
  return appended.ok;
}

function fetch(
  state: StateWriter,
  streamName: string,
  groupName: string,
  consumer: string,
  max: number,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.fetch"> {
  const stream = getStreamMeta(state, streamName);
  if (stream === undefined)
    return failure("streams.fetch", "ERR_NOT_FOUND", `stream ${streamName} does not exist`, {});
  let group = getGroupMeta(state, stream, groupName);
  if (group === undefined)
    return failure("streams.fetch", "ERR_NOT_FOUND", `group ${groupName} does not exist`, {});
  const out: Delivery[] = [];
  let payloadBytes = 0;
  /** Whether `message` still fits the fetch's byte budget (the first always does). */
  const fits = (message: StreamMessage) =>
    out.length === 0 || payloadBytes + message.payload.length <= limits.fetchBytesMax;
  const handOut = (message: StreamMessage, deliveries: number) => {
    payloadBytes += message.payload.length;
    out.push({ seq: message.seq, deliveries });
  };
  let pending = group.pending;
  let deliveredCount = group.delivered;
  let redelivered = 0;
  let deadLettered = group.deadLettered;
  let deadLettersLost = group.deadLettersLost ?? 0;
  let full = false;
  // First, messages whose ack deadline or nack delay has passed, earliest deadline first. Expiry is
  // judged lazily here, against this entry's leader time, so no replica needs a timer; the due
  // index makes the scan touch only messages that are due.
  const dueEnd = pair(group.id, clockMs + 1);
  while (out.length < max && !full) {
    const due = [...state.range("consumer-due", u64(group.id), dueEnd, max - out.length)];
    if (due.length === 0) break;
    for (const [dueKey] of due) {
      const seq = new ByteReader(dueKey.subarray(16)).u64();
      const bytes = state.get("consumer-pending", pair(group.id, seq));
      assert(bytes !== undefined, "the due index names only messages in flight");
      const record = decodePending(seq, bytes);
      const message = getMessage(state, stream, seq);
      if (message === undefined) {
        // Retention removed it: nothing left to deliver.
        removePending(state, group, record);
        pending--;
        continue;
      }
      if (group.config.maxDeliveries > 0 && record.deliveries >= group.config.maxDeliveries) {
        removePending(state, group, record);
        pending--;
        if (deadLetter(state, stream, group, message, record.deliveries, "max-deliveries", clockMs, limits)) {
          deadLettered++;
        } else {
          deadLettersLost++;
        }
        continue;
      }
      if (!fits(message)) {
        full = true;
        break;
      }
      const deliveries = record.deliveries + 1;
      // Invariant: ackWaitMs >= 1, so the new deadline is past this scan's end and never rescanned.
      writePending(
        state,
        group,
        {
          seq,
          consumer,
          availableAtMs: clockMs + group.config.ackWaitMs,
          deliveries,
          deliveredAtMs: clockMs,
        },
        record,
      );
      deliveredCount++;
      // A pending record with no delivery yet was made by a claim of a message never handed out.
      if (record.deliveries >= 1) redelivered++;
      handOut(message, deliveries);
    }
  }
  // Then messages this group never saw, while it has room in flight. A range scan skips the
  // sequences of deleted messages without visiting them one by one.
  let nextSeq = Math.max(group.nextSeq, stream.firstSeq);
  const room = Math.min(max - out.length, group.config.maxAckPending - pending);
  if (!full && room > 0 && nextSeq <= stream.lastSeq) {
    const fresh = [
      ...state.range("stream-message", pair(stream.id, nextSeq), pair(stream.id, stream.lastSeq + 1), room),
    ];
    for (const [key, value] of fresh) {
      const message = decodeMessage(new ByteReader(key.subarray(8)).u64(), value);
      if (!fits(message)) {
        full = true;
        break;
      }
      writePending(state, group, {
        seq: message.seq,
        consumer,
        availableAtMs: clockMs + group.config.ackWaitMs,
        deliveries: 1,
        deliveredAtMs: clockMs,
      });
      pending++;
      deliveredCount++;
      handOut(message, 1);
      nextSeq = message.seq + 1;
    }
    // Fewer than asked for: nothing is left to hand out up to the stream's end.
    if (!full && fresh.length < room) nextSeq = stream.lastSeq + 1;
  }
  group = {
    ...group,
    nextSeq,
    pending,
    delivered: deliveredCount,
    ...countRedelivered(group, redelivered),
    deadLettered,
    ...(deadLettersLost > 0 ? { deadLettersLost } : {}),
  };
  if (out.length > 0)
    group = seeConsumer(group, consumer, clockMs, true, { delivered: out.length, redelivered });
  putGroupMeta(state, stream, group);
  return { ok: true, kind: "streams.fetch", messages: out };
}

/**
 * Whether an idempotency key should remember this result. A fetch that handed out nothing gave
 * the client nothing a retry must repeat, and a long-poll proposes again with the same key until
 * one hands out messages: so an empty fetch leaves the key unused.
 */
export function streamResultIsRemembered(result: StreamResult): boolean {
  return !(result.ok && result.kind === "streams.fetch" && result.messages.length === 0);
}

function settle(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "settle" }>,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.settle"> {
  const stream = getStreamMeta(state, command.stream);
  if (stream === undefined)
    return failure("streams.settle", "ERR_NOT_FOUND", `stream ${command.stream} does not exist`, {});
  let group = getGroupMeta(state, stream, command.group);
  if (group === undefined)
    return failure("streams.settle", "ERR_NOT_FOUND", `group ${command.group} does not exist`, {});
  const settled: number[] = [];
  const notPending: number[] = [];
  for (const seq of command.seqs) {
    const bytes = state.get("consumer-pending", pair(group.id, seq));
    if (bytes === undefined) {
      notPending.push(seq);
      continue;
    }
    const record = decodePending(seq, bytes);
    const action: SettleAction = command.action;
    switch (action) {
      case "ack":
        removePending(state, group, record);
        group = { ...group, pending: group.pending - 1, acked: group.acked + 1 };
        break;
      case "nack":
        writePending(
          state,
          group,
          { ...record, consumer: "", availableAtMs: clockMs + command.delayMs },
          record,
        );
        break;
      case "extend":
        if (record.consumer === "") {
          notPending.push(seq);
          continue;
        }
        writePending(state, group, { ...record, availableAtMs: clockMs + group.config.ackWaitMs }, record);
        break;
      case "term": {
        removePending(state, group, record);
        group = { ...group, pending: group.pending - 1 };
        const message = getMessage(state, stream, seq);
        // A message retention already removed counts as dead-lettered: there is nothing to copy.
        if (
          message === undefined ||
          deadLetter(state, stream, group, message, record.deliveries, "terminated", clockMs, limits)
        ) {
          group = { ...group, deadLettered: group.deadLettered + 1 };
        } else {
          group = { ...group, deadLettersLost: (group.deadLettersLost ?? 0) + 1 };
        }
        break;
      }
    }
    settled.push(seq);
  }
  putGroupMeta(state, stream, group);
  return { ok: true, kind: "streams.settle", settled, notPending };
}

/** How many records a claim's scan looks at per message it may claim, as Redis's XAUTOCLAIM. */
const claimScanFactor = 10;

/** Records of a group in flight that a history read (claim with `ownOnly`) scans at most. */
const historyScanMax = 10_000;

function claim(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "claim" }>,
  clockMs: number,
): StreamResultOf<"streams.claim"> {
  const stream = getStreamMeta(state, command.stream);
  if (stream === undefined)
    return failure("streams.claim", "ERR_NOT_FOUND", `stream ${command.stream} does not exist`, {});
  let group = getGroupMeta(state, stream, command.group);
  if (group === undefined)
    return failure("streams.claim", "ERR_NOT_FOUND", `group ${command.group} does not exist`, {});
  const { target } = command;
  const ownOnly = command.ownOnly === true;
  let records: PendingRecord[];
  let next = 0;
  if (target.kind === "seqs") {
    records = [];
    // Each sequence once: a record read twice would be written twice from the same old version.
    for (const seq of new Set(target.seqs)) {
      const bytes = state.get("consumer-pending", pair(group.id, seq));
      if (bytes !== undefined) records.push(decodePending(seq, bytes));
      else if (
        command.force === true &&
        seq < group.nextSeq &&
        getMessage(state, stream, seq) !== undefined
      ) {
        // XCLAIM FORCE: a message the stream holds but the group has not in flight is taken as if
        // it had been delivered, long ago, to no one. Only one the group has passed: a later one
        // is still to be handed out as new, and a fetch assumes no record exists for it.
        records.push({ seq, consumer: "", availableAtMs: 0, deliveries: 0, deliveredAtMs: 0 });
      }
    }
  } else {
    const scanMax = ownOnly ? historyScanMax : target.count * claimScanFactor;
    records = [
      ...state.range("consumer-pending", pair(group.id, target.fromSeq), pair(group.id + 1, 0), scanMax),
    ].map(([key, value]) => decodePending(new ByteReader(key.subarray(8)).u64(), value));
    const last = records.at(-1);
    if (records.length === scanMax && last !== undefined) next = last.seq + 1;
  }
  const claimed: Delivery[] = [];
  // What this claim hands the consumer, for its counters.
  const handed = { delivered: 0, redelivered: 0 };
  const deleted: number[] = [];
  const deletedIds: string[] = [];
  const claimMax = target.kind === "scan" ? target.count : Number.MAX_SAFE_INTEGER;
  let pendingDelta = 0;
  for (const record of records) {
    if (ownOnly && record.consumer !== command.consumer) continue;
    // As Redis: a deleted entry counts against COUNT too.
    if (claimed.length + deleted.length >= claimMax) {
      // The scan stopped early: it continues from the first record it did not look at.
      next = record.seq;
      break;
    }
    const fresh = state.get("consumer-pending", pair(group.id, record.seq)) === undefined;
    if (getMessage(state, stream, record.seq) === undefined) {
      // Deleted or trimmed: nothing left to deliver. A claim drops it from the group, whatever its
      // idle time, as Redis's does; reading one's history leaves it (Redis answers its id, nil).
      if (!ownOnly) {
        removePending(state, group, record);
        pendingDelta--;
      }
      deleted.push(record.seq);
      deletedIds.push(record.deletedId ?? "");
      continue;
    }
    const deliveredAtMs = record.deliveredAtMs ?? record.availableAtMs - group.config.ackWaitMs;
    if (clockMs - deliveredAtMs < command.minIdleMs) continue;
    const deliveries = command.retryCount ?? (command.justId ? record.deliveries : record.deliveries + 1);
    writePending(
      state,
      group,
      {
        seq: record.seq,
        consumer: command.consumer,
        availableAtMs: clockMs + group.config.ackWaitMs,
        deliveries,
        deliveredAtMs: clockMs - Math.min(command.idleMs ?? 0, clockMs),
      },
      fresh ? undefined : record,
    );
    if (fresh) pendingDelta++;
    if (!command.justId) {
      const again = record.deliveries >= 1 ? 1 : 0;
      group = { ...group, delivered: group.delivered + 1, ...countRedelivered(group, again) };
      handed.delivered++;
      handed.redelivered += again;
    }
    claimed.push({ seq: record.seq, deliveries });
  }
  if (pendingDelta !== 0) group = { ...group, pending: group.pending + pendingDelta };
  // As Redis: claiming makes the consumer known, and so does reading its history.
  const seen = claimed.length > 0 || ownOnly;
  if (seen) group = seeConsumer(group, command.consumer, clockMs, claimed.length > 0 && !ownOnly, handed);
  if (claimed.length > 0 || deleted.length > 0 || seen) putGroupMeta(state, stream, group);
  return { ok: true, kind: "streams.claim", claimed, deleted, deletedIds, next };
}

/** The group's redelivery count with `more` added; the field stays absent while it is 0. */
function countRedelivered(group: GroupMeta, more: number): { redelivered?: number } {
  const total = (group.redelivered ?? 0) + more;
  return total > 0 ? { redelivered: total } : {};
}

/**
 * The group with `consumer` seen at `clockMs` (and handed messages then, if `active`), added if it
 * was not known; past {@link consumersPerGroupMax}, the least recently seen other one is forgotten.
 */
function seeConsumer(
  group: GroupMeta,
  consumer: string,
  clockMs: number,
  active: boolean,
  handed: { readonly delivered: number; readonly redelivered: number } = { delivered: 0, redelivered: 0 },
): GroupMeta {
  const known = group.consumers ?? [];
  const at = known.findIndex(([name]) => name === consumer);
  const previous = known[at];
  const delivered = (previous?.[3] ?? 0) + handed.delivered;
  const redelivered = (previous?.[4] ?? 0) + handed.redelivered;
  const activeMs = active ? clockMs : (previous?.[2] ?? 0);
  const record: ConsumerRecord =
    delivered > 0 ? [consumer, clockMs, activeMs, delivered, redelivered] : [consumer, clockMs, activeMs];
  let consumers: ConsumerRecord[];
  if (previous !== undefined) {
    consumers = known.slice();
    consumers[at] = record;
  } else {
    consumers = [...known, record].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (consumers.length > consumersPerGroupMax) {
      let oldest: ConsumerRecord | undefined;
      for (const c of consumers)
        if (c[0] !== consumer && (oldest === undefined || c[1] < oldest[1])) oldest = c;
      consumers = consumers.filter((c) => c !== oldest);
    }
  }
  return { ...group, consumers };
}

/** Registers a consumer; `created` is false when the group knew it already. */
function createConsumer(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "consumer-create" }>,
  clockMs: number,
): StreamResultOf<"streams.consumer-create"> {
  const stream = getStreamMeta(state, command.stream);
  const group = stream === undefined ? undefined : getGroupMeta(state, stream, command.group);
  if (stream === undefined || group === undefined) {
    return failure(
      "streams.consumer-create",
      "ERR_NOT_FOUND",
      `group ${command.group} of stream ${command.stream} does not exist`,
      {},
    );
  }
  if ((group.consumers ?? []).some(([name]) => name === command.consumer)) {
    return { ok: true, kind: "streams.consumer-create", created: false };
  }
  const seen = seeConsumer(group, command.consumer, clockMs, false);
  putGroupMeta(state, stream, seen);
  return { ok: true, kind: "streams.consumer-create", created: true };
}

/** Forgets a consumer and what it holds (no longer in flight: not acknowledged, not redelivered). */
function deleteConsumer(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "consumer-delete" }>,
): StreamResultOf<"streams.consumer-delete"> {
  const stream = getStreamMeta(state, command.stream);
  const group = stream === undefined ? undefined : getGroupMeta(state, stream, command.group);
  if (stream === undefined || group === undefined) {
    return failure(
      "streams.consumer-delete",
      "ERR_NOT_FOUND",
      `group ${command.group} of stream ${command.stream} does not exist`,
      {},
    );
  }
  let removed = 0;
  // Bounded: a group holds at most maxAckPending messages in flight, plus what claims forced in.
  for (const record of listPending(state, group, Number.MAX_SAFE_INTEGER)) {
    if (record.consumer !== command.consumer) continue;
    removePending(state, group, record);
    removed++;
  }
  const consumers = (group.consumers ?? []).filter(([name]) => name !== command.consumer);
  const { consumers: _old, ...rest } = group;
  putGroupMeta(state, stream, {
    ...rest,
    pending: group.pending - removed,
    ...(consumers.length > 0 ? { consumers } : {}),
  });
  return { ok: true, kind: "streams.consumer-delete", pending: removed };
}

/** Removes deleted streams' and groups' data and applies retention to idle streams, at most `max` keys. */
function sweep(state: StateWriter, clockMs: number, max: number, limits: StreamMachineLimits): number {
  let removed = 0;
  for (const [idKey, kind] of [...state.range("stream-garbage", EMPTY, undefined, 16)]) {
    const id = new ByteReader(idKey).u64();
    const spaces: Space[] =
      kind[0] === GARBAGE_STREAM
        ? ["stream-message", "stream-dedupe", "stream-dedupe-ttl"]
        : ["consumer-pending", "consumer-due"];
    let left = false;
    for (const space of spaces) {
      const keys = [...state.range(space, u64(id), u64(id + 1), max - removed)];
      for (const [key] of keys) state.delete(space, key);
      removed += keys.length;
      if (removed >= max) left = true;
    }
    if (!left) state.delete("stream-garbage", idKey);
    if (removed >= max) return removed;
  }
  for (const meta of listStreams(state, Number.MAX_SAFE_INTEGER)) {
    const pruned = pruneStream(state, meta, clockMs, max - removed);
    if (pruned.meta !== meta) putStreamMeta(state, pruned.meta);
    removed += pruned.removed;
    if (removed >= max) return removed;
  }
  for (const meta of listStreams(state, Number.MAX_SAFE_INTEGER)) {
    for (const group of listGroups(state, meta)) {
      removed += retireExhausted(state, meta, group, clockMs, max - removed, limits);
      if (removed >= max) return removed;
    }
  }
  return removed;
}

/** Due records of a group that a sweep, or the check for one, looks at. */
const exhaustedScanMax = 64;

/**
 * The messages in flight for `group` whose deadline has passed after their last allowed delivery,
 * earliest deadline first, among its first `exhaustedScanMax` due records. A fetch would dead-letter
 * them; with no consumer fetching, a sweep does, so they reach the dead-letter stream about when
 * their deadline passes rather than whenever someone fetches again.
 */
function exhaustedRecords(state: StateReader, group: GroupMeta, clockMs: number): PendingRecord[] {
  if (group.config.maxDeliveries === 0) return [];
  const due = state.range("consumer-due", u64(group.id), pair(group.id, clockMs + 1), exhaustedScanMax);
  const out: PendingRecord[] = [];
  for (const [key] of due) {
    const seq = new ByteReader(key.subarray(16)).u64();
    const bytes = state.get("consumer-pending", pair(group.id, seq));
    assert(bytes !== undefined, "the due index names only messages in flight");
    const record = decodePending(seq, bytes);
    if (record.deliveries >= group.config.maxDeliveries) out.push(record);
  }
  return out;
}

/** Dead-letters up to `max` exhausted messages of `group` (see exhaustedRecords); returns how many. */
function retireExhausted(
  state: StateWriter,
  stream: StreamMeta,
  group: GroupMeta,
  clockMs: number,
  max: number,
  limits: StreamMachineLimits,
): number {
  const records = exhaustedRecords(state, group, clockMs).slice(0, max);
  if (records.length === 0) return 0;
  let { deadLettered } = group;
  let deadLettersLost = group.deadLettersLost ?? 0;
  for (const record of records) {
    removePending(state, group, record);
    const message = getMessage(state, stream, record.seq);
    if (message === undefined) continue; // Retention removed it: nothing left to dead-letter.
    if (deadLetter(state, stream, group, message, record.deliveries, "max-deliveries", clockMs, limits)) {
      deadLettered++;
    } else {
      deadLettersLost++;
    }
  }
  putGroupMeta(state, stream, {
    ...group,
    pending: group.pending - records.length,
    deadLettered,
    ...(deadLettersLost > 0 ? { deadLettersLost } : {}),
  });
  return records.length;
}

/**
 * Whether the leader should propose a sweep at time `nowMs`: deleted data, expired messages or ids,
 * a stream over a limit that was lowered, or a message in flight past its last delivery's deadline.
 */
export function streamSweepDue(state: StateReader, nowMs: number): boolean {
  if (!state.range("stream-garbage", EMPTY, undefined, 1)[Symbol.iterator]().next().done) return true;
  for (const meta of listStreams(state, Number.MAX_SAFE_INTEGER)) {
    if (overLimits(meta)) return true;
    if (meta.config.maxAgeMs > 0) {
      const oldest = getMessage(state, meta, meta.firstSeq);
      if (oldest !== undefined && oldest.tsMs <= nowMs - meta.config.maxAgeMs) return true;
    }
    // Checked whatever the window: an update may have shortened it to 0 with ids still remembered.
    for (const [key] of state.range("stream-dedupe-ttl", u64(meta.id), u64(meta.id + 1), 1)) {
      if (new ByteReader(key.subarray(8, 16)).u64() <= nowMs - meta.config.dedupeWindowMs) return true;
    }
    for (const group of listGroups(state, meta)) {
      if (exhaustedRecords(state, group, nowMs).length > 0) return true;
    }
  }
  return false;
}
