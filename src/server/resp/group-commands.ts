// Redis consumer-group commands over StreamService: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER,
// DELCONSUMER), XREADGROUP (with BLOCK, NOACK, `>` and history ids), XACK, XPENDING, XCLAIM and
// XAUTOCLAIM. A group created here behaves as Redis's: a message stays with its consumer until
// acknowledged or claimed (no ack deadline, no dead-lettering). Replies and error texts follow
// Redis 7 (src/t_stream.c); docs/redis.md lists the differences.
import { ackWaitNever, type DeliveredMessage, isCairnError, type StartAt } from "../../service/index.js";
import {
  type CommandCall,
  type CommandFlag,
  type CommandSpec,
  command,
  notAnInteger,
  parseInteger,
  syntaxError,
  text,
} from "./command-table.js";
import { type Reply, r } from "./resp-reply.js";
import {
  blockOption,
  blockUntil,
  chunks,
  entryReply,
  idsToSeqs,
  seqOfId,
  seqsOfIds,
  streamName,
  streamsAndIds,
  streamsReply,
  unlessMissing,
} from "./stream-commands.js";
import {
  compareId,
  formatId,
  idAfter,
  idOf,
  invalidId,
  parseBound,
  parseId,
  type StreamId,
} from "./stream-ids.js";

const arg = (call: CommandCall, i: number): Buffer => call.args[i] ?? Buffer.alloc(0);

const keyMustExist = r.error(
  "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
);
const noGroup = (key: string, group: string): Reply =>
  r.error(`NOGROUP No such key '${key}' or consumer group '${group}'`);
const noSuchGroup = (key: string, group: string): Reply =>
  r.error(`NOGROUP No such consumer group '${group}' for key name '${key}'`);

/** Whether the stream exists. */
async function streamExists(call: CommandCall, name: string | undefined): Promise<boolean> {
  if (name === undefined) return false;
  return unlessMissing(async () => (await call.server.streams.info(name)) !== undefined, false);
}

/**
 * Where a group created or moved to `raw` (`$` or an id) starts: the stream's end, its first
 * message, or the first message after the id (Redis delivers ids greater than the group's last).
 */
async function startOf(call: CommandCall, name: string, raw: Buffer): Promise<StartAt | Reply> {
  if (text(raw) === "$") return { kind: "new" };
  const id = parseId(raw, 0);
  if (id === undefined) return invalidId;
  const after = idAfter(id.id);
  if (id.id.ms === 0 && id.id.n === 0) return { kind: "first" };
  const seq = after === undefined ? undefined : await seqOfId(call, name, after, false);
  return { kind: "seq", seq: seq ?? Number.MAX_SAFE_INTEGER };
}

/** Parses [MKSTREAM] [ENTRIESREAD n] (MKSTREAM for CREATE only). */
function groupOptions(args: readonly Buffer[], from: number, create: boolean): { mkStream: boolean } | Reply {
  let mkStream = false;
  for (let i = from; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    if (create && option === "mkstream") mkStream = true;
    else if (option === "entriesread" && i + 1 < args.length) {
      // Accepted and checked; Cairn derives a group's entries read from its position.
      const n = parseInteger(args[++i] ?? Buffer.alloc(0));
      if (n === undefined) return notAnInteger;
      if (n < -1n) return r.error("ERR value for ENTRIESREAD must be positive or -1");
    } else return syntaxError;
  }
  return { mkStream };
}

/** XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER */
async function xgroup(call: CommandCall): Promise<Reply> {
  const sub = text(call.args[1]).toLowerCase();
  const key = text(call.args[2]);
  const name = streamName(call.args[2]);
  const group = text(call.args[3]);
  const streams = call.server.streams;
  switch (sub) {
    case "create": {
      const options = groupOptions(call.args, 5, true);
      if ("t" in options) return options;
      if (name === undefined) return keyMustExist;
      if (!(await streamExists(call, name))) {
        if (!options.mkStream) return keyMustExist;
        await streams.create(name).catch((error: unknown) => {
          // Created meanwhile with other settings (through HTTP, say): it exists, which is all MKSTREAM asks.
          if (!isCairnError(error) || error.code !== "ERR_CONFLICT") throw error;
        });
      }
      const startAt = await startOf(call, name, arg(call, 4));
      if ("t" in startAt) return startAt;
      try {
        const created = await streams.createGroup(name, group, {
          startAt,
          ackWaitMs: ackWaitNever,
          maxDeliveries: 0,
          maxAckPending: streams.limits.ackPendingMax,
        });
        return created.created ? r.ok : r.error("BUSYGROUP Consumer Group name already exists");
      } catch (error) {
        if (isCairnError(error) && error.code === "ERR_CONFLICT") {
          return r.error("BUSYGROUP Consumer Group name already exists");
        }
        throw error;
      }
    }
    case "setid": {
      const options = groupOptions(call.args, 5, false);
      if ("t" in options) return options;
      if (!(await streamExists(call, name)) || name === undefined) return keyMustExist;
      const startAt = await startOf(call, name, arg(call, 4));
      if ("t" in startAt) return startAt;
      const info = await streams.info(name);
      const nextSeq =
        startAt.kind === "new" ? info.lastSeq + 1 : startAt.kind === "seq" ? startAt.seq : info.firstSeq;
      const moved = await unlessMissing(async () => {
        await streams.setGroupPosition(name, group, Math.min(nextSeq, info.lastSeq + 1));
        return true;
      }, false);
      return moved ? r.ok : noSuchGroup(key, group);
    }
    case "destroy": {
      if (!(await streamExists(call, name)) || name === undefined) return keyMustExist;
      return r.int((await streams.deleteGroup(name, group)).deleted ? 1 : 0);
    }
    case "createconsumer":
    case "delconsumer": {
      if (!(await streamExists(call, name)) || name === undefined) return keyMustExist;
      const consumer = text(call.args[4]);
      const answer = await unlessMissing<Reply | undefined>(async () => {
        if (sub === "createconsumer") {
          return r.int((await streams.createConsumer(name, group, consumer)).created ? 1 : 0);
        }
        return r.int((await streams.deleteConsumer(name, group, consumer)).pending);
      }, undefined);
      return answer ?? noSuchGroup(key, group);
    }
    default:
      return r.error(`ERR unknown subcommand '${text(call.args[1]).slice(0, 128)}'. Try XGROUP HELP.`);
  }
}

/** The reply entries of delivered messages (JUSTID: their ids only). */
function deliveredReply(messages: readonly DeliveredMessage[], justId: boolean): Reply {
  return r.array(messages.map((m) => (justId ? r.bulk(m.id) : entryReply(m))));
}

/**
 * A consumer's history, in id order: its messages, and those deleted while it held them as Redis
 * answers them, `[id, nil]` (one trimmed while in flight has no id kept and is left out).
 */
function historyReply(
  held: {
    readonly messages: readonly DeliveredMessage[];
    readonly deleted: readonly number[];
    readonly deletedIds: readonly string[];
  },
  after: StreamId,
): Reply {
  const entries: [number, Reply][] = held.messages.map((m) => [m.seq, entryReply(m)]);
  for (const [i, seq] of held.deleted.entries()) {
    const id = held.deletedIds[i] ?? "";
    if (id !== "" && compareId(idOf(id), after) > 0) {
      entries.push([seq, r.array([r.bulk(id), { t: "null-array" }])]);
    }
  }
  return r.array(entries.sort(([a], [b]) => a - b).map(([, reply]) => reply));
}

/** XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key [key ...] id [id ...] */
async function xreadgroup(call: CommandCall): Promise<Reply> {
  let count: number | undefined;
  let blockMs: number | undefined;
  let noAck = false;
  let group: string | undefined;
  let consumer = "";
  let i = 1;
  for (; i < call.args.length; i++) {
    const option = text(call.args[i]).toLowerCase();
    const more = call.args.length - 1 - i;
    if (option === "streams") break;
    if (option === "group" && more >= 2) {
      group = text(call.args[i + 1]);
      consumer = text(call.args[i + 2]);
      i += 2;
    } else if (option === "count" && more >= 1) {
      const n = parseInteger(arg(call, ++i));
      if (n === undefined) return notAnInteger;
      count = n > 0n ? Number(n > 1_000_000n ? 1_000_000n : n) : undefined;
    } else if (option === "block" && more >= 1) {
      const n = blockOption(arg(call, ++i));
      if (typeof n !== "number") return n;
      blockMs = n;
    } else if (option === "noack") noAck = true;
    else return syntaxError;
  }
  if (i >= call.args.length) return syntaxError;
  if (group === undefined) return r.error("ERR Missing GROUP option for XREADGROUP");
  const parsed = streamsAndIds(call.args, i + 1, "XREADGROUP");
  if ("t" in parsed) return parsed;
  const streams = call.server.streams;
  const max = Math.min(count ?? streams.limits.fetchMax, streams.limits.fetchMax);
  const fresh: { stream: string; group: string }[] = [];
  const history: { stream: string; after: Buffer }[] = [];
  for (const [k, key] of parsed.keys.entries()) {
    const name = streamName(key);
    const raw = parsed.ids[k] ?? Buffer.alloc(0);
    if (name === undefined) {
      return r.error(
        `NOGROUP No such key '${text(key)}' or consumer group '${group}' in XREADGROUP with GROUP option`,
      );
    }
    if (text(raw) === ">") fresh.push({ stream: name, group });
    else {
      if (parseId(raw, 0) === undefined) return invalidId;
      history.push({ stream: name, after: raw });
    }
  }
  const g = group;
  const missing = (name: string) =>
    r.error(`NOGROUP No such key '${name}' or consumer group '${g}' in XREADGROUP with GROUP option`);
  try {
    const replies = new Map<string, Reply>();
    // A consumer's history: what it holds after the id, handed to it again (a delivery counted).
    for (const { stream, after } of history) {
      const id = parseId(after, 0);
      if (id === undefined || idAfter(id.id) === undefined) {
        replies.set(stream, r.array([]));
        continue;
      }
      // From just after the newest message at or before the id: entries deleted while held, which
      // no read by id finds, are in flight between the messages that are left.
      const before = await streams.read(stream, { toId: formatId(id.id), reverse: true, limit: 1 });
      const fromSeq = (before.messages[0]?.seq ?? 0) + 1;
      const held = await streams.claim(
        stream,
        g,
        consumer,
        { minIdleMs: 0, fromSeq, count: max },
        { ownOnly: true },
      );
      replies.set(stream, historyReply(held, id.id));
    }
    if (fresh.length > 0) {
      const fetchOnce = async (waitMs: number) => {
        const found = await streams.fetchMany(fresh, consumer, { max, waitMs, signal: call.client.closed });
        return found.length > 0 ? found : undefined;
      };
      // History is served at once; only new messages are waited for, and not inside MULTI.
      const wait = blockMs !== undefined && history.length === 0 && call.inExec !== true;
      const found = wait ? await blockUntil(call, blockMs ?? 0, fetchOnce) : await fetchOnce(0);
      for (const { stream, messages } of found ?? []) {
        if (noAck) {
          for (const part of chunks(
            messages.map((m) => m.seq),
            streams.limits.settleSeqsMax,
          )) {
            await streams.settle(stream, g, "ack", part);
          }
        }
        replies.set(stream, deliveredReply(messages, false));
      }
    }
    if (replies.size === 0) return { t: "null-array" };
    // In the order the streams were named.
    const ordered = parsed.keys
      .map((key) => text(key))
      .flatMap((name): [string, Reply][] => {
        const reply = replies.get(name);
        return reply === undefined ? [] : [[name, reply]];
      });
    return streamsReply(call, ordered);
  } catch (error) {
    if (isCairnError(error) && error.code === "ERR_NOT_FOUND") {
      const named = parsed.keys.map((key) => text(key));
      for (const name of named) if (!(await streamExists(call, name))) return missing(name);
      return missing(named[0] ?? "");
    }
    throw error;
  }
}

/** XACK key group id [id ...] */
async function xack(call: CommandCall): Promise<Reply> {
  const found = await idsToSeqs(call, 3, text(call.args[2]));
  if (found !== undefined && "t" in found) return found;
  const group = text(call.args[2]);
  let acked = 0;
  for (const part of found?.chunks ?? []) {
    const name = found?.name ?? "";
    acked += await unlessMissing(
      async () => (await call.server.streams.settle(name, group, "ack", part)).settled.length,
      0,
    );
  }
  return r.int(acked);
}

