// What stream and consumer-group commands do to replicated state. Deterministic: the only clock is
// the leader's timestamp carried in each entry (kept monotonic across leaders), so every replica
// applying the same log reaches the same streams, sequences, deliveries and dead letters.
//
// This file dispatches each command; stream-layout.ts holds the keys and codecs, stream-queries.ts
// the reads, stream-apply.ts the stream commands and group-apply.ts the consumer-group commands.
import { ByteReader } from "../../util/index.js";
import type { Space, StateReader, StateWriter } from "../state.js";
import {
  claim,
  createConsumer,
  createGroup,
  deleteConsumer,
  exhaustedRecords,
  fetch,
  retireExhausted,
  settle,
} from "./group-apply.js";
import {
  appendBatch,
  appendMessage,
  createStream,
  deleteMessages,
  deleteStream,
  overLimits,
  pruneStream,
  setId,
  trimStream,
  updateStream,
} from "./stream-apply.js";
import type { GroupConfig, StreamCommand } from "./stream-command.js";
import {
  EMPTY,
  GARBAGE_GROUP,
  GARBAGE_STREAM,
  getGroupMeta,
  getStreamMeta,
  META_CLOCK,
  putGroupMeta,
  putStreamMeta,
  sameConfig,
  streamsClockMs,
  u64,
  withSuffix,
} from "./stream-layout.js";
import { getMessage, listGroups, listStreams } from "./stream-queries.js";
import {
  defaultStreamMachineLimits,
  failure,
  type StreamMachineLimits,
  type StreamResult,
} from "./stream-results.js";

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
    case "append-batch":
      return appendBatch(state, command, clockMs, limits);
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
