// MULTI / EXEC / DISCARD / WATCH / UNWATCH. Queued commands are checked as Redis checks them when
// queued (unknown command, wrong arity: EXEC then aborts with EXECABORT).
import { isCairnError, type StepResult } from "../../service/index.js";
import type { ClientState, CommandCall, ServerContext } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import { type Reply, r } from "./resp-reply.js";
import { refuseCall, runCommand } from "./resp-server.js";
import { planOf, repliesOf, type TransactionPlan } from "./transaction-plans.js";

/** MULTI */
export function multi({ client }: CommandCall): Reply {
  if (client.multi !== undefined) return r.error("ERR MULTI calls can not be nested");
  client.multi = [];
  client.multiFailed = false;
  return r.ok;
}

/** DISCARD */
export function discard({ client }: CommandCall): Reply {
  if (client.multi === undefined) return r.error("ERR DISCARD without MULTI");
  endTransaction(client);
  return r.ok;
}

/** EXEC outside MULTI. */
export function execWithoutMulti(): Reply {
  return r.error("ERR EXEC without MULTI");
}

/** WATCH key [key ...]: remembers each key's modify revision now. */
export async function watch({ args, client, server }: CommandCall): Promise<Reply> {
  if (client.multi !== undefined) return r.error("ERR WATCH inside MULTI is not allowed");
  for (const key of args.slice(1)) {
    const id = key.toString("latin1");
    if (client.watched.has(id)) continue;
    const { record } = await server.kv.get(key);
    client.watched.set(id, record?.modRevision ?? 0);
  }
  return r.ok;
}

/** UNWATCH */
export function unwatch({ client }: CommandCall): Reply {
  client.watched.clear();
  client.watchBroken = false;
  return r.ok;
}

function endTransaction(client: ClientState): void {
  client.multi = undefined;
  client.multiFailed = false;
  client.watched.clear();
  client.watchBroken = false;
}

/** A command sent inside MULTI: checked, then queued. */
export function queueInTransaction(args: readonly Buffer[], client: ClientState): Reply {
  const refused = refuseCall(args);
  if (refused !== undefined) {
    client.multiFailed = true;
    return refused;
  }
  client.multi?.push(args);
  return r.simple("QUEUED");
}

/**
 * EXEC: aborts if a queued command was refused; otherwise proposes every queued command's steps as
 * one transaction entry, which applies them atomically and answers nil when a watched key changed.
 * Commands that touch no key run in their place among the replies, once the entry applied.
 */
export async function execTransaction(client: ClientState, server: ServerContext): Promise<Reply> {
  const queued = client.multi ?? [];
  const failed = client.multiFailed;
  const watched = [...client.watched].map(([id, revision]) => [Buffer.from(id, "latin1"), revision] as const);
  endTransaction(client);
  if (failed) return r.error("EXECABORT Transaction discarded because of previous errors.");
  // A command whose arguments are wrong answers its error in its slot, as Redis's EXEC does.
  const plans: (TransactionPlan | Reply)[] = [];
  for (const args of queued) {
    plans.push(
      await planOf({ args, client, server, inExec: true }, (call) =>
        runCommand(call.args, client, server, true),
      ),
    );
  }
  const steps = plans.flatMap((plan) => ("steps" in plan ? plan.steps : []));
  let results: readonly StepResult[] = [];
  if (steps.length > 0 || watched.length > 0) {
    const outcome = await server.kv.transaction(watched, steps);
    if (outcome.aborted) return { t: "null-array" };
    results = outcome.results;
  }
  const replies = await repliesOf(plans, results, async (plan, mine, i) => {
    try {
      return await plan.reply(mine, { args: queued[i] ?? [], client, server, inExec: true });
    } catch (error) {
      // A command run in its place fails alone, as a command in Redis's EXEC does.
      if (!isCairnError(error)) throw error;
      return r.error(respErrorOf[error.code](error));
    }
  });
  return r.array(replies);
}