/** XPENDING key group [[IDLE min-idle-time] start end count [consumer]] */
async function xpending(call: CommandCall): Promise<Reply> {
  const key = text(call.args[1]);
  const group = text(call.args[2]);
  const name = streamName(call.args[1]);
  const streams = call.server.streams;
  const all = { count: streams.limits.ackPendingMax };
  if (call.args.length === 3) {
    if (name === undefined) return noGroup(key, group);
    const listed = await unlessMissing(
      async () => (await streams.pending(name, group, all)).entries,
      undefined,
    );
    if (listed === undefined) return noGroup(key, group);
    const first = listed[0];
    const last = listed.at(-1);
    if (first === undefined || last === undefined)
      return r.array([r.int(0), r.nil, r.nil, { t: "null-array" }]);
    const byConsumer = new Map<string, number>();
    for (const entry of listed) byConsumer.set(entry.consumer, (byConsumer.get(entry.consumer) ?? 0) + 1);
    const consumers = [...byConsumer].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return r.array([
      r.int(listed.length),
      r.bulk(first.id),
      r.bulk(last.id),
      r.array(consumers.map(([consumer, n]) => r.array([r.bulk(consumer), r.bulk(String(n))]))),
    ]);
  }
  let i = 3;
  let minIdleMs: number | undefined;
  if (text(call.args[3]).toLowerCase() === "idle") {
    if (call.args.length < 8) return syntaxError;
    const n = parseInteger(arg(call, 4));
    if (n === undefined) return notAnInteger;
    minIdleMs =
      n < 0n ? 0 : Number(n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n);
    i = 5;
  }
  if (call.args.length < i + 3) return syntaxError;
  const start = parseBound(call.args[i], "start");
  if (!start.ok) return start.reply;
  const end = parseBound(call.args[i + 1], "end");
  if (!end.ok) return end.reply;
  const countArg = parseInteger(arg(call, i + 2));
  if (countArg === undefined) return notAnInteger;
  const consumer = call.args[i + 3] === undefined ? undefined : text(call.args[i + 3]);
  if (name === undefined) return noGroup(key, group);
  const listed = await unlessMissing(
    async () =>
      (
        await streams.pending(name, group, {
          ...all,
          ...(consumer !== undefined ? { consumer } : {}),
          ...(minIdleMs !== undefined ? { minIdleMs } : {}),
        })
      ).entries,
    undefined,
  );
  if (listed === undefined) return noGroup(key, group);
  const from = start.id;
  const to = end.id;
  if (countArg <= 0n || from === undefined || to === undefined) return r.array([]);
  const inRange = listed.filter((e) => compareId(idOf(e.id), from) >= 0 && compareId(idOf(e.id), to) <= 0);
  return r.array(
    inRange
      .slice(0, Number(countArg > 1_000_000n ? 1_000_000n : countArg))
      .map((e) => r.array([r.bulk(e.id), r.bulk(e.consumer), r.int(e.idleMs), r.int(e.deliveries)])),
  );
}

/** XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id] */
async function xclaim(call: CommandCall): Promise<Reply> {
  const key = text(call.args[1]);
  const group = text(call.args[2]);
  const consumer = text(call.args[3]);
  const minIdle = parseInteger(arg(call, 4));
  if (minIdle === undefined) return r.error("ERR Invalid min-idle-time argument for XCLAIM");
  let i = 5;
  const ids: StreamId[] = [];
  for (; i < call.args.length; i++) {
    const id = parseId(call.args[i], 0);
    if (id === undefined) break;
    ids.push(id.id);
  }
  let idleMs: number | undefined;
  let retryCount: number | undefined;
  let force = false;
  let justId = false;
  const clamp = (n: bigint) =>
    Number(n < 0n ? 0n : n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n);
  for (; i < call.args.length; i++) {
    const option = text(call.args[i]).toLowerCase();
    const more = i + 1 < call.args.length;
    if (option === "force") force = true;
    else if (option === "justid") justId = true;
    else if ((option === "idle" || option === "time" || option === "retrycount") && more) {
      const n = parseInteger(arg(call, ++i));
      if (n === undefined) {
        return r.error(
          option === "retrycount"
            ? "ERR Invalid RETRYCOUNT option argument for XCLAIM"
            : `ERR Invalid ${option.toUpperCase()} option argument for XCLAIM`,
        );
      }
      if (option === "retrycount") retryCount = clamp(n);
      else idleMs = option === "idle" ? clamp(n) : clamp(BigInt(call.server.nowMs()) - n);
    } else if (option === "lastid" && more) {
      // Accepted and checked: Cairn's group position moves by deliveries only (docs/redis.md).
      if (parseId(call.args[++i], 0) === undefined) return invalidId;
    } else return r.error(`ERR Unrecognized XCLAIM option '${text(call.args[i])}'`);
  }
  const name = streamName(call.args[1]);
  if (name === undefined) return noGroup(key, group);
  const streams = call.server.streams;
  const claimed = await unlessMissing(async () => {
    const seqs = await seqsOfIds(call, name, ids, group);
    if (seqs.length === 0) {
      await streams.consumers(name, group);
      return [];
    }
    return (
      await streams.claim(
        name,
        group,
        consumer,
        { minIdleMs: clamp(minIdle), seqs },
        {
          justId,
          ...(idleMs !== undefined ? { idleMs } : {}),
          ...(retryCount !== undefined ? { retryCount } : {}),
          force,
        },
      )
    ).messages;
  }, undefined);
  if (claimed === undefined) return noGroup(key, group);
  return deliveredReply(claimed, justId);
}

/** XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID] */
async function xautoclaim(call: CommandCall): Promise<Reply> {
  const key = text(call.args[1]);
  const group = text(call.args[2]);
  const consumer = text(call.args[3]);
  const minIdle = parseInteger(arg(call, 4));
  if (minIdle === undefined) return r.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
  const start = parseBound(call.args[5], "start");
  if (!start.ok) return start.reply;
  const streams = call.server.streams;
  let count = 100;
  let justId = false;
  for (let i = 6; i < call.args.length; i++) {
    const option = text(call.args[i]).toLowerCase();
    if (option === "justid") justId = true;
    else if (option === "count" && i + 1 < call.args.length) {
      const n = parseInteger(arg(call, ++i));
      if (n === undefined) return notAnInteger;
      if (n < 1n || n > BigInt(Number.MAX_SAFE_INTEGER)) return r.error("ERR COUNT must be > 0");
      count = Math.min(Number(n), streams.limits.fetchMax);
    } else return syntaxError;
  }
  const name = streamName(call.args[1]);
  const from = start.id;
  if (name === undefined || from === undefined) return noGroup(key, group);
  const answer = await unlessMissing(async () => {
    // From the newest message at or before the start: entries deleted while in flight, which no
    // read by id finds, are in flight between the messages that are left.
    const before = (await streams.read(name, { toId: formatId(from), reverse: true, limit: 1 })).messages[0];
    const fromSeq =
      before === undefined ? 0 : compareId(idOf(before.id), from) === 0 ? before.seq : before.seq + 1;
    const result = await streams.claim(
      name,
      group,
      consumer,
      {
        minIdleMs: Number(
          minIdle < 0n
            ? 0n
            : minIdle > BigInt(Number.MAX_SAFE_INTEGER)
              ? BigInt(Number.MAX_SAFE_INTEGER)
              : minIdle,
        ),
        fromSeq,
        count,
      },
      { justId },
    );
    // The cursor: the id of the first entry in flight at or after where the scan stopped.
    let cursor = "0-0";
    if (result.next !== 0) {
      const { entries } = await streams.pending(name, group, { fromSeq: result.next, count: 1 });
      cursor = entries[0]?.id ?? "0-0";
    }
    return { cursor, messages: result.messages, deletedIds: result.deletedIds };
  }, undefined);
  if (answer === undefined) return noGroup(key, group);
  // The ids of entries deleted while in flight (XDEL), now dropped from the group. Cairn does not
  // keep the ids of messages trimmed while in flight: those are dropped unnamed.
  const deleted = answer.deletedIds.filter((id) => id !== "").map(r.bulk);
  return r.array([r.bulk(answer.cursor), deliveredReply(answer.messages, justId), r.array(deleted)]);
}

const write: readonly CommandFlag[] = ["write", "fast"];
const one = [1, 1, 1] as const;
const sub = (name: string, arity: number, summary: string) =>
  command(`xgroup|${name}`, arity, ["write", "denyoom"], [2, 2, 1], "stream", "5.0.0", summary, xgroup);

/** The consumer-group commands. */
export const groupCommands: readonly CommandSpec[] = [
  command(
    "xgroup",
    -2,
    ["write"],
    [0, 0, 0],
    "stream",
    "5.0.0",
    "A container for consumer groups commands.",
    xgroup,
    [
      sub("create", -5, "Creates a consumer group."),
      sub("setid", -5, "Sets the last-delivered ID of a consumer group."),
      sub("destroy", 4, "Destroys a consumer group."),
      sub("createconsumer", 5, "Creates a consumer in a consumer group."),
      sub("delconsumer", 5, "Deletes a consumer from a consumer group."),
    ],
  ),
  command(
    "xreadgroup",
    -7,
    ["write", "blocking"],
    [0, 0, 0],
    "stream",
    "5.0.0",
    "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
    xreadgroup,
  ),
  command(
    "xack",
    -4,
    write,
    one,
    "stream",
    "5.0.0",
    "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
    xack,
  ),
  command(
    "xpending",
    -3,
    ["readonly"],
    one,
    "stream",
    "5.0.0",
    "Returns the information and entries from a stream consumer group's pending entries list.",
    xpending,
  ),
  command(
    "xclaim",
    -6,
    write,
    one,
    "stream",
    "5.0.0",
    "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
    xclaim,
  ),
  command(
    "xautoclaim",
    -6,
    write,
    one,
    "stream",
    "6.2.0",
    "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
    xautoclaim,
  ),
];
