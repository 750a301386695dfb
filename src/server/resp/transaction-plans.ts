// How a command queued in MULTI becomes part of one transaction entry: its KV steps, and how its
// reply is built from their results once the entry applied. EXEC proposes every queued command's
// steps as one KvService.transaction, so they apply atomically, with WATCH checked at apply time.
import { CairnError, type KvResult, type KvStep } from "../../service/index.js";
import { notAnInteger, parseInteger, type ServerContext, text, wrongArity } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import { expiryAmount, parseSetOptions } from "./key-commands.js";
import { type Reply, r } from "./resp-reply.js";

/** A queued command's part of the transaction. */
export interface TransactionPlan {
  readonly steps: readonly KvStep[];
  /** Builds the reply from the results of `steps`, in order. */
  readonly reply: (results: readonly KvResult[], server: ServerContext) => Reply;
}

type Planner = (args: readonly Buffer[], server: ServerContext) => TransactionPlan | Reply;

const at = (args: readonly Buffer[], i: number): Buffer => args[i] ?? Buffer.alloc(0);

/** The reply of a refused step, or undefined when it succeeded. */
function refused(result: KvResult | undefined): Reply | undefined {
  if (result === undefined) return r.error("ERR internal error: a transaction step has no result");
  if (result.ok) return undefined;
  const error = new CairnError(result.code, result.message);
  return r.error(respErrorOf[error.code](error));
}

function single(step: KvStep, reply: (result: KvResult) => Reply): TransactionPlan {
  return { steps: [step], reply: ([result]) => refused(result) ?? (result ? reply(result) : r.nil) };
}

const read = (key: Buffer, reply: (value: Uint8Array | null, expireAtMs: number) => Reply) =>
  single({ type: "read", key }, (result) =>
    result.kind === "kv.read" ? reply(result.value, result.expireAtMs) : r.nil,
  );

function increment(sign: 1n | -1n, fixed: bigint | undefined): Planner {
  return (args) => {
    const by = fixed ?? parseInteger(at(args, 2));
    if (by === undefined) return notAnInteger;
    if (sign === -1n && by === -(2n ** 63n)) return r.error("ERR decrement would overflow");
    return single({ type: "increment", key: at(args, 1), by: sign * by }, (result) =>
      result.kind === "kv.increment" && result.ok ? r.int(BigInt(result.value)) : r.nil,
    );
  };
}

function keysPlan(
  args: readonly Buffer[],
  step: (key: Buffer) => KvStep,
  count: (result: KvResult) => boolean,
): TransactionPlan {
  const steps = args.slice(1).map(step);
  return { steps, reply: (results) => r.int(results.filter(count).length) };
}

function setPlan(args: readonly Buffer[], expiryUnit?: "ex" | "px", name = "set"): TransactionPlan | Reply {
  if (expiryUnit !== undefined) {
    const amount = expiryAmount(name, expiryUnit, at(args, 2));
    if (!amount.ok) return amount.reply;
    return single({ type: "set", key: at(args, 1), value: at(args, 3), expiry: amount.expiry }, () => r.ok);
  }
  const options = parseSetOptions(args);
  if ("t" in options) return options;
  return single({ type: "set", key: at(args, 1), value: at(args, 2), ...options }, (result) => {
    if (result.kind !== "kv.set") return r.nil;
    if (options.returnOld) return r.bulkOrNil(result.old);
    return result.written ? r.ok : r.nil;
  });
}

function ttlPlan(ms: boolean): Planner {
  return (args) => ({
    steps: [{ type: "read", key: at(args, 1) }],
    reply: ([result], server) => {
      if (result?.kind !== "kv.read" || result.value === null) return r.int(-2);
      if (result.expireAtMs === 0) return r.int(-1);
      const left = Math.max(0, result.expireAtMs - server.nowMs());
      return r.int(ms ? left : Math.floor((left + 500) / 1000));
    },
  });
}

function expirePlan(unit: "s" | "ms"): Planner {
  return (args) => {
    if (args.length > 3) return r.error("ERR Cairn runs EXPIRE options inside MULTI only without options");
    const amount = parseInteger(at(args, 2));
    if (amount === undefined) return notAnInteger;
    const ms = Number(unit === "s" ? amount * 1000n : amount);
    return single(
      { type: "set-ttl", key: at(args, 1), expiry: ms >= 0 ? { kind: "after", ms } : { kind: "at", ms: 0 } },
      (result) => r.int(result.kind === "kv.set-ttl" && result.changed ? 1 : 0),
    );
  };
}

