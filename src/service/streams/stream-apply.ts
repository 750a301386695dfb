// What the commands on a stream itself do: create, update, delete, append, trim, delete messages,
// set its last id, and the retention that appends and sweeps apply.
import { assert, ByteReader, ByteWriter } from "../../util/index.js";
import type { Refusals } from "../errors.js";
import { StateOverlay, type StateReader, type StateWriter } from "../state.js";
import {
  type GivenId,
  type StreamCommand,
  type StreamConfig,
  type StreamConfigChanges,
  type StreamTrim,
  trimBlockSeqs,
} from "./stream-command.js";
import {
  compareIds,
  decodeMessage,
  decodePending,
  dedupeTtlKey,
  EMPTY,
  encodeMessage,
  GARBAGE_GROUP,
  GARBAGE_STREAM,
  getStreamMeta,
  idAtLeast,
  idOf,
  META_COUNT,
  messageBytes,
  metaKey,
  nextId,
  pair,
  putGroupMeta,
  putStreamMeta,
  readU64,
  removePending,
  type StreamMessage,
  type StreamMeta,
  sameConfig,
  u64,
  withSuffix,
  writePending,
} from "./stream-layout.js";
import {
  getMessage,
  heldBetween,
  lastHeldAtOrBefore,
  lastHeldSeq,
  listGroups,
  messageAtOrAfter,
  messageCount,
} from "./stream-queries.js";
import {
  type AppendOutcome,
  failure,
  type StreamFailureCode,
  type StreamMachineLimits,
  type StreamResultOf,
} from "./stream-results.js";

/** Redis XSETID, with its checks in its order (Redis 7.2) and its texts. */
export function setId(
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

export function createStream(
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

export function deleteStream(state: StateWriter, name: string): StreamResultOf<"streams.delete"> {
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
export function overLimits(meta: StreamMeta): boolean {
  const c = meta.config;
  return (
    (c.maxMessages > 0 && messageCount(meta) > c.maxMessages) || (c.maxBytes > 0 && meta.bytes > c.maxBytes)
  );
}

export function updateStream(
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

export function deleteMessages(
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
export function pruneStream(
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

export function appendMessage(
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

/**
 * Trims a stream from its oldest end (Redis MAXLEN / MINID), removing at most `bound` messages;
 * `more` when the bound stopped an exact trim. An approximate trim removes whole blocks of
 * {@link trimBlockSeqs} sequences only, each only if all of it may go, as Redis removes whole nodes.
 */
export function trimStream(
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

/**
 * Appends a batch's messages in order, each as an append alone would (its own sequence, id and
 * deduplication, so a message id repeated within the batch answers the first one's sequence). An
 * atomic batch is applied to an overlay first and kept only if every message was taken: one refusal
 * refuses the batch, with that message's code, and changes nothing.
 */
export function appendBatch(
  state: StateWriter,
  command: Extract<StreamCommand, { type: "append-batch" }>,
  clockMs: number,
  limits: StreamMachineLimits,
): StreamResultOf<"streams.append-batch"> {
  const { name } = command;
  if (getStreamMeta(state, name) === undefined)
    return failure("streams.append-batch", "ERR_NOT_FOUND", `stream ${name} does not exist`, {});
  const atomic = command.atomic === true;
  const target = atomic ? new StateOverlay(state) : state;
  const results: AppendOutcome[] = [];
  for (const [index, message] of command.messages.entries()) {
    const meta = getStreamMeta(target, name);
    assert(meta !== undefined, "a batch's stream exists throughout its entry");
    const result = appendMessage(target, meta, { type: "append", name, ...message }, clockMs, limits);
    if (!result.ok && atomic) {
      const refusal: Refusals<"streams.append-batch", StreamFailureCode> = {
        ...result,
        kind: "streams.append-batch",
        message: `message ${index} of the atomic batch: ${result.message}; no message was appended`,
      };
      return refusal;
    }
    results.push(result);
  }
  if (target instanceof StateOverlay) {
    for (const effect of target.effects()) {
      if (effect.value === undefined) state.delete(effect.space, effect.key);
      else state.put(effect.space, effect.key, effect.value);
    }
  }
  return { ok: true, kind: "streams.append-batch", results };
}
