// Reads of stream state that change nothing: listings, messages by sequence, id or time, a group's
// messages in flight. The services answer reads with these; the commands use them too.
import { ByteReader, utf8 } from "../../util/index.js";
import { prefixEnd, type StateReader } from "../state.js";
import {
  compareIds,
  decodeMessage,
  decodePending,
  EMPTY,
  type GroupMeta,
  groupMetaCodec,
  idOf,
  META_COUNT,
  type MessageId,
  type PendingRecord,
  pair,
  readU64,
  type StreamMessage,
  type StreamMeta,
  streamMetaCodec,
  u64,
} from "./stream-layout.js";

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

/** Lists a stream's groups in name order. */
export function listGroups(state: StateReader, stream: StreamMeta): GroupMeta[] {
  const prefix = u64(stream.id);
  return [...state.range("consumer-group", prefix, prefixEnd(prefix), Number.MAX_SAFE_INTEGER)].map(
    ([, bytes]) => groupMetaCodec.decode(bytes),
  );
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
export function messageAtOrAfter(
  state: StateReader,
  stream: StreamMeta,
  seq: number,
): StreamMessage | undefined {
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
export function lastHeldSeq(state: StateReader, stream: StreamMeta): number {
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

/** Lists a group's messages in flight in sequence order, at most `limit`. */
export function listPending(state: StateReader, group: GroupMeta, limit: number): PendingRecord[] {
  return [...state.range("consumer-pending", pair(group.id, 0), pair(group.id + 1, 0), limit)].map(
    ([key, value]) => decodePending(new ByteReader(key.subarray(8)).u64(), value),
  );
}

/** The earliest time at which a message in flight for `group` may be delivered again, if any. */
export function nextDueMs(state: StateReader, group: GroupMeta): number | undefined {
  for (const [key] of state.range("consumer-due", u64(group.id), u64(group.id + 1), 1)) {
    return new ByteReader(key.subarray(8, 16)).u64();
  }
  return undefined;
}

/** The messages held with sequences in [from, to]. */
export function heldBetween(state: StateReader, stream: StreamMeta, from: number, to: number): number {
  if (from > to) return 0;
  if ((stream.holes ?? 0) === 0) return to - from + 1;
  return [...state.range("stream-message", pair(stream.id, from), pair(stream.id, to + 1), to - from + 1)]
    .length;
}

/** The newest held message at or before `seq`, if any. */
export function lastHeldAtOrBefore(
  state: StateReader,
  stream: StreamMeta,
  seq: number,
): StreamMessage | undefined {
  const page = readMessagesReverse(state, stream, stream.firstSeq, 1, Number.MAX_SAFE_INTEGER, seq);
  return page.messages[0];
}

/** The id of the newest held message before sequence `seq`, `0-0` if none (a group's last delivered id). */
export function idBefore(state: StateReader, stream: StreamMeta, seq: number): string {
  return lastHeldAtOrBefore(state, stream, seq - 1)?.id ?? "0-0";
}
