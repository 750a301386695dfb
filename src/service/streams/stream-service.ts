// The streams and consumer-groups service: validates requests against its limits, proposes
// commands through the replicated log, serves reads (linearizable by default), long-polls for new
// messages, and turns state machine failures into CairnErrors with stable codes.
import type { ApplyNotifier } from "../apply-notifier.js";
import type { ResultOf } from "../command.js";
import { CairnError, refusalError } from "../errors.js";
import type { Consistency } from "../kv/kv-service.js";
import { proposeCommand } from "../propose.js";
import {
  type ReplicationPort,
  readStaleReported,
  type Staleness,
  type WithStaleness,
  type WriteConcern,
  withWriteConcern,
} from "../replication.js";
import type { StateReader } from "../state.js";
import {
  batchMessageOf,
  type ClaimTarget,
  type Delivery,
  type GivenId,
  type GroupConfig,
  type GroupConfigChanges,
  type GroupMeta,
  getGroupMeta,
  getMessage,
  getStreamMeta,
  type Header,
  idBefore,
  listGroups,
  listPending,
  listStreams,
  type MessageId,
  type MessagePage,
  messageBytes,
  messageCount,
  nextDueMs,
  type PendingRecord,
  readMessages,
  readMessagesReverse,
  type SettleAction,
  type StartAt,
  type StreamCommand,
  type StreamConfig,
  type StreamMessage,
  type StreamMeta,
  type StreamTrim,
  seqAtId,
  seqAtTime,
  streamCount,
  streamSweepDue,
  streamsClockMs,
} from "./index.js";

/** Limits of the streams API. */
export interface StreamLimits {
  /** The largest message (payload, key and headers) any stream accepts. */
  readonly messageBytesMax: number;
  readonly headersMax: number;
  /** Messages per read page at most; a larger page asked for reads this many. */
  readonly readLimitMax: number;
  /** Messages per read page when the caller does not say. */
  readonly readPageDefault: number;
  /** Streams one read of several streams names at most. */
  readonly readStreamsMax: number;
  /**
   * How long one round of {@link StreamService.follow} waits for new messages before it answers an
   * empty page (a follower's cue to show it is alive, as a server-sent event comment).
   */
  readonly followWaitMs: number;
  /** Payload bytes per read page, about (a page always holds at least one message). */
  readonly readBytesMax: number;
  /** The longest long-poll or fetch wait. */
  readonly waitMsMax: number;
  /** Messages one fetch or claim hands out at most. */
  readonly fetchMax: number;
  /** Messages a claim by scan takes at most when the caller does not say (Redis's XAUTOCLAIM COUNT). */
  readonly claimCountDefault: number;
  /** Sequences one ack, nack, extend or term names at most. */
  readonly settleSeqsMax: number;
  /** Messages in flight per group at most (a group's maxAckPending may not exceed it). */
  readonly ackPendingMax: number;
  /** Messages one batch append holds at most. */
  readonly batchMessagesMax: number;
  /** Bytes (payloads, keys and headers) one batch append holds at most. */
  readonly batchBytesMax: number;
  /** Server-sent event connections per node at most. */
  readonly sseConnectionsMax: number;
  /** Sweep entries one call of `sweepIfDue` proposes at most, one after another. */
  readonly sweepEntriesMax: number;
}

/**
 * Defaults: 1 MiB messages, pages of 100 messages (at most 1,000 or 4 MiB), waits up to 30 s (a
 * follower's 15 s), fetches of 1,000, batch appends of 1,000 messages and 1 MiB.
 */
export const defaultStreamLimits: StreamLimits = {
  messageBytesMax: 1024 * 1024,
  headersMax: 64,
  readLimitMax: 1000,
  readPageDefault: 100,
  readStreamsMax: 256,
  followWaitMs: 15_000,
  readBytesMax: 4 * 1024 * 1024,
  waitMsMax: 30_000,
  fetchMax: 1000,
  claimCountDefault: 100,
  settleSeqsMax: 1000,
  ackPendingMax: 10_000,
  batchMessagesMax: 1000,
  batchBytesMax: 1024 * 1024,
  sseConnectionsMax: 256,
  sweepEntriesMax: 16,
};

/** Stream settings as a client gives them; omitted ones take defaults (or, in an update, stay). */
export interface StreamCreateOptions {
  readonly maxMessages?: number;
  readonly maxBytes?: number;
  readonly maxAgeMs?: number;
  readonly discard?: "old" | "new";
  readonly messageBytesMax?: number;
  readonly dedupeWindowMs?: number;
}

/** A message handed to a consumer, with how often it was delivered to the group, this time included. */
export interface DeliveredMessage extends StreamMessage {
  readonly deliveries: number;
}

/** How to fetch. */
export interface FetchOptions {
  /** Messages at most (default 1). */
  readonly max?: number;
  /** Wait up to this long for a message when none is available. */
  readonly waitMs?: number;
  /** Stops a wait early (the client went away). */
  readonly signal?: AbortSignal;
  /** A retry with the same key gets the first fetch's messages instead of more. */
  readonly idempotencyKey?: string;
  /**
   * Sequences to acknowledge before fetching (a consumer's previous batch): proposed in the same
   * turn as the fetch, so both ride in one entry, one replication round instead of two. Empty:
   * nothing to acknowledge.
   */
  readonly ack?: readonly number[];
}

/** What a fetch answers: the messages handed out, and what its `ack` did, when it had one. */
export interface FetchAnswer {
  readonly messages: DeliveredMessage[];
  readonly duplicate: boolean;
  /** The outcome of the fetch's `ack` (as {@link StreamService.settle} answers it). */
  readonly acked?: { readonly settled: readonly number[]; readonly notPending: readonly number[] };
}

/** A stream as reported to clients. */
export interface StreamInfo {
  readonly name: string;
  readonly config: StreamConfig;
  readonly createdMs: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly messages: number;
  readonly bytes: number;
  readonly groups: readonly string[];
  /** The id of the newest message ever appended (`0-0` before the first), deleted or not. */
  readonly lastId: string;
  /** The largest id deleted through Redis's XDEL, or set by XSETID (`0-0`: none). */
  readonly maxDeletedId: string;
  /** Redis's entries-added: `lastSeq`, unless XSETID ENTRIESADDED set it. */
  readonly entriesAdded: number;
}

/** A Redis stream id's two parts, `<ms>-<n>`. */
export interface StreamIdParts {
  readonly ms: number;
  readonly n: number;
}

/** A stream's size and its groups' progress, for metrics ({@link StreamService.localSummary}). */
export interface StreamSummary {
  readonly name: string;
  readonly messages: number;
  readonly bytes: number;
  readonly groups: readonly {
    readonly name: string;
    readonly backlog: number;
    readonly pending: number;
    readonly deadLettered: number;
  }[];
}

/** A consumer group as reported to clients. */
export interface GroupInfo {
  readonly name: string;
  readonly stream: string;
  readonly config: GroupConfig;
  readonly createdMs: number;
  /** The next sequence never delivered to the group. */
  readonly nextSeq: number;
  /** Every sequence at or below this is settled (acknowledged, terminated, dead-lettered or gone). */
  readonly ackFloor: number;
  /** Messages in flight. */
  readonly pending: number;
  /** Messages the group has not seen yet. */
  readonly backlog: number;
  /** Deliveries, redeliveries included (first deliveries: `delivered - redelivered`). */
  readonly delivered: number;
  /** Deliveries of a message the group had delivered before (deadline passed, nacked, claimed). */
  readonly redelivered: number;
  readonly acked: number;
  readonly deadLettered: number;
  /** Dead letters the dead-letter stream refused (it was configured with limits), now gone. */
  readonly deadLettersLost: number;
  /** Every consumer the group knows or that holds messages, by name. */
  readonly consumers: Readonly<Record<string, GroupConsumerInfo>>;
  /** The id of the newest held message before `nextSeq` (`0-0` if none): Redis's last-delivered-id. */
  readonly lastDeliveredId: string;
}

/** One consumer in a group's description. */
export interface GroupConsumerInfo {
  /** Messages it holds in flight. */
  readonly pending: number;
  /** Of those, how many are past their ack deadline. */
  readonly overdue: number;
  /** Deliveries it was handed, redeliveries included. */
  readonly delivered: number;
  /** Of those, deliveries of a message the group had delivered before. */
  readonly redelivered: number;
}

