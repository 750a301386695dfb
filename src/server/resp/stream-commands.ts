// Redis stream commands without consumer groups over StreamService: XADD, XLEN, XRANGE, XREVRANGE,
// XREAD (with BLOCK), XDEL, XTRIM and XINFO. A Redis stream is the Cairn stream of the same name,
// the one the HTTP API serves; stream-fields.ts maps entries to messages and stream-ids.ts maps
// ids. Replies and error texts follow Redis 7 (src/t_stream.c); docs/redis.md lists the differences.
import {
  type AppendInput,
  type GroupInfo,
  isCairnError,
  isStreamName,
  type StreamMessage,
  type StreamTrim,
} from "../../service/index.js";
import {
  type CommandCall,
  type CommandFlag,
  type CommandSpec,
  command,
  notAnInteger,
  parseInteger,
  syntaxError,
  text,
  wrongArity,
} from "./command-table.js";
import { type Reply, r } from "./resp-reply.js";
import { fieldsOfMessage, messageOfFields } from "./stream-fields.js";
import {
  compareId,
  formatId,
  idPartMax,
  invalidId,
  maxId,
  minId,
  parseAddId,
  parseBound,
  parseId,
  type StreamId,
} from "./stream-ids.js";

/** Entries one reply carries per stream at most, when the command gives no COUNT (a bound Redis lacks). */
export const streamReplyEntriesMax = 100_000;

const arg = (call: CommandCall, i: number): Buffer => call.args[i] ?? Buffer.alloc(0);

/** The stream a Redis key names, or undefined when no stream can have that name. */
export function streamName(key: Uint8Array | undefined): string | undefined {
  const name = text(key);
  return isStreamName(name) ? name : undefined;
}

/** Runs `read`; a missing stream (or group) answers `missing` instead. */
export async function unlessMissing<T>(read: () => Promise<T>, missing: T): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isCairnError(error) && error.code === "ERR_NOT_FOUND") return missing;
    throw error;
  }
}

/** An entry as Redis replies with it: its id and its field-value pairs. */
export function entryReply(message: StreamMessage): Reply {
  return r.array([r.bulk(message.id), r.array(fieldsOfMessage(message).map(r.bulk))]);
}

/** Replies of several streams: a map in RESP3, a list of [key, entries] pairs in RESP2, as Redis. */
export function streamsReply(call: CommandCall, streams: readonly (readonly [string, Reply])[]): Reply {
  if (call.client.version === 3) return r.map(streams.map(([name, entries]) => [r.bulk(name), entries]));
  return r.array(streams.map(([name, entries]) => r.array([r.bulk(name), entries])));
}

/**
 * The sequence of the first message whose id is `id` or later (`exact`: the message with that id,
 * or undefined). A message's id and sequence never change once it exists, so a local read that
 * finds it is enough; only a miss asks the leader (ReadIndex), for a message this node has not
 * applied yet.
 */
export async function seqOfId(
  call: CommandCall,
  name: string,
  id: StreamId,
  exact: boolean,
): Promise<number | undefined> {
  const query = { fromId: formatId(id), limit: 1, ...(exact ? { toId: formatId(id) } : {}) };
  const local = await call.server.streams.read(name, { ...query, consistency: "stale" });
  const found = local.messages[0];
  if (found !== undefined) return found.seq;
  const page = await call.server.streams.read(name, query);
  return page.messages[0]?.seq ?? (exact ? undefined : page.next);
}

/**
 * Reads messages from `from` (a sequence or an id, inclusive) up to the id `to`, oldest first or
 * newest first, at most `count` (no count: {@link streamReplyEntriesMax}), page by page.
 */
