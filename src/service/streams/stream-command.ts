// Stream and consumer-group commands as they travel in Raft entries: a compact binary encoding,
// decoded only from entries this cluster wrote (a decode failure there is corruption, not bad input).
import { assertNever, type ByteReader, ByteWriter, DecodeError } from "../../util/index.js";

/** What a full stream does with a new message: drop its oldest messages, or refuse the new one. */
export type DiscardPolicy = "old" | "new";

/**
 * A stream's settings, given at creation and changed by an update. Zero means "no limit" for the
 * three retention limits.
 */
export interface StreamConfig {
  /** Keep at most this many messages (0: no limit). */
  readonly maxMessages: number;
  /** Keep at most this many bytes of messages (0: no limit). */
  readonly maxBytes: number;
  /** Drop messages older than this, by leader time (0: no limit). */
  readonly maxAgeMs: number;
  readonly discard: DiscardPolicy;
  /** The largest message (payload + key + headers) accepted, in bytes. */
  readonly messageBytesMax: number;
  /** How long a message id is remembered for deduplication, by leader time. */
  readonly dedupeWindowMs: number;
}

/** Where a new consumer group starts reading. */
export type StartAt =
  | { readonly kind: "first" }
  | { readonly kind: "last" }
  | { readonly kind: "new" }
  | { readonly kind: "seq"; readonly seq: number }
  | { readonly kind: "time"; readonly timeMs: number };

/** A consumer group's settings, fixed at creation. */
export interface GroupConfig {
  /** How long a fetched message stays with its consumer before it may be delivered again. */
  readonly ackWaitMs: number;
  /** Deliveries after which an unacknowledged message moves to the dead-letter stream (0: never). */
  readonly maxDeliveries: number;
  /** The stream dead letters go to (`<stream>.<group>.dlq` unless configured). */
  readonly deadLetterStream: string;
  /** Messages in flight (delivered, not acknowledged) at most; fetch hands out no new ones beyond. */
  readonly maxAckPending: number;
}

/** Group settings an update changes; the ones left out keep their value. */
export type GroupConfigChanges = {
  readonly [K in (typeof GROUP_FIELDS)[number]]?: GroupConfig[K];
};

/** Which messages in flight a claim looks at: these sequences, or a scan from a sequence. */
export type ClaimTarget =
  | { readonly kind: "seqs"; readonly seqs: readonly number[] }
  | { readonly kind: "scan"; readonly fromSeq: number; readonly count: number };

/** A message id `<ms>-<n>` given by a client; `n` left out means the next free one in `ms`. */
export interface GivenId {
  readonly ms: number;
  readonly n?: number;
}

/**
 * Trimming a stream from its oldest end (Redis MAXLEN / MINID): down to `max` messages, or to the
 * messages whose id is at least `ms-n`. An approximate trim (`exact` false) removes only whole
 * blocks of {@link trimBlockSeqs} sequences, as Redis removes only whole nodes; `limit` bounds the
 * messages removed (0: no bound but the state machine's per-entry one).
 */
export type StreamTrim = { readonly exact: boolean; readonly limit: number } & (
  | { readonly kind: "maxlen"; readonly max: number }
  | { readonly kind: "minid"; readonly ms: number; readonly n: number }
);

/** Sequences per block that an approximate trim removes whole (Redis's stream-node-max-entries). */
export const trimBlockSeqs = 100;

/** How a consumer settles messages it holds. */
export type SettleAction = "ack" | "nack" | "extend" | "term";

/** A message header: name and value. Order is kept. */
export type Header = readonly [string, string];

/** Settings an update changes; the ones left out keep their value. */
export type StreamConfigChanges = { readonly [K in keyof StreamConfig]?: StreamConfig[K] };

