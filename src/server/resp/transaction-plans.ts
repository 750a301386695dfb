// How a command queued in MULTI becomes part of one transaction entry: its KV steps, and how its
// reply is built from their results once the entry applied. EXEC proposes every queued command's
// steps as one KvService.transaction, so they apply atomically, with WATCH checked at apply time.
// Every command that reads or writes keys has a plan here; a command without one touches no key
// (PING, CLIENT, INFO...) or reads the whole keyspace (KEYS, SCAN, DBSIZE, RANDOMKEY), and EXEC
// runs it in its place among the replies, after the entry applied.
import { isCairnError, type KvStep, type StepResult } from "../../service/index.js";
import { type CommandCall, notAnInteger, parseInteger, text, wrongArity } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import {
  type Expiry,
  expiryAmount,
  floatIncrement,
  flushRefused,
  parseCopy,
  parseExpire,
  parseGetexOptions,
  parseRange,
  parseSetOptions,
  setrangeOffset,
  substringReply,
  ttlReply,
} from "./key-commands.js";
import { wrongType } from "./key-types.js";
import { type Reply, r } from "./resp-reply.js";
import { type Planner, refusalReply, streamPlanners, type TransactionPlan } from "./stream-plans.js";

export type { TransactionPlan } from "./stream-plans.js";

const at = (args: readonly Buffer[], i: number): Buffer => args[i] ?? Buffer.alloc(0);

/** The reply of a refused step, or undefined when it succeeded. */
function refused(result: StepResult | undefined): Reply | undefined {
  if (result === undefined) return r.error("ERR internal error: a transaction step has no result");
  return result.ok ? undefined : refusalReply(result);
}

function single(step: KvStep, reply: (result: StepResult) => Reply): TransactionPlan {
  return { steps: [step], reply: ([result]) => refused(result) ?? (result ? reply(result) : r.nil) };
}

/**
 * A read of one key; `reply` gets its value (null: absent), expiry (0: never) and whether a stream
 * has the name instead (Redis's one keyspace).
 */
const read = (key: Buffer, reply: (value: Uint8Array | null, expireAtMs: number, stream: boolean) => Reply) =>
  single({ type: "read", key }, (result) =>
    result.kind === "kv.read" ? reply(result.value, result.expireAtMs, result.stream) : r.nil,
  );

/** A string command's read of one key: a stream's name answers WRONGTYPE. */
const readString = (key: Buffer, reply: (value: Uint8Array | null, expireAtMs: number) => Reply) =>
  read(key, (value, expireAtMs, stream) =>
    stream ? r.error(respErrorOf.ERR_WRONG_TYPE(wrongType())) : reply(value, expireAtMs),
  );

function increment(sign: 1n | -1n, fixed: bigint | undefined): Planner {
  return ({ args }) => {
    const by = fixed ?? parseInteger(at(args, 2));
    if (by === undefined) return notAnInteger;
    if (sign === -1n && by === -(2n ** 63n)) return r.error("ERR decrement would overflow");
    return single({ type: "increment", key: at(args, 1), by: sign * by }, (result) =>
      result.kind === "kv.increment" && result.ok ? r.int(BigInt(result.value)) : r.nil,
    );
  };
}

/** One step per key; the reply counts the keys whose result passes `count`. */
function keysPlan(
  args: readonly Buffer[],
  step: (key: Buffer) => KvStep,
  count: (result: StepResult) => boolean,
): TransactionPlan {
  const steps = args.slice(1).map(step);
  return { steps, reply: (results) => r.int(results.filter(count).length) };
}

const deleted = (x: StepResult) => x.kind === "kv.delete" && x.ok && x.deleted;
const present = (x: StepResult) => x.kind === "kv.read" && (x.value !== null || x.stream);

/** The service's refusal of a relative expiry over `ttlMsMax`, as the command alone would answer it. */
function ttlRefused(expiry: Expiry | undefined, server: CommandCall["server"]): Reply | undefined {
  const max = server.kv.limits.ttlMsMax;
  return expiry?.kind === "after" && expiry.ms > max
    ? r.error(`ERR a TTL may be at most ${max} ms`)
    : undefined;
}

function setPlan(
  { args, server }: CommandCall,
  expiryUnit?: "ex" | "px",
  name = "set",
): TransactionPlan | Reply {
  if (expiryUnit !== undefined) {
    const amount = expiryAmount(name, expiryUnit, at(args, 2));
    if (!amount.ok) return amount.reply;
    return (
      ttlRefused(amount.expiry, server) ??
      single({ type: "set", key: at(args, 1), value: at(args, 3), expiry: amount.expiry }, () => r.ok)
    );
  }
  const options = parseSetOptions(args);
  if ("t" in options) return options;
  const refusedTtl = ttlRefused(options.expiry, server);
  if (refusedTtl !== undefined) return refusedTtl;
  return single({ type: "set", key: at(args, 1), value: at(args, 2), ...options }, (result) => {
    if (result.kind !== "kv.set" || !result.ok) return r.nil;
    if (options.returnOld) return r.bulkOrNil(result.old);
    return result.written ? r.ok : r.nil;
  });
}

