// Commands that arrive together on one connection (a pipeline) are run together, answered in order:
// - a run of consecutive key writes and reads becomes one KV transaction entry (no WATCH), so a
//   pipeline of 16 SETs costs one Raft entry and one fsync instead of 16 in a row. Applied in order
//   in one entry, the commands see each other's effects exactly as they would one by one;
// - a run of consecutive reads runs concurrently (reads commute; each still linearizable).
// Anything else (MULTI and what it queues, blocking reads, stream commands, DEL / EXISTS / TYPE,
// which also see streams) runs alone, after everything before it was answered.
import { isCairnError } from "../../service/index.js";
import type { ClientState, ServerContext } from "./command-table.js";
import { text } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import { type Reply, r } from "./resp-reply.js";
import { lookupCommand, refuseCall } from "./resp-server.js";
import { type TransactionPlan, transactionPlanners } from "./transaction-plans.js";

/** Commands one run holds at most. */
const runCommandsMax = 256;

/** Key commands whose Redis meaning includes streams: they run alone, with their own handler. */
const streamAware = new Set(["del", "unlink", "exists", "touch", "type"]);

/** How the commands at the head of a connection's queue run. */
export type Run =
  | { readonly kind: "batch"; readonly commands: readonly (readonly Buffer[])[] }
  | { readonly kind: "reads"; readonly commands: readonly (readonly Buffer[])[] }
  | { readonly kind: "single"; readonly command: readonly Buffer[] };

/** Whether a command may join a batch: a valid call of a command with a plan of KV steps. */
function batchable(args: readonly Buffer[]): { write: boolean } | undefined {
  const name = text(args[0]).toLowerCase();
  if (!transactionPlanners.has(name) || streamAware.has(name) || refuseCall(args) !== undefined)
    return undefined;
  return { write: lookupCommand(args[0])?.flags.includes("write") === true };
}

/** Whether a command is a read that may run beside other reads. */
function concurrentRead(args: readonly Buffer[]): boolean {
  const flags = lookupCommand(args[0])?.flags ?? [];
  return flags.includes("readonly") && !flags.includes("blocking") && refuseCall(args) === undefined;
}

/**
 * Takes the next run off the head of `queue`: a batch (two or more batchable commands, a write
 * among them, their arguments within half the value limit), a run of reads, or one command.
 */
export function takeRun(
  queue: (readonly Buffer[])[],
  client: ClientState,
  bytesMax: number,
): Run | undefined {
  const head = queue[0];
  if (head === undefined) return undefined;
  if (client.multi === undefined && queue.length >= 2) {
    let count = 0;
    let bytes = 0;
    let writes = 0;
    for (const args of queue) {
      const b = batchable(args);
      const size = args.reduce((sum, a) => sum + a.length, 0);
      if (b === undefined || count >= runCommandsMax || (count > 0 && bytes + size > bytesMax / 2)) break;
      count++;
      bytes += size;
      if (b.write) writes++;
    }
    if (count >= 2 && writes > 0) return { kind: "batch", commands: queue.splice(0, count) };
    let reads = 0;
    while (reads < queue.length && reads < runCommandsMax && concurrentRead(queue[reads] ?? [])) reads++;
    if (reads >= 2) return { kind: "reads", commands: queue.splice(0, reads) };
  }
  queue.shift();
  return { kind: "single", command: head };
}

/**
 * Answers a batch: every command's steps in one transaction entry, each command's reply from its
 * own results (a refused step answers its error in its place, as Redis answers each command of a
 * pipeline). When the service refuses the batch itself before proposing it (a key or value over a
 * limit), each command runs alone and answers for itself; an outcome the service could not learn
 * (a timeout) is every command's answer, since none may be retried blindly.
 */
export async function answerBatch(
  commands: readonly (readonly Buffer[])[],
  client: ClientState,
  server: ServerContext,
  one: (args: readonly Buffer[]) => Promise<Reply>,
  unexpected: (error: unknown) => Reply,
): Promise<Reply[]> {
  const plans: (TransactionPlan | Reply)[] = commands.map((args) => {
    const planner = transactionPlanners.get(text(args[0]).toLowerCase());
    return planner === undefined ? r.error("ERR internal error") : planner({ args, client, server });
  });
  const steps = plans.flatMap((plan) => ("steps" in plan ? plan.steps : []));
  client.lastCommand = lookupCommand(commands.at(-1)?.[0])?.name ?? client.lastCommand;
  let results: Awaited<ReturnType<typeof server.kv.transaction>>["results"] = [];
  try {
    if (steps.length > 0) results = (await server.kv.transaction([], steps)).results;
  } catch (error) {
    if (isCairnError(error) && (error.code === "ERR_BAD_REQUEST" || error.code === "ERR_TOO_LARGE")) {
      const alone: Reply[] = [];
      for (const args of commands) alone.push(await one(args));
      return alone;
    }
    const reply = isCairnError(error) ? r.error(respErrorOf[error.code](error)) : unexpected(error);
    return commands.map(() => reply);
  }
  let next = 0;
  const replies: Reply[] = [];
  for (const [i, plan] of plans.entries()) {
    if (!("steps" in plan)) {
      replies.push(plan);
      continue;
    }
    const mine = results.slice(next, next + plan.steps.length);
    next += plan.steps.length;
    replies.push(await plan.reply(mine, { args: commands[i] ?? [], client, server }));
  }
  return replies;
}