/** Every stream command. */
export type StreamCommand =
  | { readonly type: "create"; readonly name: string; readonly config: StreamConfig }
  | { readonly type: "delete"; readonly name: string }
  /**
   * Changes some of a stream's settings. Merged in the state machine, so two concurrent updates of
   * different settings both take effect; a lowered limit is applied at this entry (bounded work).
   */
  | { readonly type: "update"; readonly name: string; readonly changes: StreamConfigChanges }
  /**
   * Deletes single messages by sequence. Their sequences are never reused, and the groups' in-flight
   * records of them are dropped, or with `keepPending` (Redis XDEL) kept, with the message's id,
   * until acknowledged or claimed.
   */
  | {
      readonly type: "message-delete";
      readonly name: string;
      readonly seqs: readonly number[];
      readonly keepPending?: boolean;
    }
  | {
      readonly type: "append";
      readonly name: string;
      readonly payload: Uint8Array;
      readonly headers: readonly Header[];
      readonly key?: string;
      /** Deduplicated within the stream's window: a repeat answers the original sequence. */
      readonly msgId?: string;
      /** Append only if the stream's last sequence is this (0: empty). */
      readonly expectedLastSeq?: number;
      /**
       * Creates the stream with these settings first when it does not exist (Redis XADD without
       * NOMKSTREAM), in the same entry; an existing stream keeps its own settings.
       */
      readonly createWith?: StreamConfig;
      /** The message's id, which must be above the stream's last (Redis XADD with an id). */
      readonly id?: GivenId;
      /** Trims the stream after the append, in the same entry (Redis XADD MAXLEN / MINID). */
      readonly trim?: StreamTrim;
    }
  /** Trims a stream from its oldest end (Redis XTRIM). */
  | { readonly type: "trim"; readonly name: string; readonly trim: StreamTrim }
  | {
      readonly type: "group-create";
      readonly stream: string;
      readonly group: string;
      readonly startAt: StartAt;
      readonly config: GroupConfig;
    }
  | { readonly type: "group-delete"; readonly stream: string; readonly group: string }
  /**
   * Moves a group's position: the next message it hands out is the first at or after `nextSeq`
   * (Redis XGROUP SETID). Messages in flight stay with their consumers.
   */
  | {
      readonly type: "group-position";
      readonly stream: string;
      readonly group: string;
      readonly nextSeq: number;
    }
  /** Registers a consumer of a group (Redis XGROUP CREATECONSUMER). */
  | {
      readonly type: "consumer-create";
      readonly stream: string;
      readonly group: string;
      readonly consumer: string;
    }
  /**
   * Sets a stream's last id (Redis XSETID), at least its newest held message's, and optionally the
   * count of entries added Redis reports (at least the messages held) and its largest deleted id.
   */
  | {
      readonly type: "set-id";
      readonly name: string;
      readonly lastIdMs: number;
      readonly lastIdN: number;
      readonly entriesAdded?: number;
      readonly maxDeletedId?: { readonly ms: number; readonly n: number };
    }
  /** Forgets a consumer and the messages it holds (Redis XGROUP DELCONSUMER). */
  | {
      readonly type: "consumer-delete";
      readonly stream: string;
      readonly group: string;
      readonly consumer: string;
    }
  /** Changes some of a group's settings; messages in flight keep their deadlines. */
  | {
      readonly type: "group-update";
      readonly stream: string;
      readonly group: string;
      readonly changes: GroupConfigChanges;
    }
  | {
      readonly type: "fetch";
      readonly stream: string;
      readonly group: string;
      readonly consumer: string;
      readonly max: number;
    }
  | {
      readonly type: "settle";
      readonly stream: string;
      readonly group: string;
      readonly action: SettleAction;
      readonly seqs: readonly number[];
      /** For nack: do not redeliver before this many milliseconds. */
      readonly delayMs: number;
    }
  /**
   * Takes over messages in flight for the group that have been idle (since their last delivery) at
   * least `minIdleMs`, for `consumer`, with a fresh ack deadline (Redis XCLAIM, XAUTOCLAIM): the
   * sequences named, or a scan of the group's messages in flight from `fromSeq` that claims up to
   * `count` (looking at no more than ten times that many). `justId` leaves delivery counts alone.
   * The options are XCLAIM's: `ownOnly` takes only what `consumer` already holds (Redis XREADGROUP
   * reading its history, which counts a delivery), `idleMs` sets how long the claimed messages
   * count as idle, `retryCount` their delivery count, and `force` takes named messages that are not
   * in flight (held by the stream) as well.
   */
  | {
      readonly type: "claim";
      readonly stream: string;
      readonly group: string;
      readonly consumer: string;
      readonly minIdleMs: number;
      readonly target: ClaimTarget;
      readonly justId: boolean;
      readonly ownOnly?: boolean;
      readonly idleMs?: number;
      readonly retryCount?: number;
      readonly force?: boolean;
    }
  /**
   * Bounded housekeeping the leader proposes while work is due: removes deleted streams' data,
   * applies max age to idle streams and forgets expired message ids, at most `max` keys per entry.
   */
  | { readonly type: "sweep"; readonly max: number };