/** A read-modify-write of one key; `reply` gets the value and length after (or before) it. */
function update(
  key: Buffer,
  op: Extract<KvStep, { type: "update" }>["op"],
  reply: (value: Uint8Array | null, length: number) => Reply,
): TransactionPlan {
  return single({ type: "update", key, op }, (result) =>
    result.kind === "kv.update" && result.ok ? reply(result.value, result.length) : r.nil,
  );
}

/** TTL / PTTL / EXPIRETIME / PEXPIRETIME: a stream has no TTL (-1). */
function ttlPlan(ms: boolean, absolute: boolean): Planner {
  return ({ args, server }) =>
    read(at(args, 1), (value, expireAtMs, stream) =>
      ttlReply(stream ? 0 : value === null ? undefined : expireAtMs, ms, absolute, server.nowMs()),
    );
}

function expirePlan(name: string, unit: "s" | "ms", absolute: boolean): Planner {
  return ({ args, server }) => {
    const parsed = parseExpire(name, unit, absolute, args);
    if (!parsed.ok) return parsed.reply;
    const { when, condition } = parsed.request;
    if ("afterMs" in when) {
      const refusedTtl = ttlRefused({ kind: "after", ms: when.afterMs }, server);
      if (refusedTtl !== undefined) return refusedTtl;
    }
    // As KvService.expire: the log carries no negative times, so a relative time already past is
    // the earliest absolute one.
    const ms = "afterMs" in when ? when.afterMs : when.atMs;
    const expiry =
      "afterMs" in when && ms >= 0
        ? { kind: "after" as const, ms }
        : { kind: "at" as const, ms: Math.max(0, ms) };
    return single(
      { type: "set-ttl", key: at(args, 1), expiry, ...(condition !== undefined ? { condition } : {}) },
      (result) => r.int(result.kind === "kv.set-ttl" && result.ok && result.changed ? 1 : 0),
    );
  };
}

function renamePlan(replace: boolean): Planner {
  return ({ args }) =>
    single({ type: "copy", from: at(args, 1), to: at(args, 2), move: true, replace }, (result) => {
      if (replace) return r.ok;
      return r.int(result.kind === "kv.copy" && result.ok && result.done ? 1 : 0);
    });
}

function msetPlan(ifNoneExist: boolean, name: string): Planner {
  return ({ args }) => {
    if (args.length % 2 === 0) return wrongArity(name);
    const pairs: [Buffer, Buffer][] = [];
    for (let i = 1; i < args.length; i += 2) pairs.push([at(args, i), at(args, i + 1)]);
    return single({ type: "put-many", pairs, ...(ifNoneExist ? { ifNoneExist } : {}) }, (result) =>
      ifNoneExist ? r.int(result.kind === "kv.put-many" && result.written ? 1 : 0) : r.ok,
    );
  };
}

function getexPlan({ args, server }: CommandCall): TransactionPlan | Reply {
  const options = parseGetexOptions(args);
  if (!options.ok) return options.reply;
  const expiry: Expiry | undefined = options.expiry;
  const refusedTtl = ttlRefused(expiry, server);
  if (refusedTtl !== undefined) return refusedTtl;
  if (expiry === undefined) return readString(at(args, 1), (value) => r.bulkOrNil(value));
  return update(at(args, 1), { kind: "get-expire", expiry }, (value) => r.bulkOrNil(value));
}

function flushPlan({ args }: CommandCall): TransactionPlan | Reply {
  return flushRefused(args) ?? single({ type: "flush" }, () => r.ok);
}

