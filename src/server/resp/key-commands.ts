// String and generic key commands over KvService: one keyspace with the HTTP KV API. Every command
// that reads and writes is one service call applied in the state machine (atomic); the adapter
// parses arguments and shapes replies exactly as Redis 7 does (src/t_string.c, src/db.c,
// src/expire.c), and holds no business logic.
import type { KvExpiry, KvService } from "../../service/index.js";
import {
  type CommandCall,
  type CommandFlag,
  type CommandHandler,
  type CommandSpec,
  command,
  notAnInteger,
  parseInteger,
  syntaxError,
  text,
  wrongArity,
} from "./command-table.js";
import { globMatch } from "./glob.js";
import { streamExists, stringRecord } from "./key-types.js";
import { type Reply, r } from "./resp-reply.js";

/** An expiry a write sets: a KvExpiry, or `keep` (the key keeps its TTL). */
export type Expiry = KvExpiry | { readonly kind: "keep" };

const invalidExpire = (name: string): Reply => r.error(`ERR invalid expire time in '${name}' command`);
const arg = (call: CommandCall, i: number): Buffer => call.args[i] ?? Buffer.alloc(0);

/**
 * An EX / PX / EXAT / PXAT amount as Redis reads it: an integer (else the not-integer error),
 * positive, and representable in milliseconds (else "invalid expire time").
 */
export function expiryAmount(
  name: string,
  unit: "ex" | "px" | "exat" | "pxat",
  raw: Buffer,
): { ok: true; expiry: KvExpiry } | { ok: false; reply: Reply } {
  const value = parseInteger(raw);
  if (value === undefined) return { ok: false, reply: notAnInteger };
  if (value <= 0n) return { ok: false, reply: invalidExpire(name) };
  const seconds = unit === "ex" || unit === "exat";
  const ms = seconds ? value * 1000n : value;
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reply: invalidExpire(name) };
  return { ok: true, expiry: { kind: unit === "ex" || unit === "px" ? "after" : "at", ms: Number(ms) } };
}

/** SET's options, parsed. */
export interface SetOptions {
  readonly condition?: "nx" | "xx";
  readonly returnOld: boolean;
  readonly expiry: Expiry;
}

/** Parses SET's options: [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms | KEEPTTL], or an error reply. */
export function parseSetOptions(args: readonly Buffer[]): SetOptions | Reply {
  // As Redis: an option may repeat (the last amount wins); only conflicting options are an error.
  let condition: "nx" | "xx" | undefined;
  let returnOld = false;
  let unit: "ex" | "px" | "exat" | "pxat" | "keepttl" | undefined;
  let expiry: Expiry = { kind: "never" };
  for (let i = 3; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    if ((option === "nx" || option === "xx") && (condition === undefined || condition === option)) {
      condition = option;
    } else if (option === "get") returnOld = true;
    else if (option === "keepttl" && (unit === undefined || unit === option)) {
      unit = option;
      expiry = { kind: "keep" };
    } else if (
      (option === "ex" || option === "px" || option === "exat" || option === "pxat") &&
      (unit === undefined || unit === option) &&
      i + 1 < args.length
    ) {
      unit = option;
      const amount = expiryAmount("set", option, args[++i] ?? Buffer.alloc(0));
      if (!amount.ok) return amount.reply;
      expiry = amount.expiry;
    } else return syntaxError;
  }
  return { ...(condition !== undefined ? { condition } : {}), returnOld, expiry };
}

/** SET key value [options] */
async function set(call: CommandCall): Promise<Reply> {
  const options = parseSetOptions(call.args);
  if ("t" in options) return options;
  const result = await call.server.kv.set(arg(call, 1), arg(call, 2), options);
  if (options.returnOld) return r.bulkOrNil(result.old);
  return result.written ? r.ok : r.nil;
}

/** SETEX / PSETEX key amount value */
function setWithExpiry(name: string, unit: "ex" | "px"): CommandHandler {
  return async (call) => {
    const amount = expiryAmount(name, unit, arg(call, 2));
    if (!amount.ok) return amount.reply;
    await call.server.kv.set(arg(call, 1), arg(call, 3), { expiry: amount.expiry });
    return r.ok;
  };
}