/** The stream a command acts on (none for a sweep, which names none). */
export function streamOfCommand(command: StreamCommand): string | undefined {
  switch (command.type) {
    case "create":
    case "delete":
    case "update":
    case "message-delete":
    case "append":
    case "trim":
    case "set-id":
      return command.name;
    case "group-create":
    case "group-delete":
    case "group-update":
    case "fetch":
    case "settle":
    case "claim":
    case "group-position":
    case "consumer-create":
    case "consumer-delete":
      return command.stream;
    case "sweep":
      return undefined;
    default:
      return assertNever(command, "stream command");
  }
}

const CREATE = 1;
const DELETE = 2;
const APPEND = 3;
const GROUP_CREATE = 4;
const GROUP_DELETE = 5;
const FETCH = 6;
const SETTLE = 7;
const SWEEP = 8;
const UPDATE = 9;
const MESSAGE_DELETE = 10;
const GROUP_UPDATE = 11;
const CLAIM = 12;
const TRIM = 13;
const GROUP_POSITION = 14;
const CONSUMER_CREATE = 15;
const CONSUMER_DELETE = 16;
/** A message-delete with `keepPending`: its own code, so older entries keep their meaning. */
const MESSAGE_DELETE_KEEP_PENDING = 17;
const SET_ID = 18;
const SET_ID_ENTRIES_ADDED = 1;
const SET_ID_MAX_DELETED = 2;
const CLAIM_JUST_ID = 1;
const CLAIM_SCAN = 2;
const CLAIM_OWN_ONLY = 4;
const CLAIM_IDLE = 8;
const CLAIM_RETRY_COUNT = 16;
const CLAIM_FORCE = 32;
const FLAG_KEY = 1;
const FLAG_MSG_ID = 2;
const FLAG_EXPECTED = 4;
const FLAG_CREATE = 8;
const FLAG_ID = 16;
const FLAG_TRIM = 32;
/** The order in which an update's settings are flagged and written. */
const CONFIG_FIELDS = [
  "maxMessages",
  "maxBytes",
  "maxAgeMs",
  "discard",
  "messageBytesMax",
  "dedupeWindowMs",
] as const satisfies readonly (keyof StreamConfig)[];
/** The group settings an update may change, in the order they are flagged and written. */
const GROUP_FIELDS = [
  "ackWaitMs",
  "maxDeliveries",
  "maxAckPending",
] as const satisfies readonly (keyof GroupConfig)[];
const DISCARD_CODES: readonly DiscardPolicy[] = ["old", "new"];
const START_CODES = ["first", "last", "new", "seq", "time"] as const;
const SETTLE_CODES: readonly SettleAction[] = ["ack", "nack", "extend", "term"];
/** Longest stream, group or consumer name the decoder accepts (the service checks tighter rules). */
const NAME_BYTES_MAX = 256;

function codeOf<T>(codes: readonly T[], value: T): number {
  return codes.indexOf(value);
}

function fromCode<T>(codes: readonly T[], code: number, what: string): T {
  const value = codes[code];
  if (value === undefined) throw new DecodeError(`unknown ${what} ${code}`);
  return value;
}

function encodeConfig(c: StreamConfig, writer: ByteWriter): ByteWriter {
  return writer
    .varint(c.maxMessages)
    .varint(c.maxBytes)
    .varint(c.maxAgeMs)
    .u8(codeOf(DISCARD_CODES, c.discard))
    .varint(c.messageBytesMax)
    .varint(c.dedupeWindowMs);
}

function decodeConfig(reader: ByteReader): StreamConfig {
  return {
    maxMessages: reader.varint(),
    maxBytes: reader.varint(),
    maxAgeMs: reader.varint(),
    discard: fromCode(DISCARD_CODES, reader.u8(), "discard policy"),
    messageBytesMax: reader.varint(),
    dedupeWindowMs: reader.varint(),
  };
}

function encodeTrim(trim: StreamTrim, writer: ByteWriter): ByteWriter {
  writer
    .u8(trim.kind === "maxlen" ? 0 : 1)
    .u8(trim.exact ? 1 : 0)
    .varint(trim.limit);
  return trim.kind === "maxlen" ? writer.varint(trim.max) : writer.varint(trim.ms).varint(trim.n);
}

function decodeTrim(reader: ByteReader): StreamTrim {
  const kind = reader.u8();
  const exact = reader.u8() === 1;
  const limit = reader.varint();
  if (kind === 0) return { kind: "maxlen", exact, limit, max: reader.varint() };
  if (kind === 1) return { kind: "minid", exact, limit, ms: reader.varint(), n: reader.varint() };
  throw new DecodeError(`unknown trim kind ${kind}`);
}

