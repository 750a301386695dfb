// Key-value commands as they travel in Raft entries: a compact binary encoding, decoded only from
// entries this cluster wrote (a decode failure there is corruption, not bad user input).
import { type ByteReader, ByteWriter, DecodeError } from "../../util/index.js";
import { decodeStreamCommand, encodeStreamCommand, type StreamCommand } from "../streams/stream-command.js";

/** Store `value` under `key`, optionally only if absent or only at a given modify revision. */
export interface KvPut {
  readonly type: "put";
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** Succeed only if the key's modify revision equals this (0: only if the key does not exist). */
  readonly ifRevision?: number;
  /** Succeed only if the key does not exist. */
  readonly ifAbsent?: boolean;
  /** Expire the key this many milliseconds after the leader's entry timestamp. */
  readonly ttlMs?: number;
}

/** Remove `key`, optionally only at a given modify revision. */
export interface KvDelete {
  readonly type: "delete";
  readonly key: Uint8Array;
  readonly ifRevision?: number;
}

/** Add `by` to the signed 64-bit decimal integer stored at `key` (0 if absent), as Redis INCRBY. */
export interface KvIncrement {
  readonly type: "increment";
  readonly key: Uint8Array;
  readonly by: bigint;
}

/**
 * Remove keys whose TTL has passed by the entry's timestamp, at most `max` of them (the leader
 * proposes another sweep while more are due), so one entry's work stays bounded.
 */
export interface KvExpire {
  readonly type: "expire";
  readonly max: number;
}

/** When a key expires: after `ms` from the entry's leader time, at leader time `ms`, or never. */
export type KvExpiry =
  | { readonly kind: "after"; readonly ms: number }
  | { readonly kind: "at"; readonly ms: number }
  | { readonly kind: "never" };

/**
 * Which keys a TTL change applies to, as Redis 7's EXPIRE options: keys without a TTL (`nx`), keys
 * with one (`xx`), or when the new expiry is later (`gt`) or earlier (`lt`) than the current one,
 * a key without a TTL counting as expiring never.
 */
export type KvTtlCondition = "nx" | "xx" | "gt" | "lt";

/**
 * Sets or clears the TTL of an existing key without changing its value (Redis EXPIRE, PEXPIREAT,
 * PERSIST). An expiry at or before the entry's time deletes the key, as Redis does.
 */
export interface KvSetTtl {
  readonly type: "set-ttl";
  readonly key: Uint8Array;
  readonly expiry: KvExpiry;
  readonly condition?: KvTtlCondition;
}

/**
 * Writes several keys in one entry at one revision (Redis MSET), clearing their TTLs; with
 * `ifNoneExist`, writes none of them if any exists (MSETNX). A key given twice takes its last value.
 */
export interface KvPutMany {
  readonly type: "put-many";
  readonly pairs: readonly (readonly [key: Uint8Array, value: Uint8Array])[];
  readonly ifNoneExist?: boolean;
}

/**
 * Redis's SET in full: `condition` NX (only if absent) or XX (only if present), `returnOld` for its
 * GET option, and the new expiry (`keep` for KEEPTTL; `never` clears it, as a plain SET does).
 */
export interface KvSet {
  readonly type: "set";
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly condition?: "nx" | "xx";
  readonly returnOld?: boolean;
  readonly expiry: KvExpiry | { readonly kind: "keep" };
}

/**
 * A read-modify-write of one key's value, applied in the state machine so it is atomic: APPEND,
 * SETRANGE (bounded by `valueBytesMax`, carried in the entry so every replica judges alike),
 * INCRBYFLOAT, GETDEL and GETEX.
 */
export type KvUpdateOp =
  | { readonly kind: "append"; readonly bytes: Uint8Array; readonly valueBytesMax: number }
  | {
      readonly kind: "set-range";
      readonly offset: number;
      readonly bytes: Uint8Array;
      readonly valueBytesMax: number;
    }
  | { readonly kind: "increment-float"; readonly by: string }
  | { readonly kind: "get-delete" }
  | { readonly kind: "get-expire"; readonly expiry: KvExpiry | { readonly kind: "keep" } };

/** One {@link KvUpdateOp} on `key`. */
export interface KvUpdate {
  readonly type: "update";
  readonly key: Uint8Array;
  readonly op: KvUpdateOp;
}

/**
 * Copies a key's value and TTL to another key (Redis COPY, with `replace`), or moves it (RENAME;
 * RENAMENX with `replace` false). A rename of a missing key is refused with ERR_NOT_FOUND.
 */