/** The commands Cairn can run inside MULTI, by name. */
export const transactionPlanners: ReadonlyMap<string, Planner> = new Map<string, Planner>([
  ["get", (args) => read(at(args, 1), (value) => r.bulkOrNil(value))],
  ["strlen", (args) => read(at(args, 1), (value) => r.int(value?.length ?? 0))],
  ["set", (args) => setPlan(args)],
  ["setex", (args) => setPlan(args, "ex", "setex")],
  ["psetex", (args) => setPlan(args, "px", "psetex")],
  [
    "setnx",
    (args) =>
      single(
        { type: "set", key: at(args, 1), value: at(args, 2), condition: "nx", expiry: { kind: "never" } },
        (result) => r.int(result.kind === "kv.set" && result.written ? 1 : 0),
      ),
  ],
  [
    "getset",
    (args) =>
      single(
        { type: "set", key: at(args, 1), value: at(args, 2), returnOld: true, expiry: { kind: "never" } },
        (result) => (result.kind === "kv.set" ? r.bulkOrNil(result.old) : r.nil),
      ),
  ],
  [
    "getdel",
    (args) =>
      single({ type: "update", key: at(args, 1), op: { kind: "get-delete" } }, (result) =>
        result.kind === "kv.update" && result.ok ? r.bulkOrNil(result.value) : r.nil,
      ),
  ],
  ["incr", increment(1n, 1n)],
  ["decr", increment(-1n, 1n)],
  ["incrby", increment(1n, undefined)],
  ["decrby", increment(-1n, undefined)],
  [
    "del",
    (args) =>
      keysPlan(
        args,
        (key) => ({ type: "delete", key }),
        (x) => x.kind === "kv.delete" && x.ok && x.deleted,
      ),
  ],
  [
    "unlink",
    (args) =>
      keysPlan(
        args,
        (key) => ({ type: "delete", key }),
        (x) => x.kind === "kv.delete" && x.ok && x.deleted,
      ),
  ],
  [
    "exists",
    (args) =>
      keysPlan(
        args,
        (key) => ({ type: "read", key }),
        (x) => x.kind === "kv.read" && x.value !== null,
      ),
  ],
  [
    "mget",
    (args) => ({
      steps: args.slice(1).map((key) => ({ type: "read", key })),
      reply: (results) => r.array(results.map((x) => (x.kind === "kv.read" ? r.bulkOrNil(x.value) : r.nil))),
    }),
  ],
  [
    "mset",
    (args) => {
      if (args.length % 2 === 0) return wrongArity("mset");
      const pairs: [Buffer, Buffer][] = [];
      for (let i = 1; i < args.length; i += 2) pairs.push([at(args, i), at(args, i + 1)]);
      return single({ type: "put-many", pairs }, () => r.ok);
    },
  ],
  [
    "append",
    (args, server) =>
      single(
        {
          type: "update",
          key: at(args, 1),
          op: { kind: "append", bytes: at(args, 2), valueBytesMax: server.kv.limits.valueBytesMax },
        },
        (result) => (result.kind === "kv.update" && result.ok ? r.int(result.length) : r.nil),
      ),
  ],
  ["expire", expirePlan("s")],
  ["pexpire", expirePlan("ms")],
  [
    "persist",
    (args) =>
      single({ type: "set-ttl", key: at(args, 1), expiry: { kind: "never" } }, (result) =>
        r.int(result.kind === "kv.set-ttl" && result.changed ? 1 : 0),
      ),
  ],
  ["ttl", ttlPlan(false)],
  ["pttl", ttlPlan(true)],
  [
    "ping",
    (args) => ({ steps: [], reply: () => (args[1] === undefined ? r.simple("PONG") : r.bulk(at(args, 1))) }),
  ],
  ["echo", (args) => ({ steps: [], reply: () => r.bulk(at(args, 1)) })],
]);

/** Whether Cairn can run the command named by `args` inside MULTI. */
export function canQueue(args: readonly Buffer[]): boolean {
  return transactionPlanners.has(text(args[0]).toLowerCase());
}
