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
import { assert } from "../../util/assert.js";
import { ByteReader, ByteWriter, utf8 } from "../../util/bytes.js";
import { prefixEnd, type Space, type StateReader, type StateWriter } from "../state.js";
import type {
  GroupConfig,
  Header,
  SettleAction,
  StartAt,
  StreamCommand,
  StreamConfig,
} from "./stream-command.js";

/** A stream's bookkeeping. `firstSeq > lastSeq` when it holds no messages. */
export interface StreamMeta {
  readonly id: number;
  readonly name: string;
  readonly config: StreamConfig;
  readonly createdMs: number;
  /** The oldest sequence still held. Invariant: every sequence in [firstSeq, lastSeq] is held. */
  readonly firstSeq: number;
  /** The sequence of the newest message ever appended (0 before the first). */
  readonly lastSeq: number;
  /** Bytes of the messages held. */
  readonly bytes: number;
  /** Milliseconds and counter of the last `<ms>-<n>` message id handed out. */
  readonly lastIdMs: number;
  readonly lastIdN: number;
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
  readonly delivered: number;
  readonly acked: number;
  readonly deadLettered: number;
}

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

/** A message handed to a consumer (payload in base64, so results stay JSON-safe). */
export interface DeliveredMessage {
  readonly seq: number;
  readonly id: string;
  readonly tsMs: number;
  readonly payloadBase64: string;
  readonly headers: readonly Header[];
  readonly key?: string;
  /** How many times this message has been delivered to the group, this time included. */
  readonly deliveries: number;
}

/** A stream command that failed; nothing changed. */
export interface StreamFailure {
  readonly ok: false;
  readonly code: "ERR_NOT_FOUND" | "ERR_CONFLICT" | "ERR_STREAM_FULL" | "ERR_TOO_LARGE" | "ERR_LIMIT";
  readonly message: string;
  /** For a failed expected-last-sequence condition: the stream's last sequence now. */
  readonly currentLastSeq?: number;
}

/** The outcome of any stream command. */
export type StreamResult =
  | { readonly ok: true; readonly op: "create"; readonly created: boolean }
  | { readonly ok: true; readonly op: "delete"; readonly deleted: boolean }
  | {
      readonly ok: true;
      readonly op: "append";
      readonly seq: number;
      readonly id: string;
      /** True when the message id was seen within the window: `seq` is the original's. */
      readonly duplicate: boolean;
    }
  | { readonly ok: true; readonly op: "group-create"; readonly created: boolean }
  | { readonly ok: true; readonly op: "group-delete"; readonly deleted: boolean }
  | { readonly ok: true; readonly op: "fetch"; readonly messages: readonly DeliveredMessage[] }
  | {
      readonly ok: true;
      readonly op: "settle";
      readonly settled: readonly number[];
      /** Sequences that were not in flight for this group (already settled, or never delivered). */
      readonly notPending: readonly number[];
    }
  | { readonly ok: true; readonly op: "sweep"; readonly removed: number }
  | StreamFailure;

/** Limits the state machine itself enforces; equal on every replica. */
export interface StreamMachineLimits {
  readonly streamsMax: number;
  readonly groupsPerStreamMax: number;
  /** Expired messages and message ids removed per append, so one entry's work stays bounded. */
  readonly prunePerAppendMax: number;
}

/** Defaults: 10,000 streams, 100 groups per stream, 256 keys pruned per append. */
export const defaultStreamMachineLimits: StreamMachineLimits = {
  streamsMax: 10_000,
  groupsPerStreamMax: 100,
  prunePerAppendMax: 256,
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

/** The latest leader timestamp applied to streams: the clock by which ages and deadlines are judged. */
export function streamsClockMs(state: StateReader): number {
  return readU64(state, "meta", META_CLOCK);
}

/** Reads a stream's bookkeeping, or undefined when no stream has that name. */
export function getStreamMeta(state: StateReader, name: string): StreamMeta | undefined {
  const bytes = state.get("stream-meta", utf8(name));
  return bytes === undefined ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as StreamMeta);
}