export interface KvCopy {
  readonly type: "copy";
  readonly from: Uint8Array;
  readonly to: Uint8Array;
  readonly move: boolean;
  readonly replace: boolean;
}

/** Removes every key (Redis FLUSHALL / FLUSHDB) in one entry. */
export interface KvFlush {
  readonly type: "flush";
}

/** Reads one key inside a transaction, so the read sees the state at its place in the entry. */
export interface KvRead {
  readonly type: "read";
  readonly key: Uint8Array;
}

/**
 * Several commands applied as one entry, in order, with no other write between them (Redis
 * MULTI/EXEC). When any watched key's modify revision (0: absent) differs at apply time, none runs.
 * With `sharedKeyspace` the steps see keys and streams as Redis sees them, one keyspace: a stream
 * is a key of type stream (a key command on it is refused with ERR_WRONG_TYPE, an overwrite or a
 * delete removes it, a read reports it), and a stream command on a key's name is refused likewise.
 * Without it (entries written before it existed) the two are apart, as they always are over HTTP.
 */
export interface KvTransaction {
  readonly type: "transaction";
  readonly watch: readonly (readonly [key: Uint8Array, revision: number])[];
  readonly commands: readonly TransactionStep[];
  readonly sharedKeyspace?: boolean;
}

/** A command a transaction may hold: any but a transaction, an expiry sweep or a flush. */
export type KvStep = Exclude<KvCommand, KvTransaction | KvExpire>;

/**
 * A stream command inside a transaction (Redis XADD, XACK ... inside MULTI, or pipelined with key
 * commands), applied in its place as the streams state machine applies it on its own.
 */
export interface KvStreamStep {
  readonly type: "stream";
  readonly command: StreamCommand;
}

/** What a transaction holds: key-value steps and stream commands, applied in order. */
export type TransactionStep = KvStep | KvStreamStep;

/** Every key-value command. */
export type KvCommand =
  | KvRead
  | KvTransaction
  | KvPut
  | KvDelete
  | KvIncrement
  | KvExpire
  | KvSetTtl
  | KvPutMany
  | KvSet
  | KvUpdate
  | KvCopy
  | KvFlush;

const TYPE_PUT = 1;
const TYPE_DELETE = 2;
const TYPE_INCREMENT = 3;
const TYPE_EXPIRE = 4;
const TYPE_SET_TTL = 5;
const TYPE_PUT_MANY = 6;
const TYPE_SET = 7;
const TYPE_UPDATE = 8;
const TYPE_COPY = 9;
const TYPE_FLUSH = 10;
const TYPE_READ = 11;
const TYPE_TRANSACTION = 12;
/** A stream command inside a transaction; never a command of its own. */
const TYPE_STREAM = 13;
/** A transaction with `sharedKeyspace`: its own code, so older entries keep their meaning. */
const TYPE_SHARED_TRANSACTION = 14;
/** Expiry codes of SET and GETEX, which also keep a TTL. */
const SET_EXPIRY_CODES = ["after", "at", "never", "keep"] as const;
const UPDATE_CODES = ["append", "set-range", "increment-float", "get-delete", "get-expire"] as const;
const SET_CONDITION_CODES = [undefined, "nx", "xx"] as const;
const EXPIRY_CODES = ["after", "at", "never"] as const;
/** Condition codes; 0 is none. */
const CONDITION_CODES = [undefined, "nx", "xx", "gt", "lt"] as const;
const FLAG_IF_ABSENT = 1;
const FLAG_IF_REVISION = 2;
const FLAG_TTL = 4;

