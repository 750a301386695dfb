// Redis stream ids as the Redis adapter reads and writes them. A Redis id is `<ms>-<seq>`, two
// unsigned 64-bit numbers; a Cairn message keeps exactly such an id beside its own sequence number
// (dense, 1, 2, 3 ... in append order), but holds each part as a safe integer (at most 2^53 - 1,
// 9007199254740991). So ids beyond that are refused when written and read as the largest one when
// they bound a range, which selects the same messages. docs/redis.md states the mapping.
import type { GivenId } from "../../service/index.js";
import { text } from "./command-table.js";
import { type Reply, r } from "./resp-reply.js";

/** A stream id as two safe integers, ordered as Redis orders ids. */
export interface StreamId {
  readonly ms: number;
  readonly n: number;
}

/** The largest part of an id Cairn keeps. */
export const idPartMax = Number.MAX_SAFE_INTEGER;
/** The smallest id. */
export const minId: StreamId = { ms: 0, n: 0 };
/** The largest id Cairn keeps. */
export const maxId: StreamId = { ms: idPartMax, n: idPartMax };

/** Redis's reply to an id it cannot read. */
export const invalidId: Reply = r.error("ERR Invalid stream ID specified as stream command argument");

const U64_MAX = 2n ** 64n - 1n;

/** A decimal u64 as Redis reads one, clamped to {@link idPartMax}; undefined when it is not one. */
function part(digits: string): { value: number; clamped: boolean } | undefined {
  if (!/^\d{1,20}$/.test(digits)) return undefined;
  const value = BigInt(digits);
  if (value > U64_MAX) return undefined;
  return value > BigInt(idPartMax)
    ? { value: idPartMax, clamped: true }
    : { value: Number(value), clamped: false };
}

/**
 * Parses `<ms>-<seq>` or `<ms>` (its seq then `missing`), or undefined. `clamped` says a part was
 * above {@link idPartMax} and was read as it.
 */
export function parseId(
  arg: Uint8Array | undefined,
  missing: number,
): { id: StreamId; clamped: boolean } | undefined {
  const s = text(arg);
  const dash = s.indexOf("-");
  const ms = part(dash === -1 ? s : s.slice(0, dash));
  const n = dash === -1 ? { value: missing, clamped: false } : part(s.slice(dash + 1));
  if (ms === undefined || n === undefined) return undefined;
  return { id: { ms: ms.value, n: n.value }, clamped: ms.clamped || n.clamped };
}

/** A range bound of XRANGE / XREVRANGE / XPENDING: `-`, `+`, an id, or `(` and an id (exclusive). */
export function parseBound(
  arg: Uint8Array | undefined,
  side: "start" | "end",
): { ok: true; id: StreamId | undefined } | { ok: false; reply: Reply } {
  const s = text(arg);
  if (s === "-") return { ok: true, id: minId };
  if (s === "+") return { ok: true, id: maxId };
  const exclusive = s.startsWith("(");
  const parsed = parseId(Buffer.from(exclusive ? s.slice(1) : s, "latin1"), side === "start" ? 0 : idPartMax);
  if (parsed === undefined) return { ok: false, reply: invalidId };
  if (!exclusive) return { ok: true, id: parsed.id };
  // An exclusive bound at the very end of the id space leaves nothing: undefined, an empty range.
  const id = side === "start" ? idAfter(parsed.id) : idBefore(parsed.id);
  if (id === undefined || parsed.clamped) {
    return { ok: false, reply: r.error(`ERR invalid ${side} ID for the interval`) };
  }
  return { ok: true, id };
}

/** The id right after `id`, if any. */
export function idAfter(id: StreamId): StreamId | undefined {
  if (id.n < idPartMax) return { ms: id.ms, n: id.n + 1 };
  return id.ms < idPartMax ? { ms: id.ms + 1, n: 0 } : undefined;
}

/** The id right before `id`, if any. */
export function idBefore(id: StreamId): StreamId | undefined {
  if (id.n > 0) return { ms: id.ms, n: id.n - 1 };
  return id.ms > 0 ? { ms: id.ms - 1, n: idPartMax } : undefined;
}

/** Orders ids as Redis does. */
export function compareId(a: StreamId, b: StreamId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.n - b.n;
}

/** `<ms>-<seq>`. */
export function formatId(id: StreamId): string {
  return `${id.ms}-${id.n}`;
}

/** Reads a Cairn message id (always `<ms>-<n>`). */
export function idOf(id: string): StreamId {
  const dash = id.indexOf("-");
  return { ms: Number(id.slice(0, dash)), n: Number(id.slice(dash + 1)) };
}

/**
 * XADD's id argument: `*` (undefined: the leader's clock gives it), `<ms>-*`, `<ms>` or
 * `<ms>-<seq>`; Redis's errors for a malformed id and for 0-0, Cairn's for parts above 2^53 - 1.
 */
export function parseAddId(
  arg: Uint8Array | undefined,
): { ok: true; id: GivenId | undefined } | { ok: false; reply: Reply } {
  const s = text(arg);
  if (s === "*") return { ok: true, id: undefined };
  const auto = s.endsWith("-*");
  const parsed = parseId(Buffer.from(auto ? s.slice(0, -2) : s, "latin1"), 0);
  if (parsed === undefined || (auto && s.slice(0, -2).includes("-"))) return { ok: false, reply: invalidId };
  if (parsed.clamped) {
    return {
      ok: false,
      reply: r.error(`ERR Cairn stream ids are at most ${idPartMax}-${idPartMax} (see docs/redis.md)`),
    };
  }
  if (auto) return { ok: true, id: { ms: parsed.id.ms } };
  if (parsed.id.ms === 0 && parsed.id.n === 0) {
    return { ok: false, reply: r.error("ERR The ID specified in XADD must be greater than 0-0") };
  }
  return { ok: true, id: parsed.id };
}