/**
 * A consumer of a group: how many messages it holds in flight, and the leader times it was last
 * seen and last handed a message (0: never).
 */
export interface ConsumerInfo {
  readonly name: string;
  readonly pending: number;
  readonly seenMs: number;
  readonly activeMs: number;
}

/** A message in flight for a group, as XPENDING lists it. */
export interface PendingEntry {
  readonly seq: number;
  readonly id: string;
  readonly consumer: string;
  readonly deliveries: number;
  /** Milliseconds since its last delivery, by the group's clock. */
  readonly idleMs: number;
  /** Leader time of its last delivery (or claim). */
  readonly deliveredAtMs: number;
}

/** A message to append. */
export interface AppendInput {
  readonly payload: Uint8Array;
  readonly headers?: readonly Header[];
  readonly key?: string;
  readonly msgId?: string;
  readonly expectedLastSeq?: number;
  /**
   * Creates the stream with these settings (defaults for those left out) when it does not exist,
   * in the same replicated write as the append; an existing stream keeps its settings.
   */
  readonly createIfMissing?: StreamCreateOptions;
  /**
   * The message's id `<ms>-<n>` (`n` left out: the next free one in `ms`), which must be above the
   * stream's last id (ERR_CONFLICT otherwise); by default the leader's clock gives it.
   */
  readonly id?: GivenId;
  /** Trims the stream from its oldest end after the append, in the same write (Redis XADD MAXLEN / MINID). */
  readonly trim?: StreamTrim;
}

/** One message of a batch append: an append's own fields. */
export type BatchAppendInput = Pick<AppendInput, "payload" | "headers" | "key" | "msgId" | "expectedLastSeq">;

/** What one message of a batch append answers: its sequence and id, or why it was refused. */
export type BatchAppendResult =
  | { readonly ok: true; readonly seq: number; readonly id: string; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: CairnError };

/** Where and how much to read. */
export interface ReadQuery {
  /** First sequence to read (default: the stream's first). */
  readonly from?: number;
  /** Read from the first message appended at or after this leader time instead. */
  readonly fromTimeMs?: number;
  /** Read from the first message with this id or a later one instead: `<ms>-<n>`, or `<ms>` for `<ms>-0`. */
  readonly fromId?: string;
  /** Last sequence to read (inclusive; default: to the end). */
  readonly to?: number;
  /** Read up to the last message with this id or an earlier one instead: `<ms>-<n>`, or `<ms>` for any n. */
  readonly toId?: string;
  /**
   * Read newest first, from the end of the range down (Redis XREVRANGE); `next` is then where to
   * continue downward, 0 once the range is read. Does not wait.
   */
  readonly reverse?: boolean;
  /** Messages at most (default `readPageDefault`; more than `readLimitMax` reads that many). */
  readonly limit?: number;
  /** Wait up to this long for a message when there is none yet. */
  readonly waitMs?: number;
  readonly consistency?: Consistency;
  /** Stops a wait early (the client went away). */
  readonly signal?: AbortSignal;
}

/** A page of a read; `next` is where to continue. A stale page says how far behind it may be. */
export interface ReadResult extends MessagePage {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly staleness?: Staleness;
}

/** Where {@link StreamService.readMany} reads one stream from; at most one of the starting points. */
export interface StreamCursor {
  readonly name: string;
  /** From this sequence on. */
  readonly from?: number;
  /** After the message with this id (`<ms>-<n>`; `<ms>` for after every id of that millisecond). */
  readonly afterId?: string;
  /** Only messages appended after the call. */
  readonly onlyNew?: boolean;
}

/** Settings of a new consumer group. */
export interface GroupCreateOptions {
  readonly startAt?: StartAt;
  readonly ackWaitMs?: number;
  readonly maxDeliveries?: number;
  readonly deadLetterStream?: string;
  readonly maxAckPending?: number;
}

const STREAM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,255}$/;
const GROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
const CONSUMER_NAME = /^[\x21-\x7e]{1,128}$/;

/** Whether `name` may name a stream. */
export function isStreamName(name: string): boolean {
  return STREAM_NAME.test(name);
}

/**
 * The ack wait that means "no deadline" (100 years): a message a consumer holds stays with it until
 * acknowledged or claimed, as in a Redis consumer group. Accepted beside the usual range.
 */
export const ackWaitNever = 100 * 365 * 24 * 3600 * 1000;

function checkName(kind: string, name: string, rule: RegExp): void {
  if (!rule.test(name)) {
    throw new CairnError(
      "ERR_BAD_REQUEST",
      `${kind} name ${JSON.stringify(name)} is invalid: ${rule === CONSUMER_NAME ? "1 to 128 printable ASCII characters" : `letters, digits, _ . - : (not first), at most ${rule === STREAM_NAME ? 256 : 64} characters`}`,
    );
  }
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CairnError("ERR_BAD_REQUEST", `${name} must be an integer from ${min} to ${max}`);
  }
}

/** The streams and consumer-groups service. */
export class StreamService {
  readonly #log: ReplicationPort;
  readonly #notifier: ApplyNotifier;
  readonly #limits: StreamLimits;
  /** The node's event streams open and whether a sweep runs: one count for every write concern's view. */
  #gates = { sseConnections: 0, sweeping: false };
  /** This service under each write concern, shared by all of them ("majority": the one built). */
  #views: Map<WriteConcern, StreamService>;

  /**
   * Creates the service; `notifier` must be the one the state machine's apply path notifies. Limits
   * not given take their defaults.
   */
  constructor(log: ReplicationPort, notifier: ApplyNotifier, limits: Partial<StreamLimits> = {}) {
    this.#log = log;
    this.#notifier = notifier;
    this.#limits = { ...defaultStreamLimits, ...limits };
    this.#views = new Map([["majority", this]]);
  }