/** GETEX's options: [EX s | PX ms | EXAT ts | PXAT ms | PERSIST]; undefined expiry: none given. */
export function parseGetexOptions(
  args: readonly Buffer[],
): { ok: true; expiry: Expiry | undefined } | { ok: false; reply: Reply } {
  let expiry: Expiry | undefined;
  for (let i = 2; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    if (option === "persist" && expiry === undefined) expiry = { kind: "never" };
    else if (
      (option === "ex" || option === "px" || option === "exat" || option === "pxat") &&
      expiry === undefined &&
      i + 1 < args.length
    ) {
      const amount = expiryAmount("getex", option, args[++i] ?? Buffer.alloc(0));
      if (!amount.ok) return amount;
      expiry = amount.expiry;
    } else return { ok: false, reply: syntaxError };
  }
  return { ok: true, expiry };
}

/** GETEX key [EX s | PX ms | EXAT ts | PXAT ms | PERSIST] */
async function getex(call: CommandCall): Promise<Reply> {
  const options = parseGetexOptions(call.args);
  if (!options.ok) return options.reply;
  if (options.expiry === undefined) return get(call);
  const result = await call.server.kv.update(arg(call, 1), { kind: "get-expire", expiry: options.expiry });
  return r.bulkOrNil(result.value);
}

async function get(call: CommandCall): Promise<Reply> {
  const record = await stringRecord(call, arg(call, 1));
  return r.bulkOrNil(record?.value);
}

/** INCR / DECR / INCRBY / DECRBY */
function increment(sign: 1n | -1n, fixed: bigint | undefined, name: string): CommandHandler {
  return async (call) => {
    let by = fixed;
    if (by === undefined) {
      const parsed = parseInteger(arg(call, 2));
      if (parsed === undefined) return notAnInteger;
      if (sign === -1n && parsed === -(2n ** 63n)) return r.error("ERR decrement would overflow");
      by = parsed;
    }
    void name;
    const result = await call.server.kv.increment(arg(call, 1), sign * by);
    return r.int(BigInt(result.value));
  };
}

/** INCRBYFLOAT's increment, checked as Redis reads a float. */
export function floatIncrement(
  args: readonly Buffer[],
): { ok: true; by: string } | { ok: false; reply: Reply } {
  const by = text(args[2]);
  if (!/^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity)$/i.test(by)) {
    return { ok: false, reply: r.error("ERR value is not a valid float") };
  }
  return { ok: true, by };
}

async function incrbyfloat(call: CommandCall): Promise<Reply> {
  const increment = floatIncrement(call.args);
  if (!increment.ok) return increment.reply;
  const result = await call.server.kv.update(arg(call, 1), { kind: "increment-float", by: increment.by });
  return r.bulkOrNil(result.value);
}

/** GETRANGE's start and end, as integers. */
export function parseRange(
  args: readonly Buffer[],
): { ok: true; start: bigint; end: bigint } | { ok: false; reply: Reply } {
  const start = parseInteger(args[2] ?? Buffer.alloc(0));
  const end = parseInteger(args[3] ?? Buffer.alloc(0));
  if (start === undefined || end === undefined) return { ok: false, reply: notAnInteger };
  return { ok: true, start, end };
}

/** GETRANGE's reply: the bytes of `value` from `start` to `end`, both inclusive, as Redis 7 cuts them. */
export function substringReply(value: Uint8Array, startArg: bigint, endArg: bigint): Reply {
  const length = BigInt(value.length);
  let start = startArg;
  let end = endArg;
  // As Redis 7: two negative indexes in the wrong order select nothing.
  if (start < 0n && end < 0n && start > end) return r.bulk("");
  if (start < 0n) start += length;
  if (end < 0n) end += length;
  if (start < 0n) start = 0n;
  if (end < 0n) end = 0n;
  if (end >= length) end = length - 1n;
  if (start > end || length === 0n) return r.bulk("");
  return r.bulk(value.subarray(Number(start), Number(end) + 1));
}

async function getrange(call: CommandCall): Promise<Reply> {
  const range = parseRange(call.args);
  if (!range.ok) return range.reply;
  const record = await stringRecord(call, arg(call, 1));
  return substringReply(record?.value ?? new Uint8Array(0), range.start, range.end);
}