function putStreamMeta(state: StateWriter, meta: StreamMeta): void {
  state.put("stream-meta", utf8(meta.name), utf8(JSON.stringify(meta)));
}

/** Lists streams in name order, at most `limit`, starting after `after`. */
export function listStreams(state: StateReader, limit: number, after?: string): StreamMeta[] {
  const start = after === undefined ? EMPTY : utf8(`${after}\0`);
  return [...state.range("stream-meta", start, undefined, limit)].map(
    ([, bytes]) => JSON.parse(new TextDecoder().decode(bytes)) as StreamMeta,
  );
}

/** Reads a group's bookkeeping. */
export function getGroupMeta(state: StateReader, stream: StreamMeta, group: string): GroupMeta | undefined {
  const bytes = state.get("consumer-group", withSuffix(stream.id, group));
  return bytes === undefined ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as GroupMeta);
}

function putGroupMeta(state: StateWriter, stream: StreamMeta, group: GroupMeta): void {
  state.put("consumer-group", withSuffix(stream.id, group.name), utf8(JSON.stringify(group)));
}

/** Lists a stream's groups in name order. */
export function listGroups(state: StateReader, stream: StreamMeta): GroupMeta[] {
  const prefix = u64(stream.id);
  return [...state.range("consumer-group", prefix, prefixEnd(prefix), Number.MAX_SAFE_INTEGER)].map(
    ([, bytes]) => JSON.parse(new TextDecoder().decode(bytes)) as GroupMeta,
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

/** Reads one message by sequence. */
export function getMessage(state: StateReader, stream: StreamMeta, seq: number): StreamMessage | undefined {
  if (seq < stream.firstSeq || seq > stream.lastSeq) return undefined;
  const bytes = state.get("stream-message", pair(stream.id, seq));
  return bytes === undefined ? undefined : decodeMessage(seq, bytes);
}

/** A page of messages and where to continue. */
export interface MessagePage {
  readonly messages: readonly StreamMessage[];
  /** The sequence to read from next. */
  readonly next: number;
}

/** Reads up to `limit` messages (and about `bytesMax` bytes) from sequence `from` on. */
export function readMessages(
  state: StateReader,
  stream: StreamMeta,
  from: number,
  limit: number,
  bytesMax: number,
): MessagePage {
  const start = Math.max(from, stream.firstSeq);
  const messages: StreamMessage[] = [];
  let bytes = 0;
  for (const [key, value] of state.range(
    "stream-message",
    pair(stream.id, start),
    pair(stream.id + 1, 0),
    limit,
  )) {
    const seq = new ByteReader(key.subarray(8)).u64();
    const message = decodeMessage(seq, value);
    bytes += message.payload.length;
    if (messages.length > 0 && bytes > bytesMax) break;
    messages.push(message);
  }
  const last = messages.at(-1);
  return { messages, next: last === undefined ? Math.max(start, stream.lastSeq + 1) : last.seq + 1 };
}

/** The first sequence whose message was appended at or after `timeMs` (lastSeq + 1 if none). */
export function seqAtTime(state: StateReader, stream: StreamMeta, timeMs: number): number {
  // Message times never decrease along the sequence (the streams clock is monotonic): bisect.
  let lo = stream.firstSeq;
  let hi = stream.lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const message = getMessage(state, stream, mid);
    if (message !== undefined && message.tsMs < timeMs) lo = mid + 1;
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
}

function encodePending(p: PendingRecord): Uint8Array {
  return new ByteWriter(24).u64(p.availableAtMs).varint(p.deliveries).string(p.consumer).finish();
}

function decodePending(seq: number, bytes: Uint8Array): PendingRecord {
  const reader = new ByteReader(bytes);
  return { seq, availableAtMs: reader.u64(), deliveries: reader.varint(), consumer: reader.string() };
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

function failure(code: StreamFailure["code"], message: string, currentLastSeq?: number): StreamFailure {
  return { ok: false, code, message, ...(currentLastSeq !== undefined ? { currentLastSeq } : {}) };
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
    case "append": {
      const meta = getStreamMeta(state, command.name);
      if (meta === undefined) return failure("ERR_NOT_FOUND", `stream ${command.name} does not exist`);
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
      if (meta === undefined || group === undefined) return { ok: true, op: "group-delete", deleted: false };
      state.delete("consumer-group", withSuffix(meta.id, group.name));
      state.put("stream-garbage", u64(group.id), Uint8Array.of(GARBAGE_GROUP));
      return { ok: true, op: "group-delete", deleted: true };
    }
    case "fetch":
      return fetch(state, command.stream, command.group, command.consumer, command.max, clockMs, limits);
    case "settle":
      return settle(state, command, clockMs, limits);
    case "sweep":
      return { ok: true, op: "sweep", removed: sweep(state, clockMs, command.max) };
  }
}

function createStream(
  state: StateWriter,
  name: string,
  config: StreamConfig,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResult {
  const existing = getStreamMeta(state, name);
  if (existing !== undefined) {
    // Creating what exists with the same settings is a no-op, so create is safe to repeat.
    if (sameConfig(existing.config, config)) return { ok: true, op: "create", created: false };
    return failure("ERR_CONFLICT", `stream ${name} exists with other settings`);
  }
  const count = readU64(state, "meta", META_COUNT);
  if (count >= limits.streamsMax) return failure("ERR_LIMIT", `at most ${limits.streamsMax} streams`);
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
  return { ok: true, op: "create", created: true };
}

function deleteStream(state: StateWriter, name: string): StreamResult {
  const meta = getStreamMeta(state, name);
  if (meta === undefined) return { ok: true, op: "delete", deleted: false };
  for (const group of listGroups(state, meta)) {
    state.delete("consumer-group", withSuffix(meta.id, group.name));
    state.put("stream-garbage", u64(group.id), Uint8Array.of(GARBAGE_GROUP));
  }
  state.delete("stream-meta", utf8(name));
  state.put("meta", META_COUNT, u64(Math.max(0, readU64(state, "meta", META_COUNT) - 1)));
  // The messages go in bounded sweeps: deleting a large stream must not make one huge entry.
  state.put("stream-garbage", u64(meta.id), Uint8Array.of(GARBAGE_STREAM));
  return { ok: true, op: "delete", deleted: true };
}

/** Drops the oldest message; returns the updated bookkeeping. */
function dropOldest(state: StateWriter, meta: StreamMeta): StreamMeta {
  const key = pair(meta.id, meta.firstSeq);
  const bytes = state.get("stream-message", key);
  let size = 0;
  if (bytes !== undefined) {
    const m = decodeMessage(meta.firstSeq, bytes);
    size = messageBytes(m.payload, m.headers, m.key);
  }
  state.delete("stream-message", key);
  return { ...meta, firstSeq: meta.firstSeq + 1, bytes: meta.bytes - size };
}

/** Applies max age and forgets expired message ids, at most `max` removals; returns the new meta. */
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
): StreamResult {
  let meta = pruneStream(state, original, clockMs, limits.prunePerAppendMax).meta;
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
        return { ok: true, op: "append", seq, id: message?.id ?? "", duplicate: true };
      }
    }
  }
  if (command.expectedLastSeq !== undefined && command.expectedLastSeq !== meta.lastSeq) {
    return failure(
      "ERR_CONFLICT",
      `stream ${meta.name} is at sequence ${meta.lastSeq}, not ${command.expectedLastSeq}`,
      meta.lastSeq,
    );
  }
  const size = messageBytes(command.payload, command.headers, command.key);
  if (size > config.messageBytesMax) {
    return failure(
      "ERR_TOO_LARGE",
      `message is ${size} bytes; stream ${meta.name} takes at most ${config.messageBytesMax}`,
    );
  }
  const count = meta.lastSeq - meta.firstSeq + 1;
  const overCount = config.maxMessages > 0 && count + 1 > config.maxMessages;
  const overBytes = config.maxBytes > 0 && meta.bytes + size > config.maxBytes;
  if (config.discard === "new" && (overCount || overBytes)) {
    return failure("ERR_STREAM_FULL", `stream ${meta.name} is full and refuses new messages`);
  }
  if (config.maxBytes > 0 && size > config.maxBytes) {
    return failure("ERR_TOO_LARGE", `message is larger than the stream's maxBytes (${config.maxBytes})`);
  }
  // Message ids `<ms>-<n>`: the clock's milliseconds, with a counter within one millisecond.
  const idMs = Math.max(meta.lastIdMs, clockMs);
  const idN = idMs === meta.lastIdMs && meta.lastSeq > 0 ? meta.lastIdN + 1 : 0;
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
  // Invariant: with discard "old" the stream is within its limits after every append.
  while (
    meta.firstSeq < meta.lastSeq &&
    ((config.maxMessages > 0 && meta.lastSeq - meta.firstSeq + 1 > config.maxMessages) ||
      (config.maxBytes > 0 && meta.bytes > config.maxBytes))
  ) {
    meta = dropOldest(state, meta);
  }
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
  return { ok: true, op: "append", seq, id: message.id, duplicate: false };
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
): StreamResult {
  const meta = getStreamMeta(state, streamName);
  if (meta === undefined) return failure("ERR_NOT_FOUND", `stream ${streamName} does not exist`);
  const existing = getGroupMeta(state, meta, name);
  if (existing !== undefined) {
    if (sameConfig(existing.config, config)) return { ok: true, op: "group-create", created: false };
    return failure("ERR_CONFLICT", `group ${name} exists with other settings`);
  }
  if (listGroups(state, meta).length >= limits.groupsPerStreamMax) {
    return failure("ERR_LIMIT", `at most ${limits.groupsPerStreamMax} groups per stream`);
  }
  let nextSeq: number;
  switch (startAt.kind) {
    case "first":
      nextSeq = meta.firstSeq;
      break;
    case "last":
      nextSeq = Math.max(meta.firstSeq, meta.lastSeq);
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
  return { ok: true, op: "group-create", created: true };
}

/** Appends a copy of a message to the group's dead-letter stream, creating that stream if needed. */
function deadLetter(
  state: StateWriter,
  stream: StreamMeta,
  group: GroupMeta,
  message: StreamMessage,
  deliveries: number,
  reason: "max-deliveries" | "terminated",
  clockMs: number,
  limits: StreamMachineLimits,
): void {
  const target = group.config.deadLetterStream;
  if (getStreamMeta(state, target) === undefined) {
    createStream(state, target, deadLetterStreamConfig, clockMs, limits);
  }
  const dlq = getStreamMeta(state, target);
  if (dlq === undefined) return; // Out of streams: the dead letter is counted but not kept.
  appendMessage(
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
}

function delivered(message: StreamMessage, deliveries: number): DeliveredMessage {
  return {
    seq: message.seq,
    id: message.id,
    tsMs: message.tsMs,
    payloadBase64: Buffer.from(
      message.payload.buffer,
      message.payload.byteOffset,
      message.payload.length,
    ).toString("base64"),
    headers: message.headers,
    ...(message.key !== undefined ? { key: message.key } : {}),
    deliveries,
  };
}

function fetch(
  state: StateWriter,
  streamName: string,
  groupName: string,
  consumer: string,
  max: number,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResult {
  const stream = getStreamMeta(state, streamName);
  if (stream === undefined) return failure("ERR_NOT_FOUND", `stream ${streamName} does not exist`);
  let group = getGroupMeta(state, stream, groupName);
  if (group === undefined) return failure("ERR_NOT_FOUND", `group ${groupName} does not exist`);
  const out: DeliveredMessage[] = [];
  let pending = group.pending;
  let deliveredCount = group.delivered;
  let deadLettered = group.deadLettered;
  // First, messages whose ack deadline or nack delay has passed, earliest deadline first. Expiry is
  // judged lazily here, against this entry's leader time, so no replica needs a timer; the due
  // index makes the scan touch only messages that are due.
  const dueEnd = pair(group.id, clockMs + 1);
  while (out.length < max) {
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
        deadLettered++;
        deadLetter(state, stream, group, message, record.deliveries, "max-deliveries", clockMs, limits);
        continue;
      }
      const deliveries = record.deliveries + 1;
      // Invariant: ackWaitMs >= 1, so the new deadline is past this scan's end and never rescanned.
      writePending(
        state,
        group,
        { seq, consumer, availableAtMs: clockMs + group.config.ackWaitMs, deliveries },
        record,
      );
      deliveredCount++;
      out.push(delivered(message, deliveries));
    }
  }
  // Then messages this group never saw, while it has room in flight.
  let nextSeq = Math.max(group.nextSeq, stream.firstSeq);
  while (out.length < max && nextSeq <= stream.lastSeq && pending < group.config.maxAckPending) {
    const message = getMessage(state, stream, nextSeq);
    nextSeq++;
    if (message === undefined) continue;
    writePending(state, group, {
      seq: message.seq,
      consumer,
      availableAtMs: clockMs + group.config.ackWaitMs,
      deliveries: 1,
    });
    pending++;
    deliveredCount++;
    out.push(delivered(message, 1));
  }
  group = { ...group, nextSeq, pending, delivered: deliveredCount, deadLettered };
  putGroupMeta(state, stream, group);
  return { ok: true, op: "fetch", messages: out };
}

function settle(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "settle" }>,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResult {
  const stream = getStreamMeta(state, command.stream);
  if (stream === undefined) return failure("ERR_NOT_FOUND", `stream ${command.stream} does not exist`);
  let group = getGroupMeta(state, stream, command.group);
  if (group === undefined) return failure("ERR_NOT_FOUND", `group ${command.group} does not exist`);
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
        group = { ...group, pending: group.pending - 1, deadLettered: group.deadLettered + 1 };
        const message = getMessage(state, stream, seq);
        if (message !== undefined) {
          deadLetter(state, stream, group, message, record.deliveries, "terminated", clockMs, limits);
        }
        break;
      }
    }
    settled.push(seq);
  }
  putGroupMeta(state, stream, group);
  return { ok: true, op: "settle", settled, notPending };
}

/** Removes deleted streams' and groups' data and applies retention to idle streams, at most `max` keys. */
function sweep(state: StateWriter, clockMs: number, max: number): number {
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
  return removed;
}

/** Whether the leader should propose a sweep at time `nowMs`: deleted data or expired messages or ids. */
export function streamSweepDue(state: StateReader, nowMs: number): boolean {
  if (!state.range("stream-garbage", EMPTY, undefined, 1)[Symbol.iterator]().next().done) return true;
  for (const meta of listStreams(state, Number.MAX_SAFE_INTEGER)) {
    if (meta.config.maxAgeMs > 0) {
      const oldest = getMessage(state, meta, meta.firstSeq);
      if (oldest !== undefined && oldest.tsMs <= nowMs - meta.config.maxAgeMs) return true;
    }
    if (meta.config.dedupeWindowMs > 0) {
      for (const [key] of state.range("stream-dedupe-ttl", u64(meta.id), u64(meta.id + 1), 1)) {
        if (new ByteReader(key.subarray(8, 16)).u64() <= nowMs - meta.config.dedupeWindowMs) return true;
      }
    }
  }
  return false;
}