  /** This service with its writes acknowledged under `writeConcern` (reads are the same). */
  withWriteConcern(writeConcern: WriteConcern): StreamService {
    let view = this.#views.get(writeConcern);
    if (view === undefined) {
      const base = this.#views.get("majority") ?? this;
      view = new StreamService(withWriteConcern(base.#log, writeConcern), this.#notifier, this.#limits);
      view.#gates = this.#gates;
      view.#views = this.#views;
      this.#views.set(writeConcern, view);
    }
    return view;
  }

  /** The limits in force. */
  get limits(): StreamLimits {
    return this.#limits;
  }

  /** Creates a stream; creating one that exists with the same settings is a no-op (`created: false`). */
  async create(
    name: string,
    options: StreamCreateOptions = {},
    idempotencyKey?: string,
  ): Promise<{ created: boolean; stream: StreamInfo; duplicate: boolean }> {
    checkName("stream", name, STREAM_NAME);
    const config = this.#configOf(options);
    const { result, duplicate } = await this.#propose({ type: "create", name, config }, idempotencyKey);
    const stream = await this.info(name);
    return { created: result.created, stream, duplicate };
  }

  /**
   * Changes some of a stream's settings; the others stay. A lowered limit drops the oldest
   * messages over it at once (up to the state machine's per-entry bound; sweeps drop the rest).
   * `updated` is false when the settings were already as asked.
   */
  async update(
    name: string,
    changes: StreamCreateOptions,
    idempotencyKey?: string,
  ): Promise<{ updated: boolean; stream: StreamInfo; duplicate: boolean }> {
    checkName("stream", name, STREAM_NAME);
    this.#checkSettings(changes);
    if (Object.values(changes).every((value) => value === undefined)) {
      throw new CairnError("ERR_BAD_REQUEST", "give at least one setting to change");
    }
    const { result, duplicate } = await this.#propose({ type: "update", name, changes }, idempotencyKey);
    return { updated: result.updated, stream: await this.info(name), duplicate };
  }

  /** Deletes a stream and its groups; `deleted` says whether it existed. */
  async delete(name: string, idempotencyKey?: string): Promise<{ deleted: boolean; duplicate: boolean }> {
    checkName("stream", name, STREAM_NAME);
    const { result, duplicate } = await this.#propose({ type: "delete", name }, idempotencyKey);
    return { deleted: result.deleted, duplicate };
  }

  /**
   * Deletes single messages by sequence; `deleted` lists those that were held. Sequences are never
   * reused, and the groups' in-flight records of deleted messages are dropped.
   */
  async deleteMessages(
    name: string,
    seqs: readonly number[],
    idempotencyKey?: string,
    options: { readonly keepPending?: boolean } = {},
  ): Promise<{ deleted: readonly number[]; duplicate: boolean }> {
    const command = this.deleteMessagesCommand(name, seqs, options);
    const { result, duplicate } = await this.#propose(command, idempotencyKey);
    return { deleted: result.deleted, duplicate };
  }

  /**
   * The command {@link deleteMessages} proposes, checked as it checks it: for a transaction step.
   * `keepPending` (Redis XDEL) leaves the deleted messages in flight in their groups, by id, until
   * acknowledged or claimed; otherwise the groups forget them.
   */
  deleteMessagesCommand(
    name: string,
    seqs: readonly number[],
    options: { readonly keepPending?: boolean } = {},
  ): Extract<StreamCommand, { type: "message-delete" }> {
    checkName("stream", name, STREAM_NAME);
    this.#checkSeqs(seqs);
    return {
      type: "message-delete",
      name,
      seqs,
      ...(options.keepPending === true ? { keepPending: true } : {}),
    };
  }

  /** Reads one message by sequence; ERR_NOT_FOUND if the stream does not hold it. */
  async message(
    name: string,
    seq: number,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<StreamMessage>> {
    checkName("stream", name, STREAM_NAME);
    this.#allowRead(name);
    checkInteger("seq", seq, 1, Number.MAX_SAFE_INTEGER);
    return this.#read(consistency, (state) => {
      const meta = requireStream(state, name);
      const message = getMessage(state, meta, seq);
      if (message === undefined) {
        throw new CairnError("ERR_NOT_FOUND", `stream ${name} holds no message ${seq}`, {
          firstSeq: meta.firstSeq,
          lastSeq: meta.lastSeq,
        });
      }
      return message;
    });
  }

  /** Lists streams in name order. */
  async list(consistency: Consistency = "linearizable"): Promise<WithStaleness<{ streams: StreamInfo[] }>> {
    // Listing names every stream: it takes read on all of them (the pattern `*`).
    this.#allowRead("*");
    return this.#read(consistency, (state) => ({
      streams: listStreams(state, 10_000).map((meta) => streamInfo(state, meta)),
    }));
  }

  /**
   * Stream names in name order after `after`, at most `limit`, and how many streams exist: the
   * streams of Redis's keyspace (KEYS, SCAN, DBSIZE).
   */
  async names(
    limit: number,
    after?: string,
    consistency: Consistency = "linearizable",
  ): Promise<{ names: string[]; count: number }> {
    return this.#read(consistency, (state) => ({
      names: listStreams(state, limit, after).map((meta) => meta.name),
      count: streamCount(state),
    }));
  }

  /**
   * Sets a stream's last id (Redis XSETID): at least its newest message's and the largest deleted
   * id (ERR_CONFLICT with Redis's text otherwise); `entriesAdded` (at least the messages held) and
   * `maxDeletedId` replace what Redis's XINFO reports. ERR_NOT_FOUND without the stream.
   */
  async setId(
    name: string,
    lastId: StreamIdParts,
    options: { readonly entriesAdded?: number; readonly maxDeletedId?: StreamIdParts } = {},
  ): Promise<void> {
    await this.#propose(this.setIdCommand(name, lastId, options), undefined);
  }

  /** The command {@link setId} proposes, checked as it checks it: for a transaction step. */
  setIdCommand(
    name: string,
    lastId: StreamIdParts,
    options: { readonly entriesAdded?: number; readonly maxDeletedId?: StreamIdParts } = {},
  ): Extract<StreamCommand, { type: "set-id" }> {
    checkName("stream", name, STREAM_NAME);
    for (const part of [lastId.ms, lastId.n, options.maxDeletedId?.ms, options.maxDeletedId?.n]) {
      checkInteger("id", part, 0, Number.MAX_SAFE_INTEGER);
    }
    checkInteger("entriesAdded", options.entriesAdded, 0, Number.MAX_SAFE_INTEGER);
    return {
      type: "set-id",
      name,
      lastIdMs: lastId.ms,
      lastIdN: lastId.n,
      ...(options.entriesAdded !== undefined ? { entriesAdded: options.entriesAdded } : {}),
      ...(options.maxDeletedId !== undefined ? { maxDeletedId: options.maxDeletedId } : {}),
    };
  }

  /** Describes one stream; ERR_NOT_FOUND if it does not exist. */
  async info(name: string, consistency: Consistency = "linearizable"): Promise<WithStaleness<StreamInfo>> {
    checkName("stream", name, STREAM_NAME);
    this.#allowRead(name);
    return this.#read(consistency, (state) => streamInfo(state, requireStream(state, name)));
  }

  /**
   * The command {@link append} proposes, checked as it checks it: for a step of a transaction
   * (KvService.transaction), where the append applies atomically with the other steps.
   */
  appendCommand(name: string, input: AppendInput): Extract<StreamCommand, { type: "append" }> {
    checkName("stream", name, STREAM_NAME);
    const headers = input.headers ?? [];
    if (headers.length > this.#limits.headersMax) {
      throw new CairnError("ERR_BAD_REQUEST", `at most ${this.#limits.headersMax} headers`);
    }
    if (input.payload.length > this.#limits.messageBytesMax) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `message is ${input.payload.length} bytes; the limit is ${this.#limits.messageBytesMax}`,
        { limit: this.#limits.messageBytesMax },
      );
    }
    // Message ids become part of state store keys, whose length is bounded: limit them in bytes.
    const msgIdBytes = input.msgId === undefined ? 1 : new TextEncoder().encode(input.msgId).length;
    if (msgIdBytes === 0 || msgIdBytes > 256) {
      throw new CairnError("ERR_BAD_REQUEST", "message id must be 1 to 256 bytes");
    }
    checkInteger("expectedLastSeq", input.expectedLastSeq, 0, Number.MAX_SAFE_INTEGER);
    if (input.id !== undefined) {
      checkInteger("id ms", input.id.ms, 0, Number.MAX_SAFE_INTEGER);
      checkInteger("id n", input.id.n, 0, Number.MAX_SAFE_INTEGER);
    }
    if (input.trim !== undefined) checkTrim(input.trim);
    return {
      type: "append",
      name,
      payload: input.payload,
      headers,
      ...(input.key !== undefined ? { key: input.key } : {}),
      ...(input.msgId !== undefined ? { msgId: input.msgId } : {}),
      ...(input.expectedLastSeq !== undefined ? { expectedLastSeq: input.expectedLastSeq } : {}),
      ...(input.createIfMissing !== undefined ? { createWith: this.#configOf(input.createIfMissing) } : {}),
      ...(input.id !== undefined ? { id: input.id } : {}),
      ...(input.trim !== undefined ? { trim: input.trim } : {}),
    };
  }

  /**
   * Appends a message. A repeated `msgId` within the stream's window answers the original sequence
   * with `duplicate: true`; a failed `expectedLastSeq` is ERR_CONFLICT with `currentLastSeq`. With
   * `createIfMissing`, a missing stream is created by the same write.
   */
  async append(
    name: string,
    input: AppendInput,
    idempotencyKey?: string,
  ): Promise<{ seq: number; id: string; duplicate: boolean }> {
    const { result, duplicate } = await this.#propose(this.appendCommand(name, input), idempotencyKey);
    // An exact trim the append's entry could not finish (the state machine's per-entry bound) goes
    // on in entries of its own.
    const trim = input.trim;
    if (trim?.exact === true && this.#log.readStale((state) => trimLeft(state, name, trim)).value) {
      await this.trim(name, trim);
    }
    return { seq: result.seq, id: result.id, duplicate: result.duplicate || duplicate };
  }

  /**
   * Appends several messages with one proposal (one Raft entry), in order. Each keeps its own
   * message id for deduplication (within the batch too) and gets its own sequence, or its own
   * refusal. With `atomic`, one refusal refuses the batch with that message's code and nothing
   * is appended. More than `batchMessagesMax` messages or `batchBytesMax` bytes is ERR_TOO_LARGE.
   */
  async appendBatch(
    name: string,
    inputs: readonly BatchAppendInput[],
    options: { readonly atomic?: boolean } = {},
    idempotencyKey?: string,
  ): Promise<{ results: readonly BatchAppendResult[]; duplicate: boolean }> {
    const { result, duplicate } = await this.#propose(
      this.appendBatchCommand(name, inputs, options),
      idempotencyKey,
    );
    const results = result.results.map(
      (outcome): BatchAppendResult =>
        outcome.ok
          ? { ok: true, seq: outcome.seq, id: outcome.id, duplicate: outcome.duplicate || duplicate }
          : { ok: false, error: refusalError(outcome) },
    );
    return { results, duplicate };
  }

  /** The command {@link appendBatch} proposes, each message checked as {@link append} checks it. */
  appendBatchCommand(
    name: string,
    inputs: readonly BatchAppendInput[],
    options: { readonly atomic?: boolean } = {},
  ): Extract<StreamCommand, { type: "append-batch" }> {
    const { batchMessagesMax, batchBytesMax } = this.#limits;
    if (inputs.length === 0) throw new CairnError("ERR_BAD_REQUEST", "a batch holds at least one message");
    if (inputs.length > batchMessagesMax) {
      throw new CairnError("ERR_TOO_LARGE", `a batch holds at most ${batchMessagesMax} messages`, {
        limit: batchMessagesMax,
      });
    }
    let bytes = 0;
    const messages = inputs.map((input) => {
      const message = batchMessageOf(this.appendCommand(name, input));
      bytes += messageBytes(message.payload, message.headers, message.key);
      return message;
    });
    if (bytes > batchBytesMax) {
      throw new CairnError("ERR_TOO_LARGE", `a batch is ${bytes} bytes; the limit is ${batchBytesMax}`, {
        limit: batchBytesMax,
      });
    }
    return { type: "append-batch", name, messages, ...(options.atomic === true ? { atomic: true } : {}) };
  }

  /**
   * Trims a stream from its oldest end (Redis XTRIM): down to a number of messages, or to those
   * whose id is at least a given one; answers how many messages went. An exact trim larger than
   * the state machine's per-entry bound takes several entries.
   */
  async trim(name: string, trim: StreamTrim, idempotencyKey?: string): Promise<{ trimmed: number }> {
    const command = this.trimCommand(name, trim);
    let trimmed = 0;
    for (;;) {
      const { result } = await this.#propose(command, idempotencyKey);
      trimmed += result.trimmed;
      if (!result.more) return { trimmed };
    }
  }

  /**
   * The command {@link trim} proposes, checked as it checks it: for a transaction step, where one
   * entry removes at most the state machine's per-entry bound (10,000 messages).
   */
  trimCommand(name: string, trim: StreamTrim): Extract<StreamCommand, { type: "trim" }> {
    checkName("stream", name, STREAM_NAME);
    checkTrim(trim);
    return { type: "trim", name, trim };
  }

  /**
   * Reads a page of messages from a sequence or a time, up to `to` if given. With `waitMs`, an empty
   * answer waits for a message to arrive (or the wait to end) before answering, unless the range
   * up to `to` is already read.
   */
  async read(name: string, query: ReadQuery): Promise<ReadResult> {
    checkName("stream", name, STREAM_NAME);
    this.#allowRead(name);
    checkInteger("limit", query.limit, 1, Number.MAX_SAFE_INTEGER);
    const limit = Math.min(query.limit ?? this.#limits.readPageDefault, this.#limits.readLimitMax);
    checkInteger("waitMs", query.waitMs, 0, this.#limits.waitMsMax);
    checkInteger("from", query.from, 0, Number.MAX_SAFE_INTEGER);
    checkInteger("fromTimeMs", query.fromTimeMs, 0, Number.MAX_SAFE_INTEGER);
    checkInteger("to", query.to, 0, Number.MAX_SAFE_INTEGER);
    const fromId = query.fromId === undefined ? undefined : parseMessageId("fromId", query.fromId, 0);
    const toId =
      query.toId === undefined ? undefined : parseMessageId("toId", query.toId, Number.MAX_SAFE_INTEGER);
    const starts = [query.from, query.fromTimeMs, query.fromId].filter((v) => v !== undefined).length;
    if (starts > 1) throw new CairnError("ERR_BAD_REQUEST", "give one of from, fromTimeMs and fromId");
    if (query.to !== undefined && query.toId !== undefined) {
      throw new CairnError("ERR_BAD_REQUEST", "give to or toId, not both");
    }
    if (query.reverse === true && query.waitMs !== undefined && query.waitMs > 0) {
      throw new CairnError("ERR_BAD_REQUEST", "a reverse read does not wait");
    }
    const consistency = query.consistency ?? "linearizable";
    const deadline = this.#notifier.monotonicMs() + (query.waitMs ?? 0);
    let from = query.from;
    for (;;) {
      const version = this.#notifier.version;
      const page = await this.#read(consistency, (state) => {
        const meta = requireStream(state, name);
        const start =
          from ??
          (query.fromTimeMs !== undefined
            ? seqAtTime(state, meta, query.fromTimeMs)
            : fromId !== undefined
              ? seqAtId(state, meta, fromId)
              : meta.firstSeq);
        // The last message at or before toId: the one before the first after it.
        const end = toId !== undefined ? seqAtId(state, meta, { ms: toId.ms, n: toId.n + 1 }) - 1 : query.to;
        const read = query.reverse === true ? readMessagesReverse : readMessages;
        return {
          ...read(state, meta, start, limit, this.#limits.readBytesMax, end),
          firstSeq: meta.firstSeq,
          lastSeq: meta.lastSeq,
          end,
        };
      });
      if (query.reverse === true) return withoutEnd(page);
      const rangeDone = page.end !== undefined && page.next > page.end;
      if (
        page.messages.length > 0 ||
        rangeDone ||
        this.#notifier.monotonicMs() >= deadline ||
        query.signal?.aborted === true
      ) {
        return withoutEnd(page);
      }
      // Nothing yet: keep the position and wait for an applied batch that reaches it.
      from = page.next;
      await this.#waitFor([name], version, deadline, query.signal, (state) => {
        const meta = getStreamMeta(state, name);
        return meta === undefined || meta.lastSeq >= page.next;
      });
    }
  }

  /**
   * Reads several streams at once, waiting up to `waitMs` until one of them has a message (Redis
   * XREAD BLOCK over several streams). Each cursor starts at a sequence (`from`), after a message id
   * (`afterId`, exclusive as XREAD's), at the stream's end as of this call (`onlyNew`, XREAD's `$`),
   * or at its first message. A stream that does not exist yet reads as empty, and its first
   * messages count once it is created. Answers the streams that have messages, in the order asked,
   * each with up to `limit` of them and where to continue.
   */
  async readMany(
    cursors: readonly StreamCursor[],
    options: {
      readonly limit?: number;
      readonly waitMs?: number;
      readonly signal?: AbortSignal;
      readonly consistency?: Consistency;
    } = {},
  ): Promise<{ name: string; messages: readonly StreamMessage[]; next: number }[]> {
    if (cursors.length === 0 || cursors.length > this.#limits.readStreamsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `give 1 to ${this.#limits.readStreamsMax} streams`);
    }
    for (const cursor of cursors) {
      checkName("stream", cursor.name, STREAM_NAME);
      this.#allowRead(cursor.name);
      checkInteger("from", cursor.from, 0, Number.MAX_SAFE_INTEGER);
      const starts = [cursor.from, cursor.afterId, cursor.onlyNew === true ? true : undefined];
      if (starts.filter((v) => v !== undefined).length > 1) {
        throw new CairnError("ERR_BAD_REQUEST", "give one of from, afterId and onlyNew per stream");
      }
    }
    checkInteger("limit", options.limit, 1, Number.MAX_SAFE_INTEGER);
    checkInteger("waitMs", options.waitMs, 0, this.#limits.waitMsMax);
    const limit = Math.min(options.limit ?? this.#limits.readPageDefault, this.#limits.readLimitMax);
    const afterIds = cursors.map((c) =>
      c.afterId === undefined ? undefined : parseMessageId("afterId", c.afterId, Number.MAX_SAFE_INTEGER),
    );
    const consistency = options.consistency ?? "linearizable";
    const deadline = this.#notifier.monotonicMs() + (options.waitMs ?? 0);
    const names = cursors.map((c) => c.name);
    // Where each stream is read from, fixed on the first read, so `onlyNew` means new since the call.
    let positions: number[] | undefined;
    for (;;) {
      const version = this.#notifier.version;
      const pages = await this.#read(consistency, (state) => {
        positions ??= cursors.map((cursor, i) => {
          const meta = getStreamMeta(state, cursor.name);
          const afterId = afterIds[i];
          if (cursor.from !== undefined) return cursor.from;
          if (meta === undefined) return 1;
          if (cursor.onlyNew === true) return meta.lastSeq + 1;
          if (afterId !== undefined) return seqAtId(state, meta, { ms: afterId.ms, n: afterId.n + 1 });
          return meta.firstSeq;
        });
        const from = positions;
        return cursors.map((cursor, i) => {
          const meta = getStreamMeta(state, cursor.name);
          const at = from[i] ?? 1;
          if (meta === undefined) return { name: cursor.name, messages: [], next: at };
          return { name: cursor.name, ...readMessages(state, meta, at, limit, this.#limits.readBytesMax) };
        });
      });
      const found = pages.filter((page) => page.messages.length > 0);
      if (found.length > 0 || this.#notifier.monotonicMs() >= deadline || options.signal?.aborted === true) {
        return found;
      }
      positions = pages.map((page) => page.next);
      const waitingAt = positions;
      await this.#waitFor(names, version, deadline, options.signal, (state) =>
        names.some((name, i) => (getStreamMeta(state, name)?.lastSeq ?? 0) >= (waitingAt[i] ?? 1)),
      );
    }
  }

  /**
   * Follows a stream from sequence `from` (default: its first message) until `signal` aborts: yields
   * each page of new messages as it is applied, and an empty page after each `followWaitMs` without
   * one. ERR_NOT_FOUND, before the first page, when the stream does not exist.
   */
  async *follow(name: string, from: number | undefined, signal: AbortSignal): AsyncGenerator<ReadResult> {
    let next = from ?? (await this.info(name)).firstSeq;
    while (!signal.aborted) {
      const page = await this.read(name, { from: next, waitMs: this.#limits.followWaitMs, signal });
      next = page.next;
      yield page;
    }
  }

  /** Creates a consumer group; creating one that exists with the same settings is a no-op. */
  async createGroup(
    stream: string,
    group: string,
    options: GroupCreateOptions = {},
    idempotencyKey?: string,
  ): Promise<{ created: boolean; group: GroupInfo; duplicate: boolean }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    this.#checkGroupSettings(options);
    const deadLetterStream = options.deadLetterStream ?? `${stream}.${group}.dlq`;
    if (options.deadLetterStream === undefined && !STREAM_NAME.test(deadLetterStream)) {
      throw new CairnError(
        "ERR_BAD_REQUEST",
        `the default dead-letter stream name ${deadLetterStream} is too long; give deadLetterStream`,
      );
    }
    checkName("dead-letter stream", deadLetterStream, STREAM_NAME);
    if (deadLetterStream === stream) {
      throw new CairnError("ERR_BAD_REQUEST", "the dead-letter stream must differ from the stream");
    }
    const startAt = options.startAt ?? { kind: "first" };
    if (startAt.kind === "seq") checkInteger("startAt.seq", startAt.seq, 0, Number.MAX_SAFE_INTEGER);
    if (startAt.kind === "time") checkInteger("startAt.timeMs", startAt.timeMs, 0, Number.MAX_SAFE_INTEGER);
    const { result, duplicate } = await this.#propose(
      {
        type: "group-create",
        stream,
        group,
        startAt,
        config: {
          ackWaitMs: options.ackWaitMs ?? 30_000,
          maxDeliveries: options.maxDeliveries ?? 5,
          deadLetterStream,
          maxAckPending: options.maxAckPending ?? Math.min(1000, this.#limits.ackPendingMax),
        },
      },
      idempotencyKey,
    );
    return { created: result.created, group: await this.groupInfo(stream, group), duplicate };
  }

  /**
   * Changes some of a group's settings (ack wait, delivery limit, messages in flight at most).
   * Messages in flight keep their deadlines; a lowered delivery limit dead-letters those already
   * past it when their deadline passes; a lowered in-flight limit holds back new deliveries.
   */
  async updateGroup(
    stream: string,
    group: string,
    changes: GroupConfigChanges,
    idempotencyKey?: string,
  ): Promise<{ updated: boolean; group: GroupInfo; duplicate: boolean }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    this.#checkGroupSettings(changes);
    if (Object.values(changes).every((value) => value === undefined)) {
      throw new CairnError("ERR_BAD_REQUEST", "give at least one setting to change");
    }
    const { result, duplicate } = await this.#propose(
      { type: "group-update", stream, group, changes },
      idempotencyKey,
    );
    return { updated: result.updated, group: await this.groupInfo(stream, group), duplicate };
  }

  #checkGroupSettings(settings: GroupConfigChanges): void {
    if (settings.ackWaitMs !== ackWaitNever)
      checkInteger("ackWaitMs", settings.ackWaitMs, 1, 24 * 3600 * 1000);
    checkInteger("maxDeliveries", settings.maxDeliveries, 0, 1_000_000);
    checkInteger("maxAckPending", settings.maxAckPending, 1, this.#limits.ackPendingMax);
  }

  /** Deletes a consumer group; `deleted` says whether it existed. */
  async deleteGroup(
    stream: string,
    group: string,
    idempotencyKey?: string,
  ): Promise<{ deleted: boolean; duplicate: boolean }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    const { result, duplicate } = await this.#propose(
      { type: "group-delete", stream, group },
      idempotencyKey,
    );
    return { deleted: result.deleted, duplicate };
  }

  /**
   * Moves a group's position: it hands out next the first message at or after `nextSeq` (Redis
   * XGROUP SETID). Messages in flight stay where they are.
   */
  async setGroupPosition(stream: string, group: string, nextSeq: number): Promise<void> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    checkInteger("nextSeq", nextSeq, 0, Number.MAX_SAFE_INTEGER);
    await this.#propose({ type: "group-position", stream, group, nextSeq }, undefined);
  }

  /** Makes a consumer known to a group (Redis XGROUP CREATECONSUMER); `created` is false if it was. */
  async createConsumer(stream: string, group: string, consumer: string): Promise<{ created: boolean }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    checkName("consumer", consumer, CONSUMER_NAME);
    const { result } = await this.#propose({ type: "consumer-create", stream, group, consumer }, undefined);
    return { created: result.created };
  }

  /**
   * Forgets a consumer and the messages it holds, which are then neither in flight nor redelivered
   * (Redis XGROUP DELCONSUMER); answers how many it held.
   */
  async deleteConsumer(stream: string, group: string, consumer: string): Promise<{ pending: number }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    checkName("consumer", consumer, CONSUMER_NAME);
    const { result } = await this.#propose({ type: "consumer-delete", stream, group, consumer }, undefined);
    return { pending: result.pending };
  }

  /**
   * Lists a group's messages in flight in sequence order (Redis XPENDING's extended form): from
   * `fromSeq` to `toSeq`, at most `count`, only those `consumer` holds and those idle at least
   * `minIdleMs` when given. Messages retention removed while in flight are left out.
   */
  async pending(
    stream: string,
    group: string,
    query: {
      readonly fromSeq?: number;
      readonly toSeq?: number;
      readonly count: number;
      readonly consumer?: string;
      readonly minIdleMs?: number;
    },
    consistency: Consistency = "linearizable",
  ): Promise<{ entries: PendingEntry[] }> {
    checkName("stream", stream, STREAM_NAME);
    this.#allowRead(stream);
    checkName("group", group, GROUP_NAME);
    checkInteger("count", query.count, 1, this.#limits.ackPendingMax);
    checkInteger("minIdleMs", query.minIdleMs, 0, Number.MAX_SAFE_INTEGER);
    const from = query.fromSeq ?? 0;
    const to = query.toSeq ?? Number.MAX_SAFE_INTEGER;
    return this.#read(consistency, (state) => {
      const meta = requireStream(state, stream);
      const g = requireGroup(state, meta, group);
      const clockMs = streamsClockMs(state);
      const entries: PendingEntry[] = [];
      // Bounded by what a group holds in flight.
      for (const record of listPending(state, g, Number.MAX_SAFE_INTEGER)) {
        if (entries.length >= query.count || record.seq > to) break;
        if (record.seq < from || (query.consumer !== undefined && record.consumer !== query.consumer))
          continue;
        const deliveredAtMs = deliveredAt(record, g);
        const idleMs = Math.max(0, clockMs - deliveredAtMs);
        if (query.minIdleMs !== undefined && idleMs < query.minIdleMs) continue;
        // A message deleted while in flight (Redis XDEL) stays listed by its id; one trimmed does not.
        const id = getMessage(state, meta, record.seq)?.id ?? record.deletedId;
        if (id === undefined) continue;
        entries.push({
          seq: record.seq,
          id,
          consumer: record.consumer,
          deliveries: record.deliveries,
          idleMs,
          deliveredAtMs,
        });
      }
      return { entries };
    });
  }

  /**
   * Reads many consumer groups at once for one consumer (Redis XREADGROUP with `>` over several
   * streams): hands out up to `max` new messages of each, waiting up to `waitMs` until one of them
   * has any. Answers the streams that handed out messages, in the order asked.
   */
  async fetchMany(
    requests: readonly { readonly stream: string; readonly group: string }[],
    consumer: string,
    options: { readonly max?: number; readonly waitMs?: number; readonly signal?: AbortSignal } = {},
  ): Promise<{ stream: string; messages: DeliveredMessage[] }[]> {
    const { max = 1, waitMs = 0, signal } = options;
    if (requests.length === 0 || requests.length > this.#limits.readStreamsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `give 1 to ${this.#limits.readStreamsMax} streams`);
    }
    for (const { stream, group } of requests) {
      checkName("stream", stream, STREAM_NAME);
      checkName("group", group, GROUP_NAME);
    }
    checkName("consumer", consumer, CONSUMER_NAME);
    checkInteger("max", max, 1, this.#limits.fetchMax);
    checkInteger("waitMs", waitMs, 0, this.#limits.waitMsMax);
    const deadline = this.#notifier.monotonicMs() + waitMs;
    const names = requests.map((r) => r.stream);
    for (;;) {
      const version = this.#notifier.version;
      const found: { stream: string; messages: DeliveredMessage[] }[] = [];
      for (const { stream, group } of requests) {
        // Only groups that have something: an empty fetch is an entry that changes nothing.
        if (found.length > 0 || requests.length === 1 || this.#hasWork(stream, group)) {
          const { result } = await this.#propose({ type: "fetch", stream, group, consumer, max }, undefined);
          if (result.messages.length > 0)
            found.push({ stream, messages: this.#delivered(stream, result.messages) });
        }
      }
      if (found.length > 0 || this.#notifier.monotonicMs() >= deadline || signal?.aborted === true)
        return found;
      await this.#waitFor(
        names,
        version,
        deadline,
        signal,
        (state) =>
          requests.some(({ stream, group }) => groupHasWork(state, stream, group, this.#log.nowMs())),
        250,
      );
    }
  }

  /**
   * The consumers of a group in name order (Redis XINFO CONSUMERS): those it knows (see
   * GroupMeta.consumers) and those holding messages, with how many each holds in flight.
   */
  async consumers(
    stream: string,
    group: string,
    consistency: Consistency = "linearizable",
  ): Promise<{ consumers: ConsumerInfo[] }> {
    checkName("stream", stream, STREAM_NAME);
    this.#allowRead(stream);
    checkName("group", group, GROUP_NAME);
    return this.#read(consistency, (state) => {
      const g = requireGroup(state, requireStream(state, stream), group);
      const byName = new Map<string, { name: string; pending: number; seenMs: number; activeMs: number }>();
      for (const [name, seenMs, activeMs] of g.consumers ?? []) {
        byName.set(name, { name, pending: 0, seenMs, activeMs });
      }
      // Bounded by what a group holds in flight.
      for (const record of listPending(state, g, Number.MAX_SAFE_INTEGER)) {
        if (record.consumer === "") continue;
        const at = deliveredAt(record, g);
        const entry = byName.get(record.consumer) ?? {
          name: record.consumer,
          pending: 0,
          seenMs: at,
          activeMs: at,
        };
        entry.pending++;
        byName.set(record.consumer, entry);
      }
      return {
        consumers: [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      };
    });
  }

  #hasWork(stream: string, group: string): boolean {
    return this.#log.readStale((state) => groupHasWork(state, stream, group, this.#log.nowMs())).value;
  }

  /**
   * This node's local view (stale reads, no permission check: it names counts, not contents) of
   * the first `streamsMax` streams in name order, for metrics: size, and each group's backlog,
   * messages in flight and dead letters.
   */
  localSummary(streamsMax = 1000): StreamSummary[] {
    return readStaleReported(this.#log, (state) =>
      listStreams(state, streamsMax).map((meta) => {
        const info = streamInfo(state, meta);
        return {
          name: info.name,
          messages: info.messages,
          bytes: info.bytes,
          groups: listGroups(state, meta).map((group) => {
            const g = groupInfo(state, meta, group);
            return { name: g.name, backlog: g.backlog, pending: g.pending, deadLettered: g.deadLettered };
          }),
        };
      }),
    ).value;
  }

  /** Describes every consumer group of a stream, in name order. */
  async listGroups(
    stream: string,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<{ groups: GroupInfo[] }>> {
    checkName("stream", stream, STREAM_NAME);
    this.#allowRead(stream);
    return this.#read(consistency, (state) => {
      const meta = requireStream(state, stream);
      return { groups: listGroups(state, meta).map((group) => groupInfo(state, meta, group)) };
    });
  }

  /** Describes a consumer group. */
  async groupInfo(
    stream: string,
    group: string,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<GroupInfo>> {
    checkName("stream", stream, STREAM_NAME);
    this.#allowRead(stream);
    checkName("group", group, GROUP_NAME);
    return this.#read(consistency, (state) => {
      const meta = requireStream(state, stream);
      return groupInfo(state, meta, requireGroup(state, meta, group));
    });
  }

  /**
   * Hands out up to `max` messages to `consumer`: those whose ack deadline passed first, then new
   * ones. A replicated write. With `waitMs`, waits for messages to become available. A retry with
   * the same idempotency key (within its window) answers the first fetch's messages, with the same
   * delivery counts, instead of handing out more; `duplicate` says so. A message deleted since the
   * first fetch is left out of the retry's answer.
   */
  async fetch(
    stream: string,
    group: string,
    consumer: string,
    options: FetchOptions = {},
  ): Promise<FetchAnswer> {
    const { max = 1, waitMs = 0, signal, idempotencyKey, ack = [] } = options;
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    checkName("consumer", consumer, CONSUMER_NAME);
    checkInteger("max", max, 1, this.#limits.fetchMax);
    checkInteger("waitMs", waitMs, 0, this.#limits.waitMsMax);
    const ackCommand = ack.length > 0 ? this.settleCommand(stream, group, "ack", ack) : undefined;
    // Proposed before the fetch in the same turn (nothing awaited in between), so the command
    // batcher puts both in one entry, the ack first: a consumer's round is one replicated write.
    // The ack carries no idempotency key (a fetch's key is the fetch's): acknowledging again is
    // harmless, and a retry hears the sequences it acknowledged before as not pending.
    const acking = ackCommand === undefined ? undefined : this.#propose(ackCommand, undefined);
    const deadline = this.#notifier.monotonicMs() + waitMs;
    let acked: FetchAnswer["acked"];
    for (;;) {
      const version = this.#notifier.version;
      // An empty fetch leaves the idempotency key unused (see streamResultIsRemembered), so each
      // round of the wait may propose with it, and the first round that hands out messages is the
      // one a retry gets back.
      const fetching = this.#propose({ type: "fetch", stream, group, consumer, max }, idempotencyKey);
      if (acked === undefined && acking !== undefined) {
        const [{ result: settled }] = await Promise.all([acking, fetching]);
        acked = { settled: settled.settled, notPending: settled.notPending };
      }
      const { result, duplicate } = await fetching;
      if (
        result.messages.length > 0 ||
        duplicate ||
        this.#notifier.monotonicMs() >= deadline ||
        signal?.aborted === true
      ) {
        return {
          messages: this.#delivered(stream, result.messages),
          duplicate,
          ...(acked !== undefined ? { acked } : {}),
        };
      }
      // Propose again only when local state says something is available: a new message, or an
      // ack deadline that has passed (checked at least every 250 ms, as deadlines need no apply).
      await this.#waitFor(
        [stream],
        version,
        deadline,
        signal,
        (state) => groupHasWork(state, stream, group, this.#log.nowMs()),
        250,
      );
    }
  }

  /**
   * Takes over messages in flight for `group` that have been idle at least `minIdleMs` since their
   * last delivery, for `consumer`, with a fresh ack deadline (Redis XCLAIM with `seqs`, XAUTOCLAIM
   * with `fromSeq`: a scan that claims up to `count`, default 100, and answers where to continue in
   * `next`, 0 at the end). Sequences not in flight are skipped; those whose messages are gone are
   * dropped from the group and listed in `deleted`. `justId` leaves delivery counts alone.
   */
  async claim(
    stream: string,
    group: string,
    consumer: string,
    what:
      | { readonly minIdleMs: number; readonly seqs: readonly number[] }
      | { readonly minIdleMs: number; readonly fromSeq: number; readonly count?: number },
    options: {
      readonly justId?: boolean;
      /** Takes only what `consumer` holds already (Redis XREADGROUP reading its history). */
      readonly ownOnly?: boolean;
      /** The claimed messages count as idle this long (Redis XCLAIM IDLE / TIME). */
      readonly idleMs?: number;
      /** The claimed messages' delivery count (Redis XCLAIM RETRYCOUNT). */
      readonly retryCount?: number;
      /** Named messages held by the stream but not in flight are taken too (Redis XCLAIM FORCE). */
      readonly force?: boolean;
      readonly idempotencyKey?: string;
    } = {},
  ): Promise<{
    messages: DeliveredMessage[];
    deleted: readonly number[];
    deletedIds: readonly string[];
    next: number;
    duplicate: boolean;
  }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    checkName("consumer", consumer, CONSUMER_NAME);
    checkInteger("minIdleMs", what.minIdleMs, 0, Number.MAX_SAFE_INTEGER);
    let target: ClaimTarget;
    if ("seqs" in what) {
      this.#checkSeqs(what.seqs);
      target = { kind: "seqs", seqs: what.seqs };
    } else {
      checkInteger("fromSeq", what.fromSeq, 0, Number.MAX_SAFE_INTEGER);
      checkInteger("count", what.count, 1, this.#limits.fetchMax);
      target = { kind: "scan", fromSeq: what.fromSeq, count: what.count ?? this.#limits.claimCountDefault };
    }
    checkInteger("idleMs", options.idleMs, 0, Number.MAX_SAFE_INTEGER);
    checkInteger("retryCount", options.retryCount, 0, Number.MAX_SAFE_INTEGER);
    const { result, duplicate } = await this.#propose(
      {
        type: "claim",
        stream,
        group,
        consumer,
        minIdleMs: what.minIdleMs,
        target,
        justId: options.justId === true,
        ...(options.ownOnly === true ? { ownOnly: true } : {}),
        ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
        ...(options.retryCount !== undefined ? { retryCount: options.retryCount } : {}),
        ...(options.force === true ? { force: true } : {}),
      },
      options.idempotencyKey,
    );
    return {
      messages: this.#delivered(stream, result.claimed),
      deleted: result.deleted,
      deletedIds: result.deletedIds,
      next: result.next,
      duplicate,
    };
  }

  /**
   * The messages a fetch named, read from local state. The fetch was applied here (this node
   * proposed it), so they are held unless a later entry deleted them.
   */
  #delivered(stream: string, deliveries: readonly Delivery[]): DeliveredMessage[] {
    if (deliveries.length === 0) return [];
    return this.#log.readStale((state) => {
      const meta = getStreamMeta(state, stream);
      const out: DeliveredMessage[] = [];
      if (meta === undefined) return out;
      for (const { seq, deliveries: count } of deliveries) {
        const message = getMessage(state, meta, seq);
        if (message !== undefined) out.push({ ...message, deliveries: count });
      }
      return out;
    }).value;
  }

  /**
   * Acknowledges, nacks (`delayMs` postpones the redelivery), extends or terminates messages.
   * `delayMs` is refused with any action but nack, where it would mean nothing.
   */
  async settle(
    stream: string,
    group: string,
    action: SettleAction,
    seqs: readonly number[],
    options: { readonly delayMs?: number; readonly idempotencyKey?: string } = {},
  ): Promise<{ settled: readonly number[]; notPending: readonly number[]; duplicate: boolean }> {
    const { result, duplicate } = await this.#propose(
      this.settleCommand(stream, group, action, seqs, options.delayMs),
      options.idempotencyKey,
    );
    return { settled: result.settled, notPending: result.notPending, duplicate };
  }

  /** The command {@link settle} proposes, checked as it checks it: for a transaction step. */
  settleCommand(
    stream: string,
    group: string,
    action: SettleAction,
    seqs: readonly number[],
    delayMs?: number,
  ): Extract<StreamCommand, { type: "settle" }> {
    checkName("stream", stream, STREAM_NAME);
    checkName("group", group, GROUP_NAME);
    this.#checkSeqs(seqs);
    checkInteger("delayMs", delayMs, 0, 24 * 3600 * 1000);
    if (delayMs !== undefined && action !== "nack") {
      throw new CairnError("ERR_BAD_REQUEST", `delayMs applies to nack only, not ${action}`);
    }
    return { type: "settle", stream, group, action, seqs, delayMs: delayMs ?? 0 };
  }

  /**
   * Proposes bounded housekeeping entries while any is due by the local clock (deleted streams'
   * data, expired messages and ids, streams over a lowered limit), at most `sweepEntriesMax` per
   * call, one at a time; a call while another is still sweeping does nothing. The leader calls it
   * periodically. Answers whether it proposed any.
   */
  async sweepIfDue(max = 1000): Promise<boolean> {
    if (this.#gates.sweeping) return false;
    this.#gates.sweeping = true;
    try {
      let proposed = 0;
      while (
        proposed < this.#limits.sweepEntriesMax &&
        this.#log.readStale((state) => streamSweepDue(state, this.#log.nowMs())).value
      ) {
        await this.#propose({ type: "sweep", max }, undefined);
        proposed++;
      }
      return proposed > 0;
    } finally {
      this.#gates.sweeping = false;
    }
  }

  /**
   * Reserves one of the node's server-sent event connections; returns the release function.
   * Throws ERR_BUSY when `sseConnectionsMax` are open.
   */
  openEventStream(): () => void {
    if (this.#gates.sseConnections >= this.#limits.sseConnectionsMax) {
      throw new CairnError(
        "ERR_BUSY",
        `too many event streams on this node (${this.#limits.sseConnectionsMax})`,
      );
    }
    this.#gates.sseConnections++;
    let released = false;
    return () => {
      if (!released) this.#gates.sseConnections--;
      released = true;
    };
  }

  /** A new stream's settings: those given, checked, and the defaults for the others. */
  #configOf(options: StreamCreateOptions): StreamConfig {
    this.#checkSettings(options);
    return {
      maxMessages: options.maxMessages ?? 0,
      maxBytes: options.maxBytes ?? 0,
      maxAgeMs: options.maxAgeMs ?? 0,
      discard: options.discard ?? "old",
      messageBytesMax: options.messageBytesMax ?? this.#limits.messageBytesMax,
      dedupeWindowMs: options.dedupeWindowMs ?? 2 * 60_000,
    };
  }

  /** Checks stream settings as a create or an update gives them. */
  #checkSettings(options: StreamCreateOptions): void {
    const unlimited = Number.MAX_SAFE_INTEGER;
    checkInteger("maxMessages", options.maxMessages, 0, unlimited);
    checkInteger("maxBytes", options.maxBytes, 0, unlimited);
    checkInteger("maxAgeMs", options.maxAgeMs, 0, unlimited);
    checkInteger("messageBytesMax", options.messageBytesMax, 1, this.#limits.messageBytesMax);
    checkInteger("dedupeWindowMs", options.dedupeWindowMs, 0, 24 * 3600 * 1000);
    if (options.discard !== undefined && options.discard !== "old" && options.discard !== "new") {
      throw new CairnError("ERR_BAD_REQUEST", 'discard must be "old" or "new"');
    }
  }

  /** Checks a list of sequences to settle or delete: 1 to `settleSeqsMax` positive integers. */
  #checkSeqs(seqs: readonly number[]): void {
    if (seqs.length === 0 || seqs.length > this.#limits.settleSeqsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `give 1 to ${this.#limits.settleSeqsMax} sequences`);
    }
    for (const seq of seqs) checkInteger("seq", seq, 1, Number.MAX_SAFE_INTEGER);
  }

  /**
   * Waits until `ready` holds on local state after an applied batch that touched one of `streams`,
   * `deadline`, or abort.
   */
  async #waitFor(
    streams: readonly string[],
    version: number,
    deadline: number,
    signal: AbortSignal | undefined,
    ready: (state: StateReader) => boolean,
    pollMs = Number.MAX_SAFE_INTEGER,
  ): Promise<void> {
    let seen = version;
    for (;;) {
      const left = deadline - this.#notifier.monotonicMs();
      if (left <= 0 || signal?.aborted === true) return;
      await this.#notifier.wait(seen, Math.min(left, pollMs), signal, streams);
      seen = this.#notifier.version;
      if (this.#log.readStale(ready).value) return;
    }
  }

  /** Reads an object from state; a stale read's answer (or failure) says how far behind it may be. */
  /** Throws unless the current principal may read stream `name` (src/service/auth). */
  #allowRead(name: string): void {
    this.#log.authorize?.([{ permission: "read", resource: "stream", name }]);
  }

  async #read<T extends object>(
    consistency: Consistency,
    read: (state: StateReader) => T,
  ): Promise<WithStaleness<T>> {
    if (consistency === "stale") {
      const { value, staleness } = readStaleReported(this.#log, read);
      return { ...value, staleness };
    }
    return this.#log.readLinearizable(read);
  }

  /**
   * Proposes a stream command; resolves with that command's successful result, and raises a
   * refusal as its CairnError.
   */
  async #propose<S extends StreamCommand>(
    command: S,
    idempotencyKey: string | undefined,
  ): Promise<{
    result: Extract<ResultOf<{ readonly service: "streams"; readonly command: S }>, { readonly ok: true }>;
    duplicate: boolean;
  }> {
    const { result, duplicate } = await proposeCommand(
      this.#log,
      { service: "streams", command },
      idempotencyKey,
    );
    if (!result.ok) throw refusalError(result);
    return { result, duplicate };
  }
}