/** Encodes a command for a Raft entry. */
export function encodeKvCommand(command: KvCommand, writer = new ByteWriter()): ByteWriter {
  switch (command.type) {
    case "put": {
      const flags =
        (command.ifAbsent === true ? FLAG_IF_ABSENT : 0) |
        (command.ifRevision !== undefined ? FLAG_IF_REVISION : 0) |
        (command.ttlMs !== undefined ? FLAG_TTL : 0);
      writer.u8(TYPE_PUT).u8(flags).bytes(command.key).bytes(command.value);
      if (command.ifRevision !== undefined) writer.varint(command.ifRevision);
      if (command.ttlMs !== undefined) writer.varint(command.ttlMs);
      return writer;
    }
    case "delete":
      writer
        .u8(TYPE_DELETE)
        .u8(command.ifRevision !== undefined ? FLAG_IF_REVISION : 0)
        .bytes(command.key);
      if (command.ifRevision !== undefined) writer.varint(command.ifRevision);
      return writer;
    case "increment":
      return writer.u8(TYPE_INCREMENT).bytes(command.key).string(command.by.toString());
    case "expire":
      return writer.u8(TYPE_EXPIRE).varint(command.max);
    case "set-ttl": {
      const { expiry } = command;
      writer.u8(TYPE_SET_TTL).bytes(command.key).u8(EXPIRY_CODES.indexOf(expiry.kind));
      if (expiry.kind !== "never") writer.varint(expiry.ms);
      return writer.u8(CONDITION_CODES.indexOf(command.condition));
    }
    case "put-many":
      writer
        .u8(TYPE_PUT_MANY)
        .u8(command.ifNoneExist === true ? FLAG_IF_ABSENT : 0)
        .varint(command.pairs.length);
      for (const [key, value] of command.pairs) writer.bytes(key).bytes(value);
      return writer;
    case "set":
      writer
        .u8(TYPE_SET)
        .bytes(command.key)
        .bytes(command.value)
        .u8(SET_CONDITION_CODES.indexOf(command.condition))
        .u8(command.returnOld === true ? 1 : 0);
      return encodeSetExpiry(writer, command.expiry);
    case "update": {
      const { op } = command;
      writer.u8(TYPE_UPDATE).bytes(command.key).u8(UPDATE_CODES.indexOf(op.kind));
      switch (op.kind) {
        case "append":
          return writer.bytes(op.bytes).varint(op.valueBytesMax);
        case "set-range":
          return writer.varint(op.offset).bytes(op.bytes).varint(op.valueBytesMax);
        case "increment-float":
          return writer.string(op.by);
        case "get-delete":
          return writer;
        case "get-expire":
          return encodeSetExpiry(writer, op.expiry);
      }
      return writer;
    }
    case "copy":
      return writer
        .u8(TYPE_COPY)
        .bytes(command.from)
        .bytes(command.to)
        .u8((command.move ? 1 : 0) | (command.replace ? 2 : 0));
    case "flush":
      return writer.u8(TYPE_FLUSH);
    case "read":
      return writer.u8(TYPE_READ).bytes(command.key);
    case "transaction":
      writer
        .u8(command.sharedKeyspace === true ? TYPE_SHARED_TRANSACTION : TYPE_TRANSACTION)
        .varint(command.watch.length);
      for (const [key, revision] of command.watch) writer.bytes(key).varint(revision);
      writer.varint(command.commands.length);
      for (const step of command.commands) {
        if (step.type === "stream") encodeStreamCommand(step.command, writer.u8(TYPE_STREAM));
        else encodeKvCommand(step, writer);
      }
      return writer;
  }
}

function encodeSetExpiry(writer: ByteWriter, expiry: KvExpiry | { readonly kind: "keep" }): ByteWriter {
  writer.u8(SET_EXPIRY_CODES.indexOf(expiry.kind));
  if (expiry.kind === "after" || expiry.kind === "at") writer.varint(expiry.ms);
  return writer;
}

function decodeSetExpiry(reader: ByteReader): KvExpiry | { readonly kind: "keep" } {
  const kind = SET_EXPIRY_CODES[reader.u8()];
  if (kind === undefined) throw new DecodeError("unknown expiry kind");
  return kind === "after" || kind === "at" ? { kind, ms: reader.varint() } : { kind };
}

/** Decodes a command written by {@link encodeKvCommand}; throws DecodeError on malformed bytes. */
export function decodeKvCommand(reader: ByteReader): KvCommand {
  return decodeKvCommandOfType(reader.u8(), reader);
}