/** SETRANGE's offset: a non-negative integer that keeps the value within `valueBytesMax`. */
export function setrangeOffset(
  args: readonly Buffer[],
  valueBytesMax: number,
): { ok: true; offset: number } | { ok: false; reply: Reply } {
  const offset = parseInteger(args[2] ?? Buffer.alloc(0));
  if (offset === undefined) return { ok: false, reply: notAnInteger };
  if (offset < 0n) return { ok: false, reply: r.error("ERR offset is out of range") };
  if (offset > BigInt(valueBytesMax)) {
    return { ok: false, reply: r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)") };
  }
  return { ok: true, offset: Number(offset) };
}

async function setrange(call: CommandCall): Promise<Reply> {
  const offset = setrangeOffset(call.args, call.server.kv.limits.valueBytesMax);
  if (!offset.ok) return offset.reply;
  const result = await call.server.kv.update(arg(call, 1), {
    kind: "set-range",
    offset: offset.offset,
    bytes: arg(call, 3),
  });
  return r.int(result.length);
}

/** DEL / UNLINK: each key, and the stream of that name. */
async function del(call: CommandCall): Promise<Reply> {
  let deleted = 0;
  for (const key of call.args.slice(1)) {
    const keyDeleted = (await call.server.kv.delete(key)).deleted;
    const streamDeleted =
      (await streamExists(call, key)) && (await call.server.streams.delete(text(key))).deleted;
    if (keyDeleted || streamDeleted) deleted++;
  }
  return r.int(deleted);
}

async function exists(call: CommandCall): Promise<Reply> {
  let found = 0;
  for (const key of call.args.slice(1)) {
    if ((await call.server.kv.get(key)).record !== undefined || (await streamExists(call, key))) found++;
  }
  return r.int(found);
}

async function mset(call: CommandCall, ifNoneExist: boolean, name: string): Promise<Reply> {
  if (call.args.length % 2 === 0) return wrongArity(name);
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 1; i < call.args.length; i += 2) pairs.push([arg(call, i), arg(call, i + 1)]);
  const result = await call.server.kv.putMany(pairs, { ifNoneExist });
  return ifNoneExist ? r.int(result.written ? 1 : 0) : r.ok;
}

/** What an EXPIRE-family command asks: when, relative or absolute, and its condition. */
export interface ExpireRequest {
  readonly when: { readonly afterMs: number } | { readonly atMs: number };
  readonly condition?: NonNullable<NonNullable<Parameters<KvService["expire"]>[2]>["condition"]>;
}

/** Parses EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key amount [NX | XX | GT | LT]. */
export function parseExpire(
  name: string,
  unit: "s" | "ms",
  absolute: boolean,
  args: readonly Buffer[],
): { ok: true; request: ExpireRequest } | { ok: false; reply: Reply } {
  const amount = parseInteger(args[2] ?? Buffer.alloc(0));
  if (amount === undefined) return { ok: false, reply: notAnInteger };
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  for (const option of args.slice(3)) {
    const o = text(option).toLowerCase();
    if (o === "nx") nx = true;
    else if (o === "xx") xx = true;
    else if (o === "gt") gt = true;
    else if (o === "lt") lt = true;
    else return { ok: false, reply: r.error(`ERR Unsupported option ${text(option)}`) };
  }
  if (nx && (xx || gt || lt)) {
    return {
      ok: false,
      reply: r.error("ERR NX and XX, GT or LT options at the same time are not compatible"),
    };
  }
  if (gt && lt)
    return { ok: false, reply: r.error("ERR GT and LT options at the same time are not compatible") };
  const ms = unit === "s" ? amount * 1000n : amount;
  if (ms > BigInt(Number.MAX_SAFE_INTEGER) || ms < -BigInt(Number.MAX_SAFE_INTEGER))
    return { ok: false, reply: invalidExpire(name) };
  const condition = nx ? "nx" : xx ? "xx" : gt ? "gt" : lt ? "lt" : undefined;
  return {
    ok: true,
    request: {
      when: absolute ? { atMs: Number(ms) } : { afterMs: Number(ms) },
      ...(condition !== undefined ? { condition } : {}),
    },
  };
}

/** EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key amount [NX | XX | GT | LT] */
function expire(name: string, unit: "s" | "ms", absolute: boolean): CommandHandler {
  return async (call) => {
    const parsed = parseExpire(name, unit, absolute, call.args);
    if (!parsed.ok) return parsed.reply;
    const { when, condition } = parsed.request;
    const result = await call.server.kv.expire(
      arg(call, 1),
      when,
      condition !== undefined ? { condition } : {},
    );
    return r.int(result.changed ? 1 : 0);
  };
}