export async function readRange(
  call: CommandCall,
  name: string,
  from: { readonly seq: number } | { readonly id: StreamId },
  to: StreamId,
  reverse: boolean,
  count: number | undefined,
): Promise<StreamMessage[]> {
  const streams = call.server.streams;
  const wanted = count ?? streamReplyEntriesMax;
  const out: StreamMessage[] = [];
  let next: number | undefined;
  const toId = to === maxId ? {} : { toId: formatId(to) };
  for (;;) {
    const limit = Math.min(wanted - out.length, streams.limits.readLimitMax);
    // Forward: after the first page, go on from a sequence. Reverse: down to a sequence.
    const start =
      next !== undefined && !reverse
        ? { from: next }
        : "seq" in from
          ? { from: from.seq }
          : { fromId: formatId(from.id) };
    const end = next !== undefined && reverse ? { to: next } : toId;
    const page = await streams.read(name, { ...start, ...end, limit, ...(reverse ? { reverse } : {}) });
    out.push(...page.messages);
    if (out.length >= wanted || page.messages.length === 0 || (reverse && page.next === 0)) return out;
    next = page.next;
  }
}

/** Parses `COUNT n` where a command allows it; undefined count: none given, or 0 / negative where allowed. */
function countOption(raw: Buffer): number | Reply {
  const n = parseInteger(raw);
  if (n === undefined) return notAnInteger;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** XADD / XTRIM's trimming options, parsed. */
interface TrimOptions {
  readonly trim: StreamTrim | undefined;
  readonly noMkStream: boolean;
  /** The index of the first argument after the options (XADD's id). */
  readonly next: number;
}

/**
 * Parses [NOMKSTREAM] [MAXLEN | MINID [= | ~] threshold [LIMIT count]] from `args[2]`, as Redis's
 * streamParseAddOrTrimArgsOrReply: an argument that is no option ends them (XADD's id).
 */
function parseTrimOptions(args: readonly Buffer[], xadd: boolean): TrimOptions | Reply {
  let i = 2;
  let noMkStream = false;
  let strategy: "maxlen" | "minid" | undefined;
  let exact = true;
  let max = 0;
  let minid: StreamId = minId;
  let limit: number | undefined;
  for (; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    const more = args.length - 1 - i;
    if (xadd && option === "*") break;
    if ((option === "maxlen" || option === "minid") && more >= 1) {
      if (strategy !== undefined && strategy !== option) {
        return r.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
      }
      strategy = option;
      const mark = text(args[i + 1]);
      exact = true;
      if ((mark === "~" || mark === "=") && more >= 2) {
        exact = mark === "=";
        i++;
      }
      i++;
      if (option === "maxlen") {
        const n = parseInteger(args[i] ?? Buffer.alloc(0));
        if (n === undefined) return notAnInteger;
        if (n < 0n) return r.error("ERR The MAXLEN argument must be >= 0.");
        max = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
      } else {
        const id = parseId(args[i], 0);
        if (id === undefined) return invalidId;
        minid = id.id;
      }
    } else if (option === "limit" && more >= 1) {
      const n = parseInteger(args[i + 1] ?? Buffer.alloc(0));
      if (n === undefined) return notAnInteger;
      if (n < 0n) return r.error("ERR The LIMIT argument must be >= 0.");
      limit = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
      i++;
    } else if (xadd && option === "nomkstream") {
      noMkStream = true;
    } else if (xadd) {
      break;
    } else {
      return syntaxError;
    }
  }
  if (limit !== undefined && exact) {
    return r.error(
      strategy === undefined
        ? "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        : "ERR syntax error, LIMIT cannot be used without the special ~ option",
    );
  }
  if (strategy === undefined) return { trim: undefined, noMkStream, next: i };
  // LIMIT 0 is Redis's "no limit"; without LIMIT, an approximate trim removes at most 10,000.
  const bound = { exact, limit: limit ?? 0 };
  const trim: StreamTrim =
    strategy === "maxlen"
      ? { kind: "maxlen", max, ...bound }
      : { kind: "minid", ms: minid.ms, n: minid.n, ...bound };
  return { trim, noMkStream, next: i };
}

/** XADD's arguments, parsed: the stream, the append, and whether NOMKSTREAM was given. */
export interface XaddRequest {
  readonly name: string;
  readonly input: AppendInput;
  readonly noMkStream: boolean;
}

/** Parses XADD key [NOMKSTREAM] [MAXLEN | MINID [= | ~] threshold [LIMIT count]] <* | id> field value [...] */
export function parseXadd(args: readonly Buffer[], headersMax: number): XaddRequest | Reply {
  const options = parseTrimOptions(args, true);
  if ("t" in options) return options;
  const pairs = args.slice(options.next + 1);
  if (pairs.length === 0 || pairs.length % 2 !== 0) return wrongArity("xadd");
  const id = parseAddId(args[options.next]);
  if (!id.ok) return id.reply;
  const { payload, headers } = messageOfFields(pairs, headersMax);
  return {
    name: text(args[1]),
    noMkStream: options.noMkStream,
    input: {
      payload,
      headers,
      ...(options.noMkStream ? {} : { createIfMissing: {} }),
      ...(id.id !== undefined ? { id: id.id } : {}),
      ...(options.trim !== undefined ? { trim: options.trim } : {}),
    },
  };
}

/** XADD: the new entry's id; nil when NOMKSTREAM finds no stream. */
async function xadd(call: CommandCall): Promise<Reply> {
  const request = parseXadd(call.args, call.server.streams.limits.headersMax);
  if ("t" in request) return request;
  try {
    return r.bulk((await call.server.streams.append(request.name, request.input)).id);
  } catch (error) {
    if (request.noMkStream && isCairnError(error) && error.code === "ERR_NOT_FOUND") return r.nil;
    throw error;
  }
}

/** XLEN key */
async function xlen(call: CommandCall): Promise<Reply> {
  const name = streamName(call.args[1]);
  if (name === undefined) return r.int(0);
  return r.int(await unlessMissing(async () => (await call.server.streams.info(name)).messages, 0));
}

/** XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n] */
function xrange(reverse: boolean) {
  return async (call: CommandCall): Promise<Reply> => {
    const start = parseBound(call.args[reverse ? 3 : 2], "start");
    if (!start.ok) return start.reply;
    const end = parseBound(call.args[reverse ? 2 : 3], "end");
    if (!end.ok) return end.reply;
    let count: number | undefined;
    for (let i = 4; i < call.args.length; i++) {
      if (text(call.args[i]).toLowerCase() === "count" && i + 1 < call.args.length) {
        const n = countOption(arg(call, ++i));
        if (typeof n !== "number") return n;
        count = n;
      } else return syntaxError;
    }
    // As Redis: a COUNT of 0 or less answers a null array.
    if (count !== undefined && count <= 0) return { t: "null-array" };
    const name = streamName(call.args[1]);
    const from = start.id;
    const to = end.id;
    if (name === undefined || from === undefined || to === undefined || compareId(from, to) > 0)
      return r.array([]);
    const messages = await unlessMissing(
      () => readRange(call, name, { id: from }, to, reverse, count),
      [] as StreamMessage[],
    );
    return r.array(messages.map(entryReply));
  };
}

/** Where XREAD reads one stream from. */
type ReadCursor =
  | { readonly name: string; readonly afterId: StreamId }
  | { readonly name: string; readonly from: number };

/** Parses a blocking command's BLOCK value: milliseconds (0: no end). */
export function blockOption(raw: Buffer): number | Reply {
  const n = parseInteger(raw);
  if (n === undefined) return r.error("ERR timeout is not an integer or out of range");
  if (n < 0n) return r.error("ERR timeout is negative");
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/**
 * Waits for `attempt` to find something, for at most `blockMs` (0: until the client goes away), in
 * rounds no longer than the service's longest wait; each round is the service's own wait on the
 * apply notifier, so a write that lands wakes it at once and a waiting client costs no polling.
 */
export async function blockUntil<T>(
  call: CommandCall,
  blockMs: number,
  attempt: (waitMs: number) => Promise<T | undefined>,
): Promise<T | undefined> {
  const roundMax = call.server.streams.limits.waitMsMax;
  const deadline = blockMs === 0 ? Number.POSITIVE_INFINITY : performance.now() + blockMs;
  call.client.blocked = true;
  try {
    for (;;) {
      const left = deadline - performance.now();
      const found = await attempt(Math.max(0, Math.min(roundMax, Math.ceil(left))));
      if (found !== undefined || call.client.closed.aborted || performance.now() >= deadline) return found;
    }
  } finally {
    call.client.blocked = false;
  }
}

/** Parses the part of XREAD / XREADGROUP after STREAMS: keys, then as many ids. */
export function streamsAndIds(
  args: readonly Buffer[],
  at: number,
  command: "XREAD" | "XREADGROUP",
): { keys: Buffer[]; ids: Buffer[] } | Reply {
  const rest = args.slice(at);
  if (rest.length === 0 || rest.length % 2 !== 0) {
    return r.error(
      `ERR Unbalanced ${command} list of streams: for each stream key an ID or '${command === "XREAD" ? "$" : ">"}' must be specified.`,
    );
  }
  return { keys: rest.slice(0, rest.length / 2), ids: rest.slice(rest.length / 2) };
}

/** XREAD [COUNT n] [BLOCK ms] STREAMS key [key ...] id [id ...] */
async function xread(call: CommandCall): Promise<Reply> {
  let count: number | undefined;
  let blockMs: number | undefined;
  let i = 1;
  for (; i < call.args.length; i++) {
    const option = text(call.args[i]).toLowerCase();
    const more = i + 1 < call.args.length;
    if (option === "streams") break;
    if (option === "count" && more) {
      const n = countOption(arg(call, ++i));
      if (typeof n !== "number") return n;
      count = n > 0 ? n : undefined;
    } else if (option === "block" && more) {
      const n = blockOption(arg(call, ++i));
      if (typeof n !== "number") return n;
      blockMs = n;
    } else return syntaxError;
  }
  if (i >= call.args.length) return syntaxError;
  const parsed = streamsAndIds(call.args, i + 1, "XREAD");
  if ("t" in parsed) return parsed;
  const cursors: ReadCursor[] = [];
  for (const [k, key] of parsed.keys.entries()) {
    const raw = text(parsed.ids[k]);
    const name = streamName(key);
    if (raw === ">") {
      return r.error(
        "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
      );
    }
    let cursor: ReadCursor | undefined;
    if (raw === "$") {
      // The stream's end now, as a sequence: every round of a long block waits from the same place.
      const lastSeq =
        name === undefined
          ? 0
          : await unlessMissing(async () => (await call.server.streams.info(name)).lastSeq, 0);
      if (name !== undefined) cursor = { name, from: lastSeq + 1 };
    } else {
      const id = parseId(parsed.ids[k], 0);
      if (id === undefined) return invalidId;
      if (name !== undefined) cursor = { name, afterId: id.id };
    }
    if (cursor !== undefined) cursors.push(cursor);
  }
  const limit = Math.min(
    count ?? call.server.streams.limits.readLimitMax,
    call.server.streams.limits.readLimitMax,
  );
  const serviceCursors = cursors.map((c) =>
    "from" in c ? c : { name: c.name, afterId: formatId(c.afterId) },
  );
  const readOnce = async (waitMs: number) => {
    if (serviceCursors.length === 0) return undefined;
    const found = await call.server.streams.readMany(serviceCursors, {
      limit,
      waitMs,
      signal: call.client.closed,
    });
    return found.length > 0 ? found : undefined;
  };
  const found =
    blockMs === undefined || call.inExec === true
      ? await readOnce(0)
      : await blockUntil(call, blockMs, readOnce);
  if (found === undefined) return { t: "null-array" };
  const replies: (readonly [string, Reply])[] = [];
  for (const page of found) {
    const messages = [...page.messages];
    // A COUNT above the service's page, or none (Redis then answers every entry, Cairn up to a
    // bound): read on past the page while it came back full.
    const wanted = count ?? streamReplyEntriesMax;
    if (messages.length >= limit && wanted > messages.length) {
      messages.push(
        ...(await readRange(call, page.name, { seq: page.next }, maxId, false, wanted - messages.length)),
      );
    }
    replies.push([page.name, r.array(messages.map(entryReply))]);
  }
  return streamsReply(call, replies);
}

/** Parses ids from `args[from]` on; Redis's error if one is malformed. */
export function parseIds(args: readonly Buffer[], from: number): StreamId[] | Reply {
  const ids: StreamId[] = [];
  for (const raw of args.slice(from)) {
    const id = parseId(raw, 0);
    if (id === undefined) return invalidId;
    ids.push(id.id);
  }
  return ids;
}

/** The sequences of the messages with these ids that the stream holds (each once). */
export async function seqsOfIds(
  call: CommandCall,
  name: string,
  ids: readonly StreamId[],
  group?: string,
): Promise<number[]> {
  const seqs = await Promise.all(ids.map((id) => seqOfId(call, name, id, true)));
  const unresolved = ids.filter((_, i) => seqs[i] === undefined);
  if (group !== undefined && unresolved.length > 0) {
    // A message deleted while in flight (XDEL) has no sequence by id any more: its group's
    // in-flight list still names it.
    const { entries } = await call.server.streams.pending(name, group, {
      count: call.server.streams.limits.ackPendingMax,
    });
    const byId = new Map(entries.map((entry) => [entry.id, entry.seq]));
    for (const id of unresolved) seqs.push(byId.get(formatId(id)));
  }
  return [...new Set(seqs.filter((seq): seq is number => seq !== undefined))];
}

/** Splits `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The sequences of the messages named by the ids from `args[from]` on, in chunks a settle or delete
 * takes; undefined when no stream can have the key's name or it does not exist, Redis's error when
 * an id is malformed.
 */
export async function idsToSeqs(
  call: CommandCall,
  from: number,
  group?: string,
): Promise<{ name: string; chunks: number[][] } | Reply | undefined> {
  const ids = parseIds(call.args, from);
  if (!Array.isArray(ids)) return ids;
  const name = streamName(call.args[1]);
  if (name === undefined) return undefined;
  const seqs = await unlessMissing(() => seqsOfIds(call, name, ids, group), undefined);
  return seqs === undefined
    ? undefined
    : { name, chunks: chunks(seqs, call.server.streams.limits.settleSeqsMax) };
}

/** XDEL key id [id ...] */
async function xdel(call: CommandCall): Promise<Reply> {
  const found = await idsToSeqs(call, 2);
  if (found !== undefined && "t" in found) return found;
  let deleted = 0;
  for (const part of found?.chunks ?? []) {
    const name = found?.name ?? "";
    deleted += await unlessMissing(
      async () =>
        (await call.server.streams.deleteMessages(name, part, undefined, { keepPending: true })).deleted
          .length,
      0,
    );
  }
  return r.int(deleted);
}

/** XTRIM's arguments, parsed: the stream (undefined: no stream can have that name) and the trim. */
export function parseXtrim(args: readonly Buffer[]): { name: string | undefined; trim: StreamTrim } | Reply {
  const options = parseTrimOptions(args, false);
  if ("t" in options) return options;
  if (options.trim === undefined) return syntaxError;
  return { name: streamName(args[1]), trim: options.trim };
}

/** XTRIM key MAXLEN | MINID [= | ~] threshold [LIMIT count] */
async function xtrim(call: CommandCall): Promise<Reply> {
  const request = parseXtrim(call.args);
  if ("t" in request) return request;
  const { name, trim } = request;
  if (name === undefined) return r.int(0);
  return r.int(await unlessMissing(async () => (await call.server.streams.trim(name, trim)).trimmed, 0));
}

/** XINFO STREAM's [FULL [COUNT n]]: undefined without FULL, the entries to list, or Redis's error. */
function parseFull(call: CommandCall): { count: number } | Reply | undefined {
  const options = call.args.slice(3).map((a) => text(a).toLowerCase());
  if (options.length === 0) return undefined;
  const [full, count, n] = options;
  if (
    (options.length !== 1 && options.length !== 3) ||
    full !== "full" ||
    (n !== undefined && count !== "count")
  ) {
    const sub = text(call.args[1]);
    return r.error(`ERR unknown subcommand or wrong number of arguments for '${sub}'. Try XINFO HELP.`);
  }
  const asked = n === undefined ? 10n : parseInteger(arg(call, 5));
  if (asked === undefined) return notAnInteger;
  if (asked < 0n) return { count: 10 };
  const all = asked === 0n || asked > BigInt(streamReplyEntriesMax);
  return { count: all ? streamReplyEntriesMax : Number(asked) };
}

/** A group's position fields, as XINFO GROUPS and XINFO STREAM FULL give them. */
function groupPosition(group: GroupInfo): [Reply, Reply][] {
  return [
    [r.bulk("last-delivered-id"), r.bulk(group.lastDeliveredId)],
    [r.bulk("entries-read"), group.delivered > 0 ? r.int(group.nextSeq - 1) : r.nil],
    [r.bulk("lag"), r.int(group.backlog)],
  ];
}

/**
 * XINFO STREAM FULL's groups, as Redis 7.2 gives them: each group's position, its entries in
 * flight (at most `count` listed: id, consumer, delivery time, deliveries) and its consumers (by
 * name: seen and active times, and at most `count` of the entries each holds).
 */
async function fullGroupsReply(call: CommandCall, name: string, count: number): Promise<Reply[]> {
  const streams = call.server.streams;
  const { groups } = await streams.listGroups(name);
  const replies: Reply[] = [];
  for (const group of groups) {
    const { entries } = await streams.pending(name, group.name, { count: streams.limits.ackPendingMax });
    const { consumers } = await streams.consumers(name, group.name);
    const byName = [...consumers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const consumerReply = (c: (typeof consumers)[number]) => {
      const held = entries.filter((e) => e.consumer === c.name).slice(0, count);
      return r.map([
        [r.bulk("name"), r.bulk(c.name)],
        [r.bulk("seen-time"), r.int(c.seenMs)],
        [r.bulk("active-time"), r.int(c.activeMs === 0 ? -1 : c.activeMs)],
        [r.bulk("pel-count"), r.int(c.pending)],
        [
          r.bulk("pending"),
          r.array(held.map((e) => r.array([r.bulk(e.id), r.int(e.deliveredAtMs), r.int(e.deliveries)]))),
        ],
      ]);
    };
    const listed = entries.slice(0, count);
    replies.push(
      r.map([
        [r.bulk("name"), r.bulk(group.name)],
        ...groupPosition(group),
        [r.bulk("pel-count"), r.int(group.pending)],
        [
          r.bulk("pending"),
          r.array(
            listed.map((e) =>
              r.array([r.bulk(e.id), r.bulk(e.consumer), r.int(e.deliveredAtMs), r.int(e.deliveries)]),
            ),
          ),
        ],
        [r.bulk("consumers"), r.array(byName.map(consumerReply))],
      ]),
    );
  }
  return replies;
}

/** An id XSETID takes: `<ms>-<seq>` or `<ms>` (no `-` or `+`), within Cairn's id range. */
function strictId(raw: Buffer | undefined): StreamId | Reply {
  const parsed = parseId(raw, 0);
  if (parsed === undefined) return invalidId;
  if (parsed.clamped)
    return r.error(`ERR Cairn stream ids are at most ${idPartMax}-${idPartMax} (see docs/redis.md)`);
  return parsed.id;
}

/** XSETID's arguments, parsed: the stream (undefined: no stream can have the key's name) and the ids. */
export function parseXsetid(args: readonly Buffer[]):
  | {
      readonly name: string | undefined;
      readonly lastId: StreamId;
      readonly options: { readonly entriesAdded?: number; readonly maxDeletedId?: StreamId };
    }
  | Reply {
  const lastId = strictId(args[2]);
  if ("t" in lastId) return lastId;
  let entriesAdded: number | undefined;
  let maxDeletedId: StreamId | undefined;
  for (let i = 3; i < args.length; i += 2) {
    const option = text(args[i]).toLowerCase();
    if (i + 1 >= args.length) return syntaxError;
    if (option === "entriesadded") {
      const n = parseInteger(args[i + 1] ?? Buffer.alloc(0));
      if (n === undefined) return notAnInteger;
      if (n < 0n) return r.error("ERR entries_added must be positive");
      if (n > BigInt(Number.MAX_SAFE_INTEGER))
        return r.error(`ERR Cairn counts at most ${Number.MAX_SAFE_INTEGER} entries`);
      entriesAdded = Number(n);
    } else if (option === "maxdeletedid") {
      const id = strictId(args[i + 1]);
      if ("t" in id) return id;
      if (compareId(lastId, id) < 0) {
        return r.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
      }
      maxDeletedId = id;
    } else return syntaxError;
  }
  return {
    name: streamName(args[1]),
    lastId,
    options: {
      ...(entriesAdded !== undefined ? { entriesAdded } : {}),
      ...(maxDeletedId !== undefined ? { maxDeletedId } : {}),
    },
  };
}

/** XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id] */
async function xsetid(call: CommandCall): Promise<Reply> {
  const request = parseXsetid(call.args);
  if ("t" in request) return request;
  if (request.name === undefined) return r.error("ERR no such key");
  await call.server.streams.setId(request.name, request.lastId, request.options);
  return r.ok;
}

/** XINFO STREAM key / GROUPS key / CONSUMERS key group */
async function xinfo(call: CommandCall): Promise<Reply> {
  const sub = text(call.args[1]).toLowerCase();
  const name = streamName(call.args[2]);
  const noSuchKey = r.error("ERR no such key");
  const streams = call.server.streams;
  switch (sub) {
    case "stream": {
      if (name === undefined) return noSuchKey;
      const info = await unlessMissing(() => streams.info(name), undefined);
      if (info === undefined) return noSuchKey;
      // As Redis: [FULL [COUNT n]], checked once the key is found; COUNT 0 is all, below 0 is 10.
      const full = parseFull(call);
      if (full !== undefined && "t" in full) return full;
      const [first] = await readRange(call, name, { seq: 0 }, maxId, false, 1);
      // Cairn has no radix tree: its keys and nodes are reported as the blocks of 100 sequences
      // the messages span, which is what Redis reports for small entries appended in order.
      const blocks =
        info.messages === 0
          ? 0
          : Math.floor((info.lastSeq - 1) / 100) - Math.floor((info.firstSeq - 1) / 100) + 1;
      const common: [Reply, Reply][] = [
        [r.bulk("length"), r.int(info.messages)],
        [r.bulk("radix-tree-keys"), r.int(blocks)],
        [r.bulk("radix-tree-nodes"), r.int(Math.max(1, blocks + 1))],
        [r.bulk("last-generated-id"), r.bulk(info.lastId)],
        [r.bulk("max-deleted-entry-id"), r.bulk(info.maxDeletedId)],
        [r.bulk("entries-added"), r.int(info.entriesAdded)],
        [r.bulk("recorded-first-entry-id"), r.bulk(first?.id ?? "0-0")],
      ];
      if (full !== undefined) {
        const entries = await readRange(call, name, { seq: 0 }, maxId, false, full.count);
        return r.map([
          ...common,
          [r.bulk("entries"), r.array(entries.map(entryReply))],
          [r.bulk("groups"), r.array(await fullGroupsReply(call, name, full.count))],
        ]);
      }
      const [last] = await readRange(call, name, { seq: 0 }, maxId, true, 1);
      return r.map([
        ...common,
        [r.bulk("groups"), r.int(info.groups.length)],
        [r.bulk("first-entry"), first === undefined ? r.nil : entryReply(first)],
        [r.bulk("last-entry"), last === undefined ? r.nil : entryReply(last)],
      ]);
    }
    case "groups": {
      if (call.args.length !== 3) return wrongArity("xinfo|groups");
      if (name === undefined) return noSuchKey;
      const groups = await unlessMissing(async () => (await streams.listGroups(name)).groups, undefined);
      if (groups === undefined) return noSuchKey;
      const replies: Reply[] = [];
      for (const group of groups) {
        const { consumers } = await streams.consumers(name, group.name);
        replies.push(
          r.map([
            [r.bulk("name"), r.bulk(group.name)],
            [r.bulk("consumers"), r.int(consumers.length)],
            [r.bulk("pending"), r.int(group.pending)],
            ...groupPosition(group),
          ]),
        );
      }
      return r.array(replies);
    }
    case "consumers": {
      if (call.args.length !== 4) return wrongArity("xinfo|consumers");
      if (name === undefined) return noSuchKey;
      const group = text(call.args[3]);
      let exists = true;
      const listed = await unlessMissing(
        async () => (await streams.consumers(name, group)).consumers,
        undefined,
      );
      if (listed === undefined) {
        exists = await unlessMissing(async () => (await streams.info(name)) !== undefined, false);
        return exists
          ? r.error(`NOGROUP No such consumer group '${group}' for key name '${name}'`)
          : noSuchKey;
      }
      const now = call.server.nowMs();
      return r.array(
        listed.map((c) =>
          r.map([
            [r.bulk("name"), r.bulk(c.name)],
            [r.bulk("pending"), r.int(c.pending)],
            [r.bulk("idle"), r.int(Math.max(0, now - c.seenMs))],
            [r.bulk("inactive"), r.int(c.activeMs === 0 ? -1 : Math.max(0, now - c.activeMs))],
          ]),
        ),
      );
    }
    default:
      return r.error(`ERR unknown subcommand '${text(call.args[1]).slice(0, 128)}'. Try XINFO HELP.`);
  }
}

const write: readonly CommandFlag[] = ["write", "denyoom", "fast"];
const readonly: readonly CommandFlag[] = ["readonly"];
const one = [1, 1, 1] as const;

/** The stream commands without consumer groups. */
export const streamCommands: readonly CommandSpec[] = [
  command(
    "xadd",
    -5,
    write,
    one,
    "stream",
    "5.0.0",
    "Appends a new message to a stream. Creates the key if it doesn't exist.",
    xadd,
  ),
  command(
    "xsetid",
    -3,
    write,
    one,
    "stream",
    "5.0.0",
    "An internal command for replicating stream values.",
    xsetid,
  ),
  command(
    "xlen",
    2,
    ["readonly", "fast"],
    one,
    "stream",
    "5.0.0",
    "Return the number of messages in a stream.",
    xlen,
  ),
  command(
    "xrange",
    -4,
    readonly,
    one,
    "stream",
    "5.0.0",
    "Returns the messages from a stream within a range of IDs.",
    xrange(false),
  ),
  command(
    "xrevrange",
    -4,
    readonly,
    one,
    "stream",
    "5.0.0",
    "Returns the messages from a stream within a range of IDs in reverse order.",
    xrange(true),
  ),
  command(
    "xread",
    -4,
    ["readonly", "blocking"],
    [0, 0, 0],
    "stream",
    "5.0.0",
    "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
    xread,
  ),
  command(
    "xdel",
    -3,
    ["write", "fast"],
    one,
    "stream",
    "5.0.0",
    "Returns the number of messages after removing them from a stream.",
    xdel,
  ),
  command(
    "xtrim",
    -4,
    ["write"],
    one,
    "stream",
    "5.0.0",
    "Deletes messages from the beginning of a stream.",
    xtrim,
  ),
  command(
    "xinfo",
    -2,
    readonly,
    [0, 0, 0],
    "stream",
    "5.0.0",
    "A container for stream introspection commands.",
    xinfo,
    [
      command(
        "xinfo|stream",
        -3,
        readonly,
        [2, 2, 1],
        "stream",
        "5.0.0",
        "Returns information about a stream.",
        xinfo,
      ),
      command(
        "xinfo|groups",
        3,
        readonly,
        [2, 2, 1],
        "stream",
        "5.0.0",
        "Returns a list of the consumer groups of a stream.",
        xinfo,
      ),
      command(
        "xinfo|consumers",
        4,
        readonly,
        [2, 2, 1],
        "stream",
        "5.0.0",
        "Returns a list of the consumers in a consumer group.",
        xinfo,
      ),
    ],
  ),
];
