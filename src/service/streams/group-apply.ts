// What consumer-group commands do: create a group, fetch (deliver and redeliver), settle (ack, nack,
// extend, term), claim, the consumers a group knows, and dead letters.
import { assert, ByteReader } from "../../util/index.js";
import type { StateReader, StateWriter } from "../state.js";
import { appendMessage, createStream } from "./stream-apply.js";
import type { GroupConfig, SettleAction, StartAt, StreamCommand } from "./stream-command.js";
import {
  type ConsumerRecord,
  consumersPerGroupMax,
  decodeMessage,
  decodePending,
  type GroupMeta,
  getGroupMeta,
  getStreamMeta,
  nextId,
  type PendingRecord,
  pair,
  putGroupMeta,
  removePending,
  type StreamMessage,
  type StreamMeta,
  sameConfig,
  u64,
  writePending,
} from "./stream-layout.js";
import { getMessage, lastHeldSeq, listGroups, listPending, seqAtTime } from "./stream-queries.js";
import {
  type Delivery,
  deadLetterStreamConfig,
  failure,
  type StreamMachineLimits,
  type StreamResultOf,
} from "./stream-results.js";

export function createGroup(
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

export function fetch(
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

export function settle(
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

export function claim(
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
export function createConsumer(
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
export function deleteConsumer(
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

/** Due records of a group that a sweep, or the check for one, looks at. */
const exhaustedScanMax = 64;

/**
 * The messages in flight for `group` whose deadline has passed after their last allowed delivery,
 * earliest deadline first, among its first `exhaustedScanMax` due records. A fetch would dead-letter
 * them; with no consumer fetching, a sweep does, so they reach the dead-letter stream about when
 * their deadline passes rather than whenever someone fetches again.
 */
export function exhaustedRecords(state: StateReader, group: GroupMeta, clockMs: number): PendingRecord[] {
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
export function retireExhausted(
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