/** The reply of TTL / PTTL / EXPIRETIME / PEXPIRETIME for a key (absent: undefined) expiring then (0: never). */
export function ttlReply(
  expireAtMs: number | undefined,
  ms: boolean,
  absolute: boolean,
  nowMs: number,
): Reply {
  if (expireAtMs === undefined) return r.int(-2);
  if (expireAtMs === 0) return r.int(-1);
  const value = absolute ? expireAtMs : Math.max(0, expireAtMs - nowMs);
  return r.int(ms ? value : Math.floor((value + 500) / 1000));
}

/** TTL / PTTL / EXPIRETIME / PEXPIRETIME: a stream has no TTL (-1). */
function ttl(ms: boolean, absolute: boolean): CommandHandler {
  return async (call) => {
    const { record } = await call.server.kv.get(arg(call, 1));
    const stream = record === undefined && (await streamExists(call, arg(call, 1)));
    return ttlReply(stream ? 0 : record?.expireAtMs, ms, absolute, call.server.nowMs());
  };
}

async function rename(call: CommandCall, replace: boolean): Promise<Reply> {
  const result = await call.server.kv.copy(arg(call, 1), arg(call, 2), { move: true, replace });
  return replace ? r.ok : r.int(result.done ? 1 : 0);
}

/** COPY's options: [DB 0] [REPLACE]; a copy onto itself is refused as Redis refuses it. */
export function parseCopy(
  args: readonly Buffer[],
): { ok: true; replace: boolean } | { ok: false; reply: Reply } {
  let replace = false;
  for (let i = 3; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    if (option === "replace") replace = true;
    else if (option === "db" && i + 1 < args.length) {
      const db = parseInteger(args[++i] ?? Buffer.alloc(0));
      if (db === undefined) return { ok: false, reply: notAnInteger };
      if (db !== 0n) return { ok: false, reply: r.error("ERR DB index is out of range") };
    } else return { ok: false, reply: syntaxError };
  }
  if ((args[1] ?? Buffer.alloc(0)).equals(args[2] ?? Buffer.alloc(0))) {
    return { ok: false, reply: r.error("ERR source and destination objects are the same") };
  }
  return { ok: true, replace };
}

async function copy(call: CommandCall): Promise<Reply> {
  const options = parseCopy(call.args);
  if (!options.ok) return options.reply;
  const result = await call.server.kv.copy(arg(call, 1), arg(call, 2), {
    move: false,
    replace: options.replace,
  });
  return r.int(result.done ? 1 : 0);
}

/** A key of Redis's keyspace: a string key or a stream's name. */
interface KeyOfType {
  readonly key: Buffer;
  readonly type: "string" | "stream";
}

/**
 * The stream names after `cursor` (in byte order), at most `limit`. Stream names are ASCII: a
 * cursor with other bytes is cut before its first such byte and raised past every ASCII suffix.
 */
async function streamsAfter(
  call: CommandCall,
  cursor: Uint8Array | undefined,
  limit: number,
): Promise<Buffer[]> {
  let after: string | undefined;
  if (cursor !== undefined) {
    const cut = cursor.findIndex((byte) => byte >= 0x80);
    after = cut < 0 ? text(cursor) : `${text(cursor.subarray(0, cut))}\x7f`;
  }
  const { names } = await call.server.streams.names(limit, after);
  return names
    .map((name) => Buffer.from(name))
    .filter((name) => cursor === undefined || Buffer.compare(name, cursor) > 0);
}

/**
 * One page of the keyspace after `cursor`, in byte order: the first `limit` of the string keys and
 * the stream names together (a name that is both counts once, as a string, as TYPE says), and
 * whether more follow.
 */