/** A page as answered: the range's resolved end stays inside the service. */
function withoutEnd(page: ReadResult & { readonly end: number | undefined }): ReadResult {
  const { end: _end, ...rest } = page;
  return rest;
}

const MESSAGE_ID = /^(\d{1,16})(?:-(\d{1,16}))?$/;

/** Parses a message id bound `<ms>-<n>`, or `<ms>` with `n` for its counter. */
function parseMessageId(field: string, id: string, n: number): MessageId {
  const match = MESSAGE_ID.exec(id);
  const ms = Number(match?.[1]);
  const given = match?.[2] === undefined ? n : Number(match[2]);
  if (match === null || !Number.isSafeInteger(ms) || !Number.isSafeInteger(given))
    throw new CairnError("ERR_BAD_REQUEST", `${field} must be a message id <ms>-<n> or <ms>`);
  return { ms, n: given };
}

/** Checks a trim's numbers. */
function checkTrim(trim: StreamTrim): void {
  checkInteger("trim limit", trim.limit, 0, Number.MAX_SAFE_INTEGER);
  if (trim.kind === "maxlen") checkInteger("trim max", trim.max, 0, Number.MAX_SAFE_INTEGER);
  else {
    checkInteger("trim id ms", trim.ms, 0, Number.MAX_SAFE_INTEGER);
    checkInteger("trim id n", trim.n, 0, Number.MAX_SAFE_INTEGER);
  }
}

