// Key-value commands as they travel in Raft entries: a compact binary encoding, decoded only from
// entries this cluster wrote (a decode failure there is corruption, not bad user input).
import { type ByteReader, ByteWriter, DecodeError } from "../../util/bytes.js";

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

/** Every key-value command. */
export type KvCommand = KvPut | KvDelete | KvIncrement | KvExpire | KvSetTtl | KvPutMany;

const TYPE_PUT = 1;
const TYPE_DELETE = 2;
const TYPE_INCREMENT = 3;
const TYPE_EXPIRE = 4;
const TYPE_SET_TTL = 5;
const TYPE_PUT_MANY = 6;
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
  }
}

/** Decodes a command written by {@link encodeKvCommand}; throws DecodeError on malformed bytes. */
export function decodeKvCommand(reader: ByteReader): KvCommand {
  const type = reader.u8();
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
    default:
      throw new DecodeError(`unknown key-value command type ${type}`);
  }
}