async function keyspacePage(
  call: CommandCall,
  cursor: Uint8Array | undefined,
  limit: number,
): Promise<{ keys: KeyOfType[]; more: boolean }> {
  const page = await call.server.kv.range({
    start: new Uint8Array(0),
    limit,
    ...(cursor !== undefined ? { after: cursor } : {}),
  });
  const streams = await streamsAfter(call, cursor, limit);
  const byKey = new Map<string, KeyOfType>();
  for (const key of streams) byKey.set(key.toString("latin1"), { key, type: "stream" });
  for (const item of page.items) {
    const key = Buffer.from(item.key);
    byKey.set(key.toString("latin1"), { key, type: "string" });
  }
  const all = [...byKey.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  // Each source's page holds its first `limit` keys, so the first `limit` of the two are complete.
  return {
    keys: all.slice(0, limit),
    more: page.next !== undefined || streams.length === limit || all.length > limit,
  };
}

/** Every key matching `pattern`, in byte order, page by page. */
async function matchingKeys(call: CommandCall, pattern: Buffer): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  let cursor: Uint8Array | undefined;
  for (;;) {
    const page = await keyspacePage(call, cursor, call.server.kv.limits.rangeLimitMax);
    for (const { key } of page.keys) if (globMatch(pattern, key)) keys.push(key);
    cursor = page.keys.at(-1)?.key;
    if (!page.more || cursor === undefined) return keys;
  }
}

/**
 * A SCAN cursor that survives a change of leader or node: the last key returned, as the decimal
 * digits of 0x01 followed by its bytes (0 is the start and the end). Clients treat it as opaque.
 */
function encodeCursor(key: Uint8Array): string {
  return BigInt(`0x01${Buffer.from(key).toString("hex")}`).toString();
}

function decodeCursor(cursor: string): Uint8Array | undefined | "invalid" {
  if (!/^\d+$/.test(cursor)) return "invalid";
  if (/^0+$/.test(cursor)) return undefined;
  const hex = BigInt(cursor).toString(16);
  if (hex.length % 2 !== 0 || !hex.startsWith("01")) return "invalid";
  return Buffer.from(hex.slice(2), "hex");
}

async function scan(call: CommandCall): Promise<Reply> {
  const after = decodeCursor(text(call.args[1]));
  if (after === "invalid") return r.error("ERR invalid cursor");
  let pattern: Buffer | undefined;
  let count = 10;
  let type: string | undefined;
  for (let i = 2; i < call.args.length; i++) {
    const option = text(call.args[i]).toLowerCase();
    if (i + 1 >= call.args.length) return syntaxError;
    if (option === "match") pattern = arg(call, ++i);
    else if (option === "count") {
      const n = parseInteger(arg(call, ++i));
      if (n === undefined) return notAnInteger;
      if (n < 1n) return syntaxError;
      count = Number(n > 1000n ? 1000n : n);
    } else if (option === "type") type = text(call.args[++i]).toLowerCase();
    else return syntaxError;
  }
  const page = await keyspacePage(call, after, count);
  const last = page.keys.at(-1)?.key;
  const keys = page.keys
    .filter(
      (k) => (type === undefined || k.type === type) && (pattern === undefined || globMatch(pattern, k.key)),
    )
    .map((k) => r.bulk(k.key));
  return r.array([r.bulk(page.more && last !== undefined ? encodeCursor(last) : "0"), r.array(keys)]);
}

const write: readonly CommandFlag[] = ["write", "denyoom"];
const writeFast: readonly CommandFlag[] = ["write", "denyoom", "fast"];
const readFast: readonly CommandFlag[] = ["readonly", "fast"];
const del_: readonly CommandFlag[] = ["write"];
const one = [1, 1, 1] as const;
const all = [1, -1, 1] as const;