/** Encodes a stream command for a Raft entry. */
export function encodeStreamCommand(command: StreamCommand, writer = new ByteWriter()): ByteWriter {
  switch (command.type) {
    case "create":
      return encodeConfig(command.config, writer.u8(CREATE).string(command.name));
    case "delete":
      return writer.u8(DELETE).string(command.name);
    case "update": {
      const changes = command.changes;
      let flags = 0;
      CONFIG_FIELDS.forEach((field, bit) => {
        if (changes[field] !== undefined) flags |= 1 << bit;
      });
      writer.u8(UPDATE).string(command.name).u8(flags);
      for (const field of CONFIG_FIELDS) {
        const value = changes[field];
        if (value === undefined) continue;
        if (typeof value === "string") writer.u8(codeOf(DISCARD_CODES, value));
        else writer.varint(value);
      }
      return writer;
    }
    case "message-delete":
      writer
        .u8(command.keepPending === true ? MESSAGE_DELETE_KEEP_PENDING : MESSAGE_DELETE)
        .string(command.name)
        .varint(command.seqs.length);
      for (const seq of command.seqs) writer.varint(seq);
      return writer;
    case "append": {
      const flags =
        (command.key !== undefined ? FLAG_KEY : 0) |
        (command.msgId !== undefined ? FLAG_MSG_ID : 0) |
        (command.expectedLastSeq !== undefined ? FLAG_EXPECTED : 0) |
        (command.createWith !== undefined ? FLAG_CREATE : 0) |
        (command.id !== undefined ? FLAG_ID : 0) |
        (command.trim !== undefined ? FLAG_TRIM : 0);
      writer.u8(APPEND).string(command.name).u8(flags).bytes(command.payload).varint(command.headers.length);
      for (const [name, value] of command.headers) writer.string(name).string(value);
      if (command.key !== undefined) writer.string(command.key);
      if (command.msgId !== undefined) writer.string(command.msgId);
      if (command.expectedLastSeq !== undefined) writer.varint(command.expectedLastSeq);
      if (command.createWith !== undefined) encodeConfig(command.createWith, writer);
      if (command.id !== undefined) {
        writer.varint(command.id.ms).u8(command.id.n === undefined ? 0 : 1);
        if (command.id.n !== undefined) writer.varint(command.id.n);
      }
      if (command.trim !== undefined) encodeTrim(command.trim, writer);
      return writer;
    }
    case "trim":
      return encodeTrim(command.trim, writer.u8(TRIM).string(command.name));
    case "group-position":
      return writer.u8(GROUP_POSITION).string(command.stream).string(command.group).varint(command.nextSeq);
    case "set-id": {
      const flags =
        (command.entriesAdded !== undefined ? SET_ID_ENTRIES_ADDED : 0) |
        (command.maxDeletedId !== undefined ? SET_ID_MAX_DELETED : 0);
      writer.u8(SET_ID).string(command.name).varint(command.lastIdMs).varint(command.lastIdN).u8(flags);
      if (command.entriesAdded !== undefined) writer.varint(command.entriesAdded);
      if (command.maxDeletedId !== undefined)
        writer.varint(command.maxDeletedId.ms).varint(command.maxDeletedId.n);
      return writer;
    }
    case "consumer-create":
    case "consumer-delete":
      return writer
        .u8(command.type === "consumer-create" ? CONSUMER_CREATE : CONSUMER_DELETE)
        .string(command.stream)
        .string(command.group)
        .string(command.consumer);
    case "group-create": {
      writer.u8(GROUP_CREATE).string(command.stream).string(command.group);
      const start = command.startAt;
      writer.u8(START_CODES.indexOf(start.kind));
      if (start.kind === "seq") writer.varint(start.seq);
      if (start.kind === "time") writer.varint(start.timeMs);
      const c = command.config;
      return writer
        .varint(c.ackWaitMs)
        .varint(c.maxDeliveries)
        .string(c.deadLetterStream)
        .varint(c.maxAckPending);
    }
    case "group-delete":
      return writer.u8(GROUP_DELETE).string(command.stream).string(command.group);
    case "group-update": {
      const changes = command.changes;
      let flags = 0;
      GROUP_FIELDS.forEach((field, bit) => {
        if (changes[field] !== undefined) flags |= 1 << bit;
      });
      writer.u8(GROUP_UPDATE).string(command.stream).string(command.group).u8(flags);
      for (const field of GROUP_FIELDS) {
        const value = changes[field];
        if (value !== undefined) writer.varint(value);
      }
      return writer;
    }
    case "fetch":
      return writer
        .u8(FETCH)
        .string(command.stream)
        .string(command.group)
        .string(command.consumer)
        .varint(command.max);
    case "settle":
      writer
        .u8(SETTLE)
        .string(command.stream)
        .string(command.group)
        .u8(codeOf(SETTLE_CODES, command.action))
        .varint(command.delayMs)
        .varint(command.seqs.length);
      for (const seq of command.seqs) writer.varint(seq);
      return writer;
    case "sweep":
      return writer.u8(SWEEP).varint(command.max);
    case "claim": {
      const { target } = command;
      writer
        .u8(CLAIM)
        .string(command.stream)
        .string(command.group)
        .string(command.consumer)
        .varint(command.minIdleMs)
        .u8(
          (command.justId ? CLAIM_JUST_ID : 0) |
            (target.kind === "scan" ? CLAIM_SCAN : 0) |
            (command.ownOnly === true ? CLAIM_OWN_ONLY : 0) |
            (command.idleMs !== undefined ? CLAIM_IDLE : 0) |
            (command.retryCount !== undefined ? CLAIM_RETRY_COUNT : 0) |
            (command.force === true ? CLAIM_FORCE : 0),
        );
      if (target.kind === "scan") writer.varint(target.fromSeq).varint(target.count);
      else {
        writer.varint(target.seqs.length);
        for (const seq of target.seqs) writer.varint(seq);
      }
      if (command.idleMs !== undefined) writer.varint(command.idleMs);
      if (command.retryCount !== undefined) writer.varint(command.retryCount);
      return writer;
    }
  }
}