/** Whether an exact trim of stream `name` has messages left to remove. */
function trimLeft(state: StateReader, name: string, trim: StreamTrim): boolean {
  const meta = getStreamMeta(state, name);
  if (meta === undefined || meta.firstSeq > meta.lastSeq) return false;
  if (trim.kind === "maxlen") return messageCount(meta) > trim.max;
  return seqAtId(state, meta, { ms: trim.ms, n: trim.n }) > meta.firstSeq;
}

/** Leader time of a message in flight's last delivery (records of the previous release: derived). */
function deliveredAt(record: PendingRecord, group: GroupMeta): number {
  return record.deliveredAtMs ?? record.availableAtMs - group.config.ackWaitMs;
}

function requireStream(state: StateReader, name: string): StreamMeta {
  const meta = getStreamMeta(state, name);
  if (meta === undefined) throw new CairnError("ERR_NOT_FOUND", `stream ${name} does not exist`);
  return meta;
}

function requireGroup(state: StateReader, stream: StreamMeta, name: string): GroupMeta {
  const group = getGroupMeta(state, stream, name);
  if (group === undefined)
    throw new CairnError("ERR_NOT_FOUND", `group ${name} of stream ${stream.name} does not exist`);
  return group;
}

function streamInfo(state: StateReader, meta: StreamMeta): StreamInfo {
  return {
    name: meta.name,
    config: meta.config,
    createdMs: meta.createdMs,
    firstSeq: meta.firstSeq,
    lastSeq: meta.lastSeq,
    messages: messageCount(meta),
    bytes: meta.bytes,
    groups: listGroups(state, meta).map((g) => g.name),
    lastId: `${meta.lastIdMs}-${meta.lastIdN}`,
    maxDeletedId: `${meta.maxDeletedIdMs ?? 0}-${meta.maxDeletedIdN ?? 0}`,
    entriesAdded: meta.lastSeq + (meta.entriesAddedDelta ?? 0),
  };
}