/** Decodes the rest of a command whose type byte was `type`. */
function decodeKvCommandOfType(type: number, reader: ByteReader): KvCommand {
  switch (type) {
    case TYPE_PUT: {
      const flags = reader.u8();
      const key = reader.bytes();
      const value = reader.bytes();
      const ifRevision = (flags & FLAG_IF_REVISION) !== 0 ? reader.varint() : undefined;
      const ttlMs = (flags & FLAG_TTL) !== 0 ? reader.varint() : undefined;
      return {
        type: "put",
        key,
        value,
        ...((flags & FLAG_IF_ABSENT) !== 0 ? { ifAbsent: true } : {}),
        ...(ifRevision !== undefined ? { ifRevision } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
      };
    }
    case TYPE_DELETE: {
      const flags = reader.u8();
      const key = reader.bytes();
      return (flags & FLAG_IF_REVISION) !== 0
        ? { type: "delete", key, ifRevision: reader.varint() }
        : { type: "delete", key };
    }
    case TYPE_INCREMENT: {
      const key = reader.bytes();
      const by = reader.string(32);
      if (!/^-?\d{1,20}$/.test(by)) throw new DecodeError(`malformed increment ${JSON.stringify(by)}`);
      return { type: "increment", key, by: BigInt(by) };
    }
    case TYPE_EXPIRE:
      return { type: "expire", max: reader.varint() };
    case TYPE_SET_TTL: {
      const key = reader.bytes();
      const kind = EXPIRY_CODES[reader.u8()];
      if (kind === undefined) throw new DecodeError("unknown expiry kind");
      const expiry: KvExpiry = kind === "never" ? { kind } : { kind, ms: reader.varint() };
      const code = reader.u8();
      if (code >= CONDITION_CODES.length) throw new DecodeError(`unknown TTL condition ${code}`);
      const condition = CONDITION_CODES[code];
      return { type: "set-ttl", key, expiry, ...(condition !== undefined ? { condition } : {}) };
    }
    case TYPE_PUT_MANY: {
      const flags = reader.u8();
      const count = reader.varint();
      const pairs: (readonly [Uint8Array, Uint8Array])[] = [];
      for (let i = 0; i < count; i++) pairs.push([reader.bytes(), reader.bytes()]);
      return { type: "put-many", pairs, ...((flags & FLAG_IF_ABSENT) !== 0 ? { ifNoneExist: true } : {}) };
    }
    case TYPE_SET: {
      const key = reader.bytes();
      const value = reader.bytes();
      const code = reader.u8();
      if (code >= SET_CONDITION_CODES.length) throw new DecodeError(`unknown SET condition ${code}`);
      const condition = SET_CONDITION_CODES[code];
      const returnOld = reader.u8() === 1;
      const expiry = decodeSetExpiry(reader);
      return {
        type: "set",
        key,
        value,
        ...(condition !== undefined ? { condition } : {}),
        ...(returnOld ? { returnOld } : {}),
        expiry,
      };
    }
    case TYPE_UPDATE: {
      const key = reader.bytes();
      const kind = UPDATE_CODES[reader.u8()];
      switch (kind) {
        case "append":
          return { type: "update", key, op: { kind, bytes: reader.bytes(), valueBytesMax: reader.varint() } };
        case "set-range":
          return {
            type: "update",
            key,
            op: { kind, offset: reader.varint(), bytes: reader.bytes(), valueBytesMax: reader.varint() },
          };
        case "increment-float":
          return { type: "update", key, op: { kind, by: reader.string(64) } };
        case "get-delete":
          return { type: "update", key, op: { kind } };
        case "get-expire":
          return { type: "update", key, op: { kind, expiry: decodeSetExpiry(reader) } };
        case undefined:
          throw new DecodeError("unknown update kind");
      }
      throw new DecodeError("unknown update kind");
    }
    case TYPE_COPY: {
      const from = reader.bytes();
      const to = reader.bytes();
      const flags = reader.u8();
      return { type: "copy", from, to, move: (flags & 1) !== 0, replace: (flags & 2) !== 0 };
    }
    case TYPE_FLUSH:
      return { type: "flush" };
    case TYPE_READ:
      return { type: "read", key: reader.bytes() };
    case TYPE_TRANSACTION:
    case TYPE_SHARED_TRANSACTION: {
      const watch: (readonly [Uint8Array, number])[] = [];
      const watchCount = reader.varint();
      for (let i = 0; i < watchCount; i++) watch.push([reader.bytes(), reader.varint()]);
      const commands: TransactionStep[] = [];
      const count = reader.varint();
      for (let i = 0; i < count; i++) {
        const stepType = reader.u8();
        if (stepType === TYPE_STREAM) {
          commands.push({ type: "stream", command: decodeStreamCommand(reader) });
          continue;
        }
        const step = decodeKvCommandOfType(stepType, reader);
        if (step.type === "transaction" || step.type === "expire") {
          throw new DecodeError(`a ${step.type} inside a transaction`);
        }
        commands.push(step);
      }
      const shared = type === TYPE_SHARED_TRANSACTION ? { sharedKeyspace: true } : {};
      return { type: "transaction", watch, commands, ...shared };
    }
    default:
      throw new DecodeError(`unknown key-value command type ${type}`);
  }
}
