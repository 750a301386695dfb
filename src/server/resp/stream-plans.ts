// How the stream writes XADD, XACK, XDEL and XTRIM join a transaction entry (inside MULTI, and in a
// pipeline's batch): each becomes stream steps of the KV transaction, applied atomically with the
// other commands and in their place, and its reply is built from those steps' results. The ids of
// XACK and XDEL are resolved to sequences before the entry (a message's id and sequence never
// change). The commands share their parsing with their handlers.
import { CairnError, type StepResult, type TransactionStep } from "../../service/index.js";
import { type CommandCall, text } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import { wrongType } from "./key-types.js";
import { type Reply, r } from "./resp-reply.js";
import { idsToSeqs, parseXadd, parseXsetid, parseXtrim } from "./stream-commands.js";

/** A queued command's part of a transaction entry: its steps, and its reply from their results. */
export interface TransactionPlan {
  readonly steps: readonly TransactionStep[];
  /** Builds the reply from the results of `steps`, in order, once the entry applied. */
  readonly reply: (results: readonly StepResult[], call: CommandCall) => Reply | Promise<Reply>;
}

/** Turns a command into its plan, or into the reply that refuses it. */
export type Planner = (call: CommandCall) => TransactionPlan | Reply | Promise<TransactionPlan | Reply>;

/** The error reply of a refused step (with Redis's text where the state machine has one). */
export function refusalReply(result: StepResult & { readonly ok: false }): Reply {
  const error = new CairnError(result.code, result.message);
  return r.error(respErrorOf[error.code](error));
}

/** The sum of `count` over the results; a missing stream or group counts nothing, as in Redis. */
function sumOf(results: readonly StepResult[], count: (result: StepResult & { ok: true }) => number): Reply {
  let total = 0;
  for (const result of results) {
    if (result.ok) total += count(result);
    else if (result.code !== "ERR_NOT_FOUND") return refusalReply(result);
  }
  return r.int(total);
}

/**
 * XDEL's or XACK's plan when no stream has the key's name: a read of the key, so that a string key
 * answers WRONGTYPE and a missing one 0, as in Redis, at the command's place in the entry.
 */
function noStreamPlan(key: Buffer | undefined): TransactionPlan {
  return {
    steps: [{ type: "read", key: key ?? Buffer.alloc(0) }],
    reply: ([result]) =>
      result?.kind === "kv.read" && result.value !== null
        ? r.error(respErrorOf.ERR_WRONG_TYPE(wrongType()))
        : r.int(0),
  };
}

/** The stream planners, by command name. */
export const streamPlanners: readonly (readonly [string, Planner])[] = [
  [
    "xadd",
    ({ args, server }) => {
      const request = parseXadd(args, server.streams.limits.headersMax);
      if ("t" in request) return request;
      const command = server.streams.appendCommand(request.name, request.input);
      return {
        steps: [{ type: "stream", command }],
        reply: ([result]) => {
          if (result?.kind === "streams.append" && result.ok) return r.bulk(result.id);
          if (result === undefined || result.ok) return r.error("ERR internal error: no append result");
          return request.noMkStream && result.code === "ERR_NOT_FOUND" ? r.nil : refusalReply(result);
        },
      };
    },
  ],
  [
    "xsetid",
    ({ args, server }) => {
      const request = parseXsetid(args);
      if ("t" in request) return request;
      // No stream can have the name: a read of the key tells WRONGTYPE from "no such key".
      if (request.name === undefined) {
        return {
          steps: [{ type: "read", key: args[1] ?? Buffer.alloc(0) }],
          reply: ([result]) =>
            result?.kind === "kv.read" && result.value !== null
              ? r.error(respErrorOf.ERR_WRONG_TYPE(wrongType()))
              : r.error("ERR no such key"),
        };
      }
      const command = server.streams.setIdCommand(request.name, request.lastId, request.options);
      return {
        steps: [{ type: "stream", command }],
        reply: ([result]) => {
          if (result === undefined) return r.error("ERR internal error: no set-id result");
          return result.ok ? r.ok : refusalReply(result);
        },
      };
    },
  ],
  [
    "xtrim",
    ({ args, server }) => {
      const request = parseXtrim(args);
      if ("t" in request) return request;
      if (request.name === undefined) return noStreamPlan(args[1]);
      return {
        steps: [{ type: "stream", command: server.streams.trimCommand(request.name, request.trim) }],
        reply: (results) => sumOf(results, (x) => (x.kind === "streams.trim" ? x.trimmed : 0)),
      };
    },
  ],
  [
    "xdel",
    async (call) => {
      const found = await idsToSeqs(call, 2);
      if (found === undefined) return noStreamPlan(call.args[1]);
      if ("t" in found) return found;
      const { name } = found;
      return {
        steps: found.chunks.map((seqs) => ({
          type: "stream" as const,
          command: call.server.streams.deleteMessagesCommand(name, seqs, { keepPending: true }),
        })),
        reply: (results) =>
          sumOf(results, (x) => (x.kind === "streams.message-delete" ? x.deleted.length : 0)),
      };
    },
  ],
  [
    "xack",
    async (call) => {
      const found = await idsToSeqs(call, 3, text(call.args[2]));
      if (found === undefined) return noStreamPlan(call.args[1]);
      if ("t" in found) return found;
      const { name } = found;
      const group = text(call.args[2]);
      return {
        steps: found.chunks.map((seqs) => ({
          type: "stream" as const,
          command: call.server.streams.settleCommand(name, group, "ack", seqs),
        })),
        reply: (results) => sumOf(results, (x) => (x.kind === "streams.settle" ? x.settled.length : 0)),
      };
    },
  ],
];