function groupInfo(state: StateReader, stream: StreamMeta, group: GroupMeta): GroupInfo {
  const clockMs = streamsClockMs(state);
  const pending = listPending(state, group, group.config.maxAckPending + 1);
  const consumers: Record<
    string,
    { pending: number; overdue: number; delivered: number; redelivered: number }
  > = {};
  for (const [name, , , delivered = 0, redelivered = 0] of group.consumers ?? []) {
    consumers[name] = { pending: 0, overdue: 0, delivered, redelivered };
  }
  for (const record of pending) {
    if (record.consumer === "") continue;
    const entry = consumers[record.consumer] ?? { pending: 0, overdue: 0, delivered: 0, redelivered: 0 };
    entry.pending++;
    if (record.availableAtMs <= clockMs) entry.overdue++;
    consumers[record.consumer] = entry;
  }
  const nextSeq = Math.max(group.nextSeq, stream.firstSeq);
  const lowestPending = pending.find((p) => p.seq >= stream.firstSeq)?.seq;
  return {
    name: group.name,
    stream: stream.name,
    config: group.config,
    createdMs: group.createdMs,
    nextSeq,
    ackFloor: (lowestPending ?? nextSeq) - 1,
    pending: group.pending,
    backlog: Math.max(0, stream.lastSeq - nextSeq + 1),
    delivered: group.delivered,
    redelivered: group.redelivered ?? 0,
    acked: group.acked,
    deadLettered: group.deadLettered,
    deadLettersLost: group.deadLettersLost ?? 0,
    consumers,
    lastDeliveredId: idBefore(state, stream, group.nextSeq),
  };
}

/** Whether a fetch now would hand out something: a new message, or one whose deadline passed. */
function groupHasWork(state: StateReader, streamName: string, groupName: string, nowMs: number): boolean {
  const stream = getStreamMeta(state, streamName);
  const group = stream === undefined ? undefined : getGroupMeta(state, stream, groupName);
  if (stream === undefined || group === undefined) return true; // Let the fetch report it.
  if (
    Math.max(group.nextSeq, stream.firstSeq) <= stream.lastSeq &&
    group.pending < group.config.maxAckPending
  ) {
    return true;
  }
  const due = nextDueMs(state, group);
  return due !== undefined && due <= nowMs;
}