/** The commands that read or write keys, by name: each becomes steps of the transaction entry. */
export const transactionPlanners: ReadonlyMap<string, Planner> = new Map<string, Planner>([
  ["get", ({ args }) => readString(at(args, 1), (value) => r.bulkOrNil(value))],
  ["strlen", ({ args }) => readString(at(args, 1), (value) => r.int(value?.length ?? 0))],
  [
    "getrange",
    ({ args }) => {
      const range = parseRange(args);
      if (!range.ok) return range.reply;
      return readString(at(args, 1), (value) =>
        substringReply(value ?? new Uint8Array(0), range.start, range.end),
      );
    },
  ],
  [
    "type",
    ({ args }) =>
      read(at(args, 1), (value, _, stream) =>
        r.simple(stream ? "stream" : value === null ? "none" : "string"),
      ),
  ],
  ["set", (call) => setPlan(call)],
  ["setex", (call) => setPlan(call, "ex", "setex")],
  ["psetex", (call) => setPlan(call, "px", "psetex")],
  [
    "setnx",
    ({ args }) =>
      single(
        { type: "set", key: at(args, 1), value: at(args, 2), condition: "nx", expiry: { kind: "never" } },
        (result) => r.int(result.kind === "kv.set" && result.ok && result.written ? 1 : 0),
      ),
  ],
  [
    "getset",
    ({ args }) =>
      single(
        { type: "set", key: at(args, 1), value: at(args, 2), returnOld: true, expiry: { kind: "never" } },
        (result) => (result.kind === "kv.set" && result.ok ? r.bulkOrNil(result.old) : r.nil),
      ),
  ],
  ["getdel", ({ args }) => update(at(args, 1), { kind: "get-delete" }, (value) => r.bulkOrNil(value))],
  ["getex", getexPlan],
  ["incr", increment(1n, 1n)],
  ["decr", increment(-1n, 1n)],
  ["incrby", increment(1n, undefined)],
  ["decrby", increment(-1n, undefined)],
  [
    "incrbyfloat",
    ({ args }) => {
      const increment = floatIncrement(args);
      if (!increment.ok) return increment.reply;
      return update(at(args, 1), { kind: "increment-float", by: increment.by }, (value) =>
        r.bulkOrNil(value),
      );
    },
  ],
  [
    "append",
    ({ args, server }) =>
      update(
        at(args, 1),
        { kind: "append", bytes: at(args, 2), valueBytesMax: server.kv.limits.valueBytesMax },
        (_, length) => r.int(length),
      ),
  ],
  [
    "setrange",
    ({ args, server }) => {
      const valueBytesMax = server.kv.limits.valueBytesMax;
      const offset = setrangeOffset(args, valueBytesMax);
      if (!offset.ok) return offset.reply;
      return update(
        at(args, 1),
        { kind: "set-range", offset: offset.offset, bytes: at(args, 3), valueBytesMax },
        (_, length) => r.int(length),
      );
    },
  ],
  ["del", ({ args }) => keysPlan(args, (key) => ({ type: "delete", key }), deleted)],
  ["unlink", ({ args }) => keysPlan(args, (key) => ({ type: "delete", key }), deleted)],
  ["exists", ({ args }) => keysPlan(args, (key) => ({ type: "read", key }), present)],
  ["touch", ({ args }) => keysPlan(args, (key) => ({ type: "read", key }), present)],
  [
    "mget",
    ({ args }) => ({
      steps: args.slice(1).map((key) => ({ type: "read", key })),
      reply: (results) => r.array(results.map((x) => (x.kind === "kv.read" ? r.bulkOrNil(x.value) : r.nil))),
    }),
  ],
  ["mset", msetPlan(false, "mset")],
  ["msetnx", msetPlan(true, "msetnx")],
  ["expire", expirePlan("expire", "s", false)],
  ["pexpire", expirePlan("pexpire", "ms", false)],
  ["expireat", expirePlan("expireat", "s", true)],
  ["pexpireat", expirePlan("pexpireat", "ms", true)],
  [
    "persist",
    ({ args }) =>
      single({ type: "set-ttl", key: at(args, 1), expiry: { kind: "never" } }, (result) =>
        r.int(result.kind === "kv.set-ttl" && result.ok && result.changed ? 1 : 0),
      ),
  ],
  ["ttl", ttlPlan(false, false)],
  ["pttl", ttlPlan(true, false)],
  ["expiretime", ttlPlan(false, true)],
  ["pexpiretime", ttlPlan(true, true)],
  ["rename", renamePlan(true)],
  ["renamenx", renamePlan(false)],
  [
    "copy",
    ({ args }) => {
      const options = parseCopy(args);
      if (!options.ok) return options.reply;
      return single(
        { type: "copy", from: at(args, 1), to: at(args, 2), move: false, replace: options.replace },
        (result) => r.int(result.kind === "kv.copy" && result.ok && result.done ? 1 : 0),
      );
    },
  ],
  ["flushall", flushPlan],
  ["flushdb", flushPlan],
  ...streamPlanners,
]);

/**
 * The plan of a queued command: its steps, or (no plan) its handler run in its place. A command the
 * service refuses while it is planned (a name over a limit) answers that refusal in its place.
 */
export async function planOf(
  call: CommandCall,
  run: (call: CommandCall) => Promise<Reply>,
): Promise<TransactionPlan | Reply> {
  const planner = transactionPlanners.get(text(call.args[0]).toLowerCase());
  if (planner === undefined) return { steps: [], reply: () => run(call) };
  try {
    return await planner(call);
  } catch (error) {
    if (!isCairnError(error)) throw error;
    return r.error(respErrorOf[error.code](error));
  }
}

/**
 * The replies to planned commands once their steps ran: each plan gets its own results, in order,
 * and `reply` answers from them; a reply that stood in for a plan (a refusal) is kept as it is.
 */
export async function repliesOf(
  plans: readonly (TransactionPlan | Reply)[],
  results: readonly StepResult[],
  reply: (plan: TransactionPlan, mine: readonly StepResult[], index: number) => Reply | Promise<Reply>,
): Promise<Reply[]> {
  let next = 0;
  const replies: Reply[] = [];
  for (const [i, plan] of plans.entries()) {
    if (!("steps" in plan)) {
      replies.push(plan);
      continue;
    }
    const mine = results.slice(next, next + plan.steps.length);
    next += plan.steps.length;
    replies.push(await reply(plan, mine, i));
  }
  return replies;
}