/** Decodes a command written by {@link encodeStreamCommand}; throws DecodeError on malformed bytes. */
export function decodeStreamCommand(reader: ByteReader): StreamCommand {
  const type = reader.u8();
  const name = () => reader.string(NAME_BYTES_MAX);
  switch (type) {
    case CREATE:
      return { type: "create", name: name(), config: decodeConfig(reader) };
    case DELETE:
      return { type: "delete", name: name() };
    case UPDATE: {
      const stream = name();
      const flags = reader.u8();
      if (flags >> CONFIG_FIELDS.length !== 0) throw new DecodeError(`unknown update flags ${flags}`);
      const changes: { -readonly [K in keyof StreamConfig]?: StreamConfig[K] } = {};
      CONFIG_FIELDS.forEach((field, bit) => {
        if ((flags & (1 << bit)) === 0) return;
        if (field === "discard") changes.discard = fromCode(DISCARD_CODES, reader.u8(), "discard policy");
        else changes[field] = reader.varint();
      });
      return { type: "update", name: stream, changes };
    }
    case MESSAGE_DELETE:
    case MESSAGE_DELETE_KEEP_PENDING: {
      const stream = name();
      const count = reader.varint();
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) seqs.push(reader.varint());
      const keep = type === MESSAGE_DELETE_KEEP_PENDING ? { keepPending: true } : {};
      return { type: "message-delete", name: stream, seqs, ...keep };
    }
    case APPEND: {
      const stream = name();
      const flags = reader.u8();
      const payload = reader.bytes();
      const headerCount = reader.varint();
      const headers: Header[] = [];
      for (let i = 0; i < headerCount; i++) headers.push([reader.string(), reader.string()]);
      const key = (flags & FLAG_KEY) !== 0 ? reader.string() : undefined;
      const msgId = (flags & FLAG_MSG_ID) !== 0 ? reader.string() : undefined;
      const expectedLastSeq = (flags & FLAG_EXPECTED) !== 0 ? reader.varint() : undefined;
      // Entries of the previous release never set the flag, so they decode as before.
      const createWith = (flags & FLAG_CREATE) !== 0 ? decodeConfig(reader) : undefined;
      let id: GivenId | undefined;
      if ((flags & FLAG_ID) !== 0) {
        const ms = reader.varint();
        id = reader.u8() === 1 ? { ms, n: reader.varint() } : { ms };
      }
      const trim = (flags & FLAG_TRIM) !== 0 ? decodeTrim(reader) : undefined;
      return {
        type: "append",
        name: stream,
        payload,
        headers,
        ...(key !== undefined ? { key } : {}),
        ...(msgId !== undefined ? { msgId } : {}),
        ...(expectedLastSeq !== undefined ? { expectedLastSeq } : {}),
        ...(createWith !== undefined ? { createWith } : {}),
        ...(id !== undefined ? { id } : {}),
        ...(trim !== undefined ? { trim } : {}),
      };
    }
    case TRIM:
      return { type: "trim", name: name(), trim: decodeTrim(reader) };
    case GROUP_POSITION:
      return { type: "group-position", stream: name(), group: name(), nextSeq: reader.varint() };
    case CONSUMER_CREATE:
      return { type: "consumer-create", stream: name(), group: name(), consumer: name() };
    case CONSUMER_DELETE:
      return { type: "consumer-delete", stream: name(), group: name(), consumer: name() };
    case SET_ID: {
      const stream = name();
      const lastIdMs = reader.varint();
      const lastIdN = reader.varint();
      const flags = reader.u8();
      const entriesAdded = (flags & SET_ID_ENTRIES_ADDED) !== 0 ? reader.varint() : undefined;
      const maxDeletedId =
        (flags & SET_ID_MAX_DELETED) !== 0 ? { ms: reader.varint(), n: reader.varint() } : undefined;
      return {
        type: "set-id",
        name: stream,
        lastIdMs,
        lastIdN,
        ...(entriesAdded !== undefined ? { entriesAdded } : {}),
        ...(maxDeletedId !== undefined ? { maxDeletedId } : {}),
      };
    }
    case GROUP_CREATE: {
      const stream = name();
      const group = name();
      const kind = fromCode(START_CODES, reader.u8(), "start position");
      const startAt: StartAt =
        kind === "seq"
          ? { kind, seq: reader.varint() }
          : kind === "time"
            ? { kind, timeMs: reader.varint() }
            : { kind };
      return {
        type: "group-create",
        stream,
        group,
        startAt,
        config: {
          ackWaitMs: reader.varint(),
          maxDeliveries: reader.varint(),
          deadLetterStream: name(),
          maxAckPending: reader.varint(),
        },
      };
    }
    case GROUP_DELETE:
      return { type: "group-delete", stream: name(), group: name() };
    case GROUP_UPDATE: {
      const stream = name();
      const group = name();
      const flags = reader.u8();
      if (flags >> GROUP_FIELDS.length !== 0) throw new DecodeError(`unknown group update flags ${flags}`);
      const changes: { -readonly [K in keyof GroupConfigChanges]: GroupConfigChanges[K] } = {};
      GROUP_FIELDS.forEach((field, bit) => {
        if ((flags & (1 << bit)) !== 0) changes[field] = reader.varint();
      });
      return { type: "group-update", stream, group, changes };
    }
    case FETCH:
      return { type: "fetch", stream: name(), group: name(), consumer: name(), max: reader.varint() };
    case SETTLE: {
      const stream = name();
      const group = name();
      const action = fromCode(SETTLE_CODES, reader.u8(), "settle action");
      const delayMs = reader.varint();
      const count = reader.varint();
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) seqs.push(reader.varint());
      return { type: "settle", stream, group, action, delayMs, seqs };
    }
    case SWEEP:
      return { type: "sweep", max: reader.varint() };
    case CLAIM: {
      const stream = name();
      const group = name();
      const consumer = name();
      const minIdleMs = reader.varint();
      const flags = reader.u8();
      if (flags >> 6 !== 0) throw new DecodeError(`unknown claim flags ${flags}`);
      let target: ClaimTarget;
      if ((flags & CLAIM_SCAN) !== 0) {
        target = { kind: "scan", fromSeq: reader.varint(), count: reader.varint() };
      } else {
        const count = reader.varint();
        const seqs: number[] = [];
        for (let i = 0; i < count; i++) seqs.push(reader.varint());
        target = { kind: "seqs", seqs };
      }
      const idleMs = (flags & CLAIM_IDLE) !== 0 ? reader.varint() : undefined;
      const retryCount = (flags & CLAIM_RETRY_COUNT) !== 0 ? reader.varint() : undefined;
      return {
        type: "claim",
        stream,
        group,
        consumer,
        minIdleMs,
        target,
        justId: (flags & CLAIM_JUST_ID) !== 0,
        ...((flags & CLAIM_OWN_ONLY) !== 0 ? { ownOnly: true } : {}),
        ...(idleMs !== undefined ? { idleMs } : {}),
        ...(retryCount !== undefined ? { retryCount } : {}),
        ...((flags & CLAIM_FORCE) !== 0 ? { force: true } : {}),
      };
    }
    default:
      throw new DecodeError(`unknown stream command type ${type}`);
  }
}