/** The string and key commands. */
export const keyCommands: readonly CommandSpec[] = [
  command("get", 2, readFast, one, "string", "1.0.0", "Returns the string value of a key.", get),
  command(
    "set",
    -3,
    write,
    one,
    "string",
    "1.0.0",
    "Sets the string value of a key, ignoring its type.",
    set,
  ),
  command(
    "setnx",
    3,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Sets the value of a key only when the key doesn't exist.",
    async (call) => {
      const result = await call.server.kv.set(arg(call, 1), arg(call, 2), { condition: "nx" });
      return r.int(result.written ? 1 : 0);
    },
  ),
  command(
    "setex",
    4,
    write,
    one,
    "string",
    "2.0.0",
    "Sets the value and expiration time of a key.",
    setWithExpiry("setex", "ex"),
  ),
  command(
    "psetex",
    4,
    write,
    one,
    "string",
    "2.6.0",
    "Sets the value and expiration time in milliseconds of a key.",
    setWithExpiry("psetex", "px"),
  ),
  command(
    "getset",
    3,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Returns the previous value of a key after setting it to a new value.",
    async (call) => {
      const result = await call.server.kv.set(arg(call, 1), arg(call, 2), { returnOld: true });
      return r.bulkOrNil(result.old);
    },
  ),
  command(
    "getdel",
    2,
    writeFast,
    one,
    "string",
    "6.2.0",
    "Returns the value of a key after deleting the key.",
    async (call) => {
      const result = await call.server.kv.update(arg(call, 1), { kind: "get-delete" });
      return r.bulkOrNil(result.value);
    },
  ),
  command(
    "getex",
    -2,
    writeFast,
    one,
    "string",
    "6.2.0",
    "Returns the value of a key after setting its expiration time.",
    getex,
  ),
  command(
    "mget",
    -2,
    readFast,
    all,
    "string",
    "1.0.0",
    "Atomically returns the string values of one or more keys.",
    async (call) => {
      const keys = call.args.slice(1);
      const values = await Promise.all(keys.map((key) => call.server.kv.get(key)));
      return r.array(values.map((v) => r.bulkOrNil(v.record?.value)));
    },
  ),
  command(
    "mset",
    -3,
    write,
    [1, -1, 2],
    "string",
    "1.0.1",
    "Atomically creates or modifies the string values of one or more keys.",
    (call) => mset(call, false, "mset"),
  ),
  command(
    "msetnx",
    -3,
    write,
    [1, -1, 2],
    "string",
    "1.0.1",
    "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    (call) => mset(call, true, "msetnx"),
  ),
  command(
    "append",
    3,
    writeFast,
    one,
    "string",
    "2.0.0",
    "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    async (call) => {
      const result = await call.server.kv.update(arg(call, 1), { kind: "append", bytes: arg(call, 2) });
      return r.int(result.length);
    },
  ),
  command(
    "strlen",
    2,
    readFast,
    one,
    "string",
    "2.2.0",
    "Returns the length of a string value.",
    async (call) => {
      const record = await stringRecord(call, arg(call, 1));
      return r.int(record?.value.length ?? 0);
    },
  ),
  command(
    "getrange",
    4,
    ["readonly"],
    one,
    "string",
    "2.4.0",
    "Returns a substring of the string stored at a key.",
    getrange,
  ),
  command(
    "setrange",
    4,
    write,
    one,
    "string",
    "2.2.0",
    "Overwrites a part of a string value with another by an offset.",
    setrange,
  ),
  command(
    "incr",
    2,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Increments the integer value of a key by one.",
    increment(1n, 1n, "incr"),
  ),
  command(
    "decr",
    2,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Decrements the integer value of a key by one.",
    increment(-1n, 1n, "decr"),
  ),
  command(
    "incrby",
    3,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Increments the integer value of a key by a number.",
    increment(1n, undefined, "incrby"),
  ),
  command(
    "decrby",
    3,
    writeFast,
    one,
    "string",
    "1.0.0",
    "Decrements a number from the integer value of a key.",
    increment(-1n, undefined, "decrby"),
  ),
  command(
    "incrbyfloat",
    3,
    writeFast,
    one,
    "string",
    "2.6.0",
    "Increment the floating point value of a key by a number.",
    incrbyfloat,
  ),
  command("del", -2, del_, all, "generic", "1.0.0", "Deletes one or more keys.", del),
  command(
    "unlink",
    -2,
    ["write", "fast"],
    all,
    "generic",
    "4.0.0",
    "Asynchronously deletes one or more keys.",
    del,
  ),
  command(
    "exists",
    -2,
    readFast,
    all,
    "generic",
    "1.0.0",
    "Determines whether one or more keys exist.",
    exists,
  ),
  command(
    "touch",
    -2,
    readFast,
    all,
    "generic",
    "3.2.1",
    "Returns the number of existing keys out of those specified.",
    exists,
  ),
  command(
    "type",
    2,
    readFast,
    one,
    "generic",
    "1.0.0",
    "Determines the type of value stored at a key.",
    async (call) => {
      const { record } = await call.server.kv.get(arg(call, 1));
      if (record !== undefined) return r.simple("string");
      return r.simple((await streamExists(call, arg(call, 1))) ? "stream" : "none");
    },
  ),
  command(
    "rename",
    3,
    ["write"],
    [1, 2, 1],
    "generic",
    "1.0.0",
    "Renames a key and overwrites the destination.",
    (call) => rename(call, true),
  ),
  command(
    "renamenx",
    3,
    ["write", "fast"],
    [1, 2, 1],
    "generic",
    "1.0.0",
    "Renames a key only when the target key name doesn't exist.",
    (call) => rename(call, false),
  ),
  command("copy", -3, write, [1, 2, 1], "generic", "6.2.0", "Copies the value of a key to a new key.", copy),
  command(
    "expire",
    -3,
    ["write", "fast"],
    one,
    "generic",
    "1.0.0",
    "Sets the expiration time of a key in seconds.",
    expire("expire", "s", false),
  ),
  command(
    "pexpire",
    -3,
    ["write", "fast"],
    one,
    "generic",
    "2.6.0",
    "Sets the expiration time of a key in milliseconds.",
    expire("pexpire", "ms", false),
  ),
  command(
    "expireat",
    -3,
    ["write", "fast"],
    one,
    "generic",
    "1.2.0",
    "Sets the expiration time of a key to a Unix timestamp.",
    expire("expireat", "s", true),
  ),
  command(
    "pexpireat",
    -3,
    ["write", "fast"],
    one,
    "generic",
    "2.6.0",
    "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    expire("pexpireat", "ms", true),
  ),
  command(
    "ttl",
    2,
    readFast,
    one,
    "generic",
    "1.0.0",
    "Returns the expiration time in seconds of a key.",
    ttl(false, false),
  ),
  command(
    "pttl",
    2,
    readFast,
    one,
    "generic",
    "2.6.0",
    "Returns the expiration time in milliseconds of a key.",
    ttl(true, false),
  ),
  command(
    "expiretime",
    2,
    readFast,
    one,
    "generic",
    "7.0.0",
    "Returns the expiration time of a key as a Unix timestamp.",
    ttl(false, true),
  ),
  command(
    "pexpiretime",
    2,
    readFast,
    one,
    "generic",
    "7.0.0",
    "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    ttl(true, true),
  ),
  command(
    "persist",
    2,
    ["write", "fast"],
    one,
    "generic",
    "2.2.0",
    "Removes the expiration time of a key.",
    async (call) => {
      const result = await call.server.kv.persist(arg(call, 1));
      return r.int(result.changed ? 1 : 0);
    },
  ),
  command(
    "keys",
    2,
    ["readonly"],
    [0, 0, 0],
    "generic",
    "1.0.0",
    "Returns all key names that match a pattern.",
    async (call) => r.array((await matchingKeys(call, arg(call, 1))).map(r.bulk)),
  ),
  command(
    "scan",
    -2,
    ["readonly"],
    [0, 0, 0],
    "generic",
    "2.8.0",
    "Iterates over the key names in the database.",
    scan,
  ),
  command(
    "randomkey",
    1,
    ["readonly"],
    [0, 0, 0],
    "generic",
    "1.0.0",
    "Returns a random key name from the database.",
    async (call) => {
      const page = await keyspacePage(call, undefined, 100);
      const item = page.keys[Math.floor(Math.random() * page.keys.length)];
      return item === undefined ? r.nil : r.bulk(item.key);
    },
  ),
  command(
    "dbsize",
    1,
    readFast,
    [0, 0, 0],
    "server",
    "1.0.0",
    "Returns the number of keys in the database.",
    async (call) => r.int((await call.server.kv.count()) + (await call.server.streams.names(0)).count),
  ),
  command(
    "flushall",
    -1,
    ["write"],
    [0, 0, 0],
    "server",
    "1.0.0",
    "Removes all keys from all databases.",
    flush,
  ),
  command(
    "flushdb",
    -1,
    ["write"],
    [0, 0, 0],
    "server",
    "1.0.0",
    "Remove all keys from the current database.",
    flush,
  ),
];

/** FLUSHALL / FLUSHDB's one option, [SYNC | ASYNC]: undefined when it is valid. */
export function flushRefused(args: readonly Buffer[]): Reply | undefined {
  if (args.length > 2) return syntaxError;
  const mode = args[1] === undefined ? "sync" : text(args[1]).toLowerCase();
  return mode === "sync" || mode === "async" ? undefined : syntaxError;
}

async function flush(call: CommandCall): Promise<Reply> {
  const refused = flushRefused(call.args);
  if (refused !== undefined) return refused;
  await call.server.kv.flush();
  return r.ok;
}
